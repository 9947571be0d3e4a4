"""Takeover time from the wire: VRRP adverts seen on a segment, and what the RFC predicts.

Pure: frames and timestamps in, numbers out. The timestamps come from the capturing socket
(``ctl.capture``); nothing here reads a clock. The frame decoder is deliberately independent of
``vrrpd.packet`` so the demo and the benchmarks measure keepalived and pykeepalived alike.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Takeover",
    "WireAdvert",
    "master_down_interval",
    "measure_takeover",
    "parse_frame",
    "skew_time",
]

IPPROTO_VRRP = 112
_ETH_IPV4, _ETH_IPV6, _ETH_VLAN = 0x0800, 0x86DD, 0x8100


@dataclass(frozen=True, slots=True)
class WireAdvert:
    """One VRRP advertisement as seen on the wire at ``ts`` (wall-clock seconds)."""

    ts: float
    src: str
    vrid: int
    version: int
    priority: int
    interval: float  # seconds (v2: whole seconds; v3: centiseconds / 100)


def parse_frame(frame: bytes, ts: float) -> WireAdvert | None:
    """Decode an Ethernet frame; None unless it carries a VRRP advertisement."""
    if len(frame) < 14:
        return None
    offset = 12
    (ethertype,) = struct.unpack_from("!H", frame, offset)
    if ethertype == _ETH_VLAN and len(frame) >= 18:
        offset += 4
        (ethertype,) = struct.unpack_from("!H", frame, offset)
    l3 = offset + 2
    if ethertype == _ETH_IPV4 and len(frame) >= l3 + 20:
        ihl = (frame[l3] & 0x0F) * 4
        if frame[l3] >> 4 != 4 or frame[l3 + 9] != IPPROTO_VRRP or ihl < 20:
            return None
        src = str(ipaddress.IPv4Address(frame[l3 + 12 : l3 + 16]))
        vrrp = l3 + ihl
    elif ethertype == _ETH_IPV6 and len(frame) >= l3 + 40:
        if frame[l3] >> 4 != 6 or frame[l3 + 6] != IPPROTO_VRRP:
            return None
        src = str(ipaddress.IPv6Address(frame[l3 + 8 : l3 + 24]))
        vrrp = l3 + 40
    else:
        return None
    if len(frame) < vrrp + 8:
        return None
    version, kind = frame[vrrp] >> 4, frame[vrrp] & 0x0F
    if kind != 1 or version not in (2, 3):
        return None
    vrid, priority = frame[vrrp + 1], frame[vrrp + 2]
    if version == 2:
        interval = float(frame[vrrp + 5])
    else:
        (raw,) = struct.unpack_from("!H", frame, vrrp + 4)
        interval = (raw & 0x0FFF) / 100
    return WireAdvert(ts, src, vrid, version, priority, interval)


def skew_time(priority: int, interval: float) -> float:
    """RFC 5798: (256 - priority) * interval / 256 (v2 uses the same form in keepalived)."""
    return (256 - priority) * interval / 256


def master_down_interval(priority: int, interval: float, adverts: int = 3) -> float:
    """How long a backup waits after the master's last advert: N * interval + skew."""
    return adverts * interval + skew_time(priority, interval)


@dataclass(frozen=True, slots=True)
class Takeover:
    """The old master's last advert and the new master's first, on the wire."""

    last_old: WireAdvert
    first_new: WireAdvert

    @property
    def seconds(self) -> float:
        return self.first_new.ts - self.last_old.ts

    @property
    def graceful(self) -> bool:
        """The old master said goodbye (a priority-0 advert) instead of falling silent."""
        return self.last_old.priority == 0


def measure_takeover(
    adverts: Iterable[WireAdvert], vrid: int, old_master: str, since: float
) -> Takeover | None:
    """Takeover of ``vrid`` from ``old_master``: None until both ends have been seen.

    The new master is whoever sends the first non-zero-priority advert for ``vrid`` after
    ``since`` (when the old master was stopped); the old master's last advert is its last one
    before that.
    """
    ordered: Sequence[WireAdvert] = sorted(
        (a for a in adverts if a.vrid == vrid), key=lambda a: a.ts
    )
    first_new = next(
        (a for a in ordered if a.ts >= since and a.src != old_master and a.priority > 0), None
    )
    if first_new is None:
        return None
    before = [a for a in ordered if a.src == old_master and a.ts <= first_new.ts]
    if not before:
        return None
    return Takeover(before[-1], first_new)
