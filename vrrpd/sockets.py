"""Raw IP protocol 112 sockets: the only place vrrpd touches the network.

One receive socket per (interface, family), shared by every instance on it (the driver
dispatches by VRID), and one send socket per (interface, family, source address). They are
separate because binding a raw socket to a source address also filters what it receives, which
would hide multicast adverts.

IPv4 raw sockets deliver the IP header, so TTL, addresses and the declared length come from it;
they are read in batches (``recvmmsg``, :mod:`vrrpd.mmsg`) as *keys*, the bytes validation
depends on, decoded once per distinct key (a master's adverts differ only in IP id and checksum).
IPv6 raw sockets deliver only the payload; the hop limit and destination come from
``IPV6_RECVHOPLIMIT``/``IPV6_RECVPKTINFO`` ancillary data. Checksums are computed and checked
by the codec, never by the kernel (no ``IPV6_CHECKSUM``), so a bad one is counted and logged
with a reason rather than silently dropped.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections import Counter
from dataclasses import dataclass

from vrrpd.errors import VrrpdError
from vrrpd.mmsg import KEY_DROPPED, BatchReader, ipv4_key, recvmmsg_available
from vrrpd.packet import IPPROTO_VRRP, IPAddress
from vrrpd.validate import DropReason, IpFacts

_RECV_SIZE = 4096
_MAX_DRAIN = 256
_BATCH = 64  # datagrams per recvmmsg call (a 256 kB buffer, allocated once per socket)
_SEEN_MAX = 1024  # decoded datagrams remembered (one per VRID and master in practice)
# Linux constants Python's socket module does not export on every build.
_IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
_IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
_IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
_IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
_IPV6_FREEBIND = 78  # linux/in6.h; not exported by Python
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
# Room for every instance's advert queued at once (a master sends them in bursts, and the
# socket pool reads a busy socket only every few ms): 255 small datagrams take ~175 kB of kernel
# accounting, near the 208 kB default. keepalived sizes its receive buffers too
# (vrrp_rx_bufs_policy).
_RCVBUF = 1 << 20


class SocketError(VrrpdError):
    """A VRRP socket could not be opened, configured or used (carries the OS reason)."""


@dataclass(frozen=True, slots=True)
class Datagram:
    payload: bytes
    facts: IpFacts
    ifname: str
    #: every byte validation depends on (payload, TTL, addresses, declared length): equal keys
    #: mean equal verdicts, so a master's identical adverts are validated once
    key: bytes = b""


def _bind_device(sock: socket.socket, ifname: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, ifname.encode())


class Receiver:
    """Receives every VRRP datagram arriving on one interface for one address family."""

    def __init__(self, family: int, ifname: str, ifindex: int) -> None:
        self.family, self.ifname, self.ifindex = family, ifname, ifindex
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        try:
            self.sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
            self.sock.setblocking(False)
            _bind_device(self.sock, ifname)
            try:  # root may exceed net.core.rmem_max
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
            except PermissionError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            if family == 6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVHOPLIMIT, 1)
                self.sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
        except OSError as exc:
            raise SocketError(f"cannot open VRRP receive socket on {ifname}: {exc}") from exc
        self._groups: set[IPAddress] = set()
        self._seen: dict[bytes, Datagram] = {}
        #: IPv4: many datagrams per system call when libc has recvmmsg (vrrpd.mmsg)
        self._batch: BatchReader | None = None
        if family == 4 and recvmmsg_available():
            self._batch = BatchReader(self.sock.fileno(), _BATCH, _RECV_SIZE)
        #: datagrams no instance could take (a VRID nobody here runs, or too short to carry
        #: one), counted here because there is no instance to count them under
        self.unclaimed: Counter[DropReason] = Counter()

    def fileno(self) -> int:
        return self.sock.fileno()

    def join(self, group: IPAddress) -> None:
        if group in self._groups:
            return
        try:
            if self.family == 4:
                mreqn = group.packed + b"\0\0\0\0" + struct.pack("=i", self.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            else:
                mreq = group.packed + struct.pack("=I", self.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        except OSError as exc:
            raise SocketError(f"cannot join {group} on {self.ifname}: {exc}") from exc
        self._groups.add(group)

    def drain_keys(self) -> list[bytes]:
        """The keys of everything queued now (bounded): every byte validation depends on, so
        equal keys are equal datagrams (see :attr:`Datagram.key`); :meth:`datagram` decodes
        one. Raises :class:`SocketError`."""
        if len(self._seen) >= _SEEN_MAX:
            # Bounded (junk from the wire cannot grow it), and never cleared between a drain
            # and the datagram() calls for its keys: an IPv6 key's datagram lives only here.
            self._seen.clear()
        try:
            if self._batch is not None:
                keys: list[bytes] = []
                while len(keys) < _MAX_DRAIN:
                    got = self._batch.read()
                    keys += got
                    if len(got) < _BATCH:
                        break
                return keys
            return self._drain_one_by_one()
        except OSError as exc:
            raise SocketError(f"receive on {self.ifname} failed: {exc}") from exc

    def _drain_one_by_one(self) -> list[bytes]:
        keys: list[bytes] = []
        for _ in range(_MAX_DRAIN):
            try:
                if self.family == 4:
                    data = self.sock.recv(_RECV_SIZE)
                    if len(data) >= 20:
                        keys.append(ipv4_key(data))
                    continue
                data, anc, _flags, addr = self.sock.recvmsg(_RECV_SIZE, 256)
            except BlockingIOError:
                break
            dgram = self._from_ipv6(data, anc, addr)
            if dgram is not None:
                self._remember(dgram)
                keys.append(dgram.key)
        return keys

    def datagram(self, key: bytes) -> Datagram | None:
        """The datagram of a key :meth:`drain_keys` returned (decoded once per distinct key:
        a master's adverts differ only in what the key leaves out)."""
        known = self._seen.get(key)
        if known is not None or self.family != 4:
            return known
        return self._remember(self._decode_ipv4(key))

    def _remember(self, dgram: Datagram) -> Datagram:
        self._seen[dgram.key] = dgram  # bounded by drain_keys
        return dgram

    def _from_ipv4(self, data: bytes) -> Datagram | None:
        """A whole IPv4 datagram as recv returns it, decoded (tests; drain works on keys)."""
        return self.datagram(ipv4_key(data)) if len(data) >= 20 else None

    def _decode_ipv4(self, key: bytes) -> Datagram:
        # The key is the datagram without IP bytes 4-7 and 9-11 (mmsg.ipv4_key): header
        # length at 0, total length at 2, TTL at 4, addresses at 5 and 9, the rest from 13.
        # (The kernel delivers no header shorter than 20 bytes: ip_rcv drops it.)
        ihl = max((key[0] & 0x0F) * 4, 20)
        tot_len = int.from_bytes(key[2:4], "big")
        received = len(key) + KEY_DROPPED
        facts = IpFacts(
            src=ipaddress.IPv4Address(key[5:9]),
            dst=ipaddress.IPv4Address(key[9:13]),
            ttl=key[4],
            # A datagram filling the buffer was cut by recv (no VRRP advert is that long): its
            # declared length is no padding to trim, and the length rule names it oversized.
            declared_len=max(0, tot_len - ihl) if received < _RECV_SIZE else None,
        )
        return Datagram(key[ihl - KEY_DROPPED :], facts, self.ifname, key)

    def _from_ipv6(
        self, data: bytes, anc: list[tuple[int, int, bytes]], addr: tuple[str, int, int, int]
    ) -> Datagram | None:
        hops, dst = -1, None
        for level, kind, value in anc:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == _IPV6_HOPLIMIT and len(value) >= 4:
                hops = int.from_bytes(value[:4], "little", signed=True)
            elif kind == _IPV6_PKTINFO and len(value) >= 16:
                dst = ipaddress.IPv6Address(value[:16])
        if dst is None:
            return None
        src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
        key = hops.to_bytes(4, "little", signed=True) + src.packed + dst.packed + data
        facts = IpFacts(src=src, dst=dst, ttl=hops, declared_len=None)
        return Datagram(data, facts, self.ifname, key)

    def close(self) -> None:
        self.sock.close()


def sockaddr(dst: IPAddress, ifindex: int) -> tuple[str, int] | tuple[str, int, int, int]:
    """``sendto``'s address for an advert to ``dst`` out of interface ``ifindex``."""
    if dst.version == 4:
        return (str(dst), 0)
    scope = ifindex if dst.is_link_local or dst.is_multicast else 0
    return (str(dst), 0, 0, scope)


class Sender:
    """Sends adverts out of one interface, from one source address.

    Multicast adverts always carry TTL/hop limit 255 (RFC 9568); unicast ones ``unicast_ttl``
    (keepalived's default 255). ``freebind`` lets the socket bind a source address that is not
    (yet) on the interface, for ``track_src_ip``: the instance then starts in FAULT instead of
    not starting at all.
    """

    def __init__(
        self,
        family: int,
        ifname: str,
        ifindex: int,
        src: IPAddress,
        *,
        unicast_ttl: int = 255,
        freebind: bool = False,
    ) -> None:
        self.family, self.ifname, self.ifindex, self.src = family, ifname, ifindex, src
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        try:
            self.sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
            self.sock.setblocking(False)
            _bind_device(self.sock, ifname)
            if freebind:
                level, opt = (
                    (socket.IPPROTO_IP, _IP_FREEBIND)
                    if family == 4
                    else (socket.IPPROTO_IPV6, _IPV6_FREEBIND)
                )
                self.sock.setsockopt(level, opt, 1)
            if family == 4:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, unicast_ttl)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
                self.sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_MULTICAST_IF,
                    b"\0" * 8 + struct.pack("=i", ifindex),
                )
                self.sock.bind((str(src), 0))
            else:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, unicast_ttl)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
                scope = ifindex if src.is_link_local else 0
                self.sock.bind((str(src), 0, 0, scope))
        except OSError as exc:
            raise SocketError(
                f"cannot open VRRP send socket on {ifname} from {src}: {exc}"
            ) from exc
        self.errors = 0
        self._sockaddrs: dict[
            int, tuple[IPAddress, tuple[str, int] | tuple[str, int, int, int]]
        ] = {}

    def send(self, wire: bytes, dst: IPAddress) -> bool:
        """Send one advert; False (and counted) when the kernel refuses it."""
        # Formatting the address costs as much as the rest of a master's advert: do it once
        # per destination object (kept alive in the entry, so its id() cannot be reused).
        entry = self._sockaddrs.get(id(dst))
        if entry is None or entry[0] is not dst:
            if len(self._sockaddrs) >= _SEEN_MAX:
                self._sockaddrs.clear()
            entry = self._sockaddrs[id(dst)] = (dst, sockaddr(dst, self.ifindex))
        try:
            self.sock.sendto(wire, entry[1])
        except OSError:
            self.errors += 1
            return False
        return True

    def close(self) -> None:
        self.sock.close()
