"""Raw sockets for keepalived-style VRRPv2 IPsec-AH adverts (IP protocol 51), IPv4 only.

Kept apart from :mod:`vrrpd.sockets` because AH changes both directions at the IP layer:

* The ICV covers the IP header (addresses, total length, IP id), so the sender must write the
  header itself: an ``IPPROTO_RAW`` socket (implies ``IP_HDRINCL``; it receives nothing, so no
  queue fills up behind it). The kernel only fills in the header checksum.
* The receiver needs the whole datagram, IP header included, to check the ICV, and must read
  protocol 51, not 112. Every datagram is handed over as raw bytes; the instance's
  :class:`vrrpd.ah.AhSession` checks it and keeps the anti-replay counter.

The kernel has no IPsec state for these packets and does not need any: a raw socket gets a copy
of every protocol-51 datagram addressed to the host, which is how keepalived reads them too.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

from vrrpd.ah import AH_LEN, IPPROTO_AH
from vrrpd.sockets import SocketError

__all__ = ["AhReceiver", "AhSender", "AhSockets", "vrid_of"]

_RECV_SIZE = 4096
_MAX_DRAIN = 256
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


def vrid_of(datagram: bytes) -> int:
    """The VRID of the VRRP message behind the AH header, or -1 when there is none."""
    if len(datagram) < 20:
        return -1
    at = (datagram[0] & 0x0F) * 4 + AH_LEN + 1
    return datagram[at] if len(datagram) > at else -1


def _bind_device(sock: socket.socket, ifname: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, ifname.encode())


class AhReceiver:
    """Receives every protocol-51 datagram arriving on one interface (whole, IP header first)."""

    def __init__(self, ifname: str, ifindex: int) -> None:
        self.ifname, self.ifindex = ifname, ifindex
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_AH)
            self.sock.setblocking(False)
            _bind_device(self.sock, ifname)
        except OSError as exc:
            raise SocketError(f"cannot open AH receive socket on {ifname}: {exc}") from exc
        self._groups: set[IPv4Address] = set()

    def fileno(self) -> int:
        return self.sock.fileno()

    def join(self, group: IPv4Address) -> None:
        if group in self._groups:
            return
        mreqn = group.packed + b"\0\0\0\0" + struct.pack("=i", self.ifindex)
        try:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        except OSError as exc:
            raise SocketError(f"cannot join {group} on {self.ifname}: {exc}") from exc
        self._groups.add(group)

    def drain(self) -> list[bytes]:
        """Every datagram queued now (bounded)."""
        out: list[bytes] = []
        for _ in range(_MAX_DRAIN):
            try:
                out.append(self.sock.recv(_RECV_SIZE))
            except BlockingIOError:
                break
            except OSError as exc:
                raise SocketError(f"AH receive on {self.ifname} failed: {exc}") from exc
        return out

    def close(self) -> None:
        self.sock.close()


class AhSender:
    """Sends whole IPv4 datagrams (built by :func:`vrrpd.ah.wrap`) out of one interface."""

    def __init__(self, ifname: str, ifindex: int) -> None:
        self.ifname, self.ifindex = ifname, ifindex
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.sock.setblocking(False)
            _bind_device(self.sock, ifname)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            self.sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, b"\0" * 8 + struct.pack("=i", ifindex)
            )
        except OSError as exc:
            raise SocketError(f"cannot open AH send socket on {ifname}: {exc}") from exc
        self.errors = 0

    def send(self, datagram: bytes, dst: IPv4Address) -> bool:
        """Send one datagram; False (and counted) when the kernel refuses it."""
        try:
            self.sock.sendto(datagram, (str(dst), 0))
        except OSError:
            self.errors += 1
            return False
        return True

    def close(self) -> None:
        self.sock.close()


class AhSockets:
    """The AH sockets every instance on an interface shares: one receiver and one sender."""

    def __init__(self) -> None:
        self.receivers: dict[str, AhReceiver] = {}
        self.senders: dict[str, AhSender] = {}

    def receiver(self, ifname: str, ifindex: int) -> tuple[AhReceiver, bool]:
        """The interface's receiver, and whether it was just opened (needs a reader)."""
        found = self.receivers.get(ifname)
        if found is not None:
            return found, False
        made = self.receivers[ifname] = AhReceiver(ifname, ifindex)
        return made, True

    def sender(self, ifname: str, ifindex: int) -> AhSender:
        found = self.senders.get(ifname)
        if found is None:
            found = self.senders[ifname] = AhSender(ifname, ifindex)
        return found

    def close(self) -> None:
        """Close every socket (remove the receivers' readers from the loop first)."""
        for receiver in self.receivers.values():
            receiver.close()
        for sender in self.senders.values():
            sender.close()
        self.receivers.clear()
        self.senders.clear()
