"""Capture VRRP adverts in a lab's hub namespace with kernel receive timestamps.

One ``AF_PACKET`` socket on every port of the lab's bridge sees each frame once, as it enters
the bridge from the node that sent it (frames the bridge forwards out of the other ports are
``PACKET_OUTGOING`` copies and are skipped). Timestamps come from the kernel
(``SO_TIMESTAMPNS``, wall clock), so a late reader does not skew the measured takeover.
The capturing node is passive: it sends nothing.
"""

from __future__ import annotations

import socket
import struct

from ctl.lab import enter_netns
from ctl.takeover import WireAdvert, parse_frame

__all__ = ["AdvertCapture"]

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35  # linux/asm-generic/socket.h; also the control message type
SO_RCVBUFFORCE = 33
_RCVBUF = 32 << 20
_CMSG_SPACE = 64


class AdvertCapture:
    """Every VRRP advert entering the bridge in namespace ``netns`` through ``port_prefix*``."""

    def __init__(self, netns: str, port_prefix: str = "v") -> None:
        with enter_netns(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:  # root may exceed net.core.rmem_max: thousands of adverts a second at scale
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RCVBUF)
            except PermissionError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.port_prefix = port_prefix
        self.adverts: list[WireAdvert] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> list[WireAdvert]:
        """Read every queued frame; keep and return the adverts among them."""
        new: list[WireAdvert] = []
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, _CMSG_SPACE)
            except BlockingIOError:
                break
            ifname, _proto, pkttype = addr[0], addr[1], addr[2]
            if pkttype == socket.PACKET_OUTGOING or not ifname.startswith(self.port_prefix):
                continue
            ts = _timestamp(anc)
            if ts is None:
                continue
            advert = parse_frame(data, ts)
            if advert is not None:
                new.append(advert)
        self.adverts.extend(new)
        return new

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> AdvertCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _timestamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            return int(sec) + int(nsec) / 1e9
    return None
