"""Every IPv4 VRRP advert each lab node sent or received, with the kernel's timestamps.

An :class:`AdvertTap` holds one ``AF_PACKET`` socket on each node's ``eth0`` (inside the
node's namespace, so after the hub's fault rules: a received frame is one the node really
got) and a thread that reads them. The kernel stamps each frame when it passes the device
(``SO_TIMESTAMPNS``, wall clock), so the times are comparable with the daemons' own log
timestamps and do not depend on when the thread got to read them — which on a loaded machine
can be late.

What it answers: when a node last heard an advert that would re-arm its master-down timer
(the timing invariant of tests/netfaults.py), which lower-priority adverts a master heard
(the split-brain check), and when a node sent its first advert after taking over (the
take-over gap of bench/faults.py).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from tests.lab import ETH_P_ALL, Node

__all__ = ["Advert", "AdvertTap"]

SO_TIMESTAMPNS = 35  # linux/socket.h; the socket module does not export it
_TIMESPEC = struct.Struct("@qq")
_PROTO_VRRP = 112


@dataclass(frozen=True, slots=True)
class Advert:
    at: float  # kernel timestamp, POSIX seconds
    node: int  # the node whose eth0 saw it
    sender: int  # the sending node's index (-1: not a lab node, e.g. the observer's replay)
    sent: bool  # True: ``node`` sent it; False: ``node`` received it
    priority: int
    vrid: int


class AdvertTap:
    """Records adverts on ``nodes``' eth0 until :meth:`close`."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._by_ip = {socket.inet_aton(n.ip4): n.index for n in nodes}
        self._socks: dict[socket.socket, int] = {}
        self._lock = threading.Lock()
        self._adverts: list[Advert] = []
        self._stop = threading.Event()
        try:
            for node in nodes:
                with node.inside():
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                self._socks[sock] = node.index
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sock.bind((node.ifname, 0))
                sock.setblocking(False)
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, name="advert-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(list(self._socks), [], [], 0.2)
            for sock in ready:
                self._drain(sock)

    def _drain(self, sock: socket.socket) -> None:
        node = self._socks[sock]
        while True:
            try:
                data, anc, _flags, addr = sock.recvmsg(256, socket.CMSG_SPACE(_TIMESPEC.size))
            except (BlockingIOError, OSError):
                return
            # IPv4 (no VLAN), protocol 112, VRRP header right after a 20-byte IP header
            if len(data) < 14 + 20 + 4 or data[12:14] != b"\x08\x00" or data[23] != _PROTO_VRRP:
                continue
            ihl = (data[14] & 0x0F) * 4
            vrrp = data[14 + ihl :]
            if len(vrrp) < 4:
                continue
            at = 0.0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                    at = sec + nsec / 1e9
            advert = Advert(
                at=at,
                node=node,
                sender=self._by_ip.get(data[26:30], -1),
                sent=addr[2] == socket.PACKET_OUTGOING,
                priority=vrrp[2],
                vrid=vrrp[1],
            )
            with self._lock:
                self._adverts.append(advert)

    def adverts(self) -> list[Advert]:
        """Everything recorded so far, in time order."""
        with self._lock:
            return sorted(self._adverts, key=lambda a: a.at)

    def received(self, node: int) -> list[Advert]:
        return [a for a in self.adverts() if a.node == node and not a.sent]

    def sent(self, node: int) -> list[Advert]:
        return [a for a in self.adverts() if a.node == node and a.sent]

    def forget_before(self, at: float) -> None:
        """Drop records older than ``at`` (a long soak keeps memory flat)."""
        with self._lock:
            self._adverts = [a for a in self._adverts if a.at >= at]

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(2)
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()
        self._socks.clear()
