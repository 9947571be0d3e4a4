"""Gratuitous ARP / unsolicited NA: frames, a pure pacing scheduler, and a raw sender.

Frames match keepalived's (the frame formats RFC 5798 and keepalived use):

* GARP: Ethernet broadcast from the interface MAC (the VMAC with ``use_vmac``), ARP
  *request*, sha = that MAC, spa = tpa = VIP, tha = ff:ff:ff:ff:ff:ff.
* NA: Ethernet to 33:33:00:00:00:01, IPv6 from the VIP to ff02::1 with hop limit 255,
  ICMPv6 136 with O=1, S=0, R=1 only when the interface forwards, target = VIP and a target
  link-layer option carrying the MAC.

Frames are packed with ``struct`` once per (interface, VIP, MAC) and cached as bytes; the hot
path only sends bytes. A packet library would cost netd tens of MB for two fixed layouts, so
scapy stays the reference decoder in the tests only.

:class:`AnnounceScheduler` is pure (no clock, no sockets): the event loop feeds it ``now``
and gets back :class:`Planned` ``(time, target, frame)`` items to send, plus the time of the
next one so it can arm a single timer. It implements keepalived's timing knobs
(keepalived 2.2.7): ``garp_master_repeat`` copies per VIP interleaved across
VIPs, a second burst after ``garp_master_delay``, periodic ``garp_master_refresh`` bursts,
and ``garp_interval`` / ``gna_interval`` as a minimum gap per interface, so a burst for
hundreds of VIPs is paced without ever blocking the loop; :meth:`AnnounceScheduler.every` gives
``garp_extra_if``'s periodic announcements.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from netd.errors import AnnounceError

__all__ = [
    "AnnounceScheduler",
    "FrameCache",
    "FrameSender",
    "GarpTiming",
    "Planned",
    "Target",
    "build_frame",
    "build_garp",
    "build_unsolicited_na",
]

log = structlog.get_logger(__name__)

BROADCAST_MAC: Final = "ff:ff:ff:ff:ff:ff"
ALL_NODES_MAC: Final = "33:33:00:00:00:01"
ALL_NODES: Final = "ff02::1"


ETH_P_ARP: Final = 0x0806
ETH_P_IPV6: Final = 0x86DD
IPPROTO_ICMPV6: Final = 58
ND_NEIGHBOR_ADVERT: Final = 136
ND_OPT_TARGET_LINKADDR: Final = 2
_NA_ROUTER, _NA_OVERRIDE = 0x80000000, 0x20000000

_ETHER = struct.Struct("!6s6sH")
# hardware type, protocol type, hardware/protocol lengths, operation, sha, spa, tha, tpa
_ARP = struct.Struct("!HHBBH6s4s6s4s")
# version/class/flow, payload length, next header, hop limit, source, destination
_IPV6 = struct.Struct("!IHBB16s16s")
# type, code, checksum, flags, target, then one option: type, length (8-octet units), MAC
_NA = struct.Struct("!BBHI16sBB6s")


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"{text!r} is not a MAC address")
    return raw


def build_garp(vip: str, mac: str) -> bytes:
    """keepalived's gratuitous ARP for ``vip`` sent from ``mac``."""
    try:
        src, ip = _mac(mac), ipaddress.IPv4Address(vip).packed
        bcast = _mac(BROADCAST_MAC)
    except ValueError as exc:
        raise AnnounceError(f"cannot build GARP for {vip} from {mac}: {exc}") from exc
    arp = _ARP.pack(1, 0x0800, 6, 4, 1, src, ip, bcast, ip)
    return _ETHER.pack(bcast, src, ETH_P_ARP) + arp


def build_unsolicited_na(vip: str, mac: str, router: bool = False) -> bytes:
    """keepalived's unsolicited neighbour advertisement for ``vip`` from ``mac``."""
    try:
        src, ip = _mac(mac), ipaddress.IPv6Address(vip).packed
    except ValueError as exc:
        raise AnnounceError(f"cannot build NA for {vip} from {mac}: {exc}") from exc
    dst = ipaddress.IPv6Address(ALL_NODES).packed
    flags = _NA_OVERRIDE | (_NA_ROUTER if router else 0)
    unsummed = _NA.pack(ND_NEIGHBOR_ADVERT, 0, 0, flags, ip, ND_OPT_TARGET_LINKADDR, 1, src)
    pseudo = ip + dst + struct.pack("!I3xB", len(unsummed), IPPROTO_ICMPV6)
    cksum = _internet_checksum(pseudo + unsummed)
    icmp = unsummed[:2] + cksum.to_bytes(2, "big") + unsummed[4:]
    ipv6 = _IPV6.pack(6 << 28, len(icmp), IPPROTO_ICMPV6, 255, ip, dst)
    return _ETHER.pack(_mac(ALL_NODES_MAC), src, ETH_P_IPV6) + ipv6 + icmp


def _internet_checksum(data: bytes) -> int:
    """RFC 1071 (even-length input: the NA is 32 octets, the pseudo-header 40)."""
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True, slots=True)
class Target:
    """One address to announce on one interface. ``router`` sets the NA R flag (IPv6)."""

    ifname: str
    ip: str
    mac: str
    router: bool = False

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ipaddress.ip_address(self.ip).version == 6 else socket.AF_INET


def build_frame(target: Target) -> bytes:
    if target.family == socket.AF_INET6:
        return build_unsolicited_na(target.ip, target.mac, target.router)
    return build_garp(target.ip, target.mac)


class FrameCache:
    """Frames built once per target; rebuilt only if the target (e.g. its MAC) changes."""

    def __init__(self) -> None:
        self._frames: dict[Target, bytes] = {}

    def get(self, target: Target) -> bytes:
        frame = self._frames.get(target)
        if frame is None:
            frame = self._frames[target] = build_frame(target)
        return frame

    def forget(self, targets: Iterable[Target]) -> None:
        for t in targets:
            self._frames.pop(t, None)

    def __len__(self) -> int:
        return len(self._frames)


@dataclass(frozen=True, slots=True)
class GarpTiming:
    """keepalived's knobs with keepalived's defaults (seconds)."""

    master_repeat: int = 5
    master_delay: float = 5.0
    master_refresh: float = 0.0
    master_refresh_repeat: int = 1
    lower_prio_repeat: int | None = None  # None = same as master_repeat
    lower_prio_delay: float | None = None  # None = same as master_delay
    garp_interval: float = 0.0
    gna_interval: float = 0.0

    @classmethod
    def min_garp(cls, **kwargs: Any) -> GarpTiming:
        """``vrrp_min_garp``: one message per VIP, no second burst, no refresh."""
        return cls(master_repeat=1, master_delay=0.0, master_refresh=0.0, **kwargs)


@dataclass(frozen=True, slots=True, order=True)
class Planned:
    """Send ``frame`` for ``target`` at ``at`` (same clock as the ``now`` passed in)."""

    at: float
    target: Target = field(compare=False)
    frame: bytes = field(compare=False, repr=False)
    owner: str = field(compare=False, default="")


@dataclass(slots=True)
class _Refresh:
    owner: str
    next_at: float
    targets: tuple[Target, ...]
    interval: float
    repeat: int


class AnnounceScheduler:
    """Pure GARP/NA scheduler. Feed it events and ``now``; send what :meth:`due` returns.

    Usage from an event loop: after any call, arm one timer for :meth:`next_due`; when it
    fires, send every frame from ``due(now)`` and re-arm.
    """

    def __init__(self, timing: GarpTiming | None = None, frames: FrameCache | None = None) -> None:
        self.timing = timing or GarpTiming()
        self.frames = frames if frames is not None else FrameCache()
        self._seq = itertools.count()
        # Per (interface, family): heap of (requested_at, seq, owner, target).
        self._queues: dict[tuple[str, int], list[tuple[float, int, str, Target]]] = {}
        self._next_free: dict[tuple[str, int], float] = {}
        # (owner, "refresh" | "extra_if") -> periodic announcements
        self._refresh: dict[tuple[str, str], _Refresh] = {}
        #: garp_group: interface -> (garp_interval, gna_interval), None = the global value
        self.per_interface: dict[str, tuple[float | None, float | None]] = {}

    def _interval(self, ifname: str, family: int) -> float:
        """Gap between two announcements on one interface: its garp_group's, else global."""
        v4, v6 = self.per_interface.get(ifname, (None, None))
        if family == socket.AF_INET6:
            return self.timing.gna_interval if v6 is None else v6
        return self.timing.garp_interval if v4 is None else v4

    def _enqueue(self, owner: str, at: float, targets: Sequence[Target], repeat: int) -> None:
        # Interleave: copy 1 of every VIP, then copy 2 of every VIP, ... so each VIP's first
        # announcement goes out as early as possible.
        for _ in range(repeat):
            for t in targets:
                self.frames.get(t)  # build now, off the hot path
                queue = self._queues.setdefault((t.ifname, t.family), [])
                heapq.heappush(queue, (at, next(self._seq), owner, t))

    def burst(self, owner: str, now: float, targets: Sequence[Target], repeat: int) -> None:
        """One burst of ``repeat`` announcements per target, paced, starting ``now``.

        For a driver that schedules the second burst and refreshes itself (vrrpd's machine).
        """
        self._enqueue(owner, now, targets, repeat)

    def become_master(self, owner: str, now: float, targets: Sequence[Target]) -> None:
        """Burst now, a second burst after master_delay, then refreshes if configured."""
        tm = self.timing
        self.stop(owner)
        self._enqueue(owner, now, targets, tm.master_repeat)
        if tm.master_delay > 0:
            self._enqueue(owner, now + tm.master_delay, targets, tm.master_repeat)
        if tm.master_refresh > 0:
            first = now + tm.master_delay + tm.master_refresh
            self._refresh[(owner, "refresh")] = _Refresh(
                owner, first, tuple(targets), tm.master_refresh, tm.master_refresh_repeat
            )

    def every(self, owner: str, now: float, interval: float, targets: Sequence[Target]) -> None:
        """One announcement per target every ``interval`` s from ``now + interval`` until
        :meth:`stop` (``garp_extra_if``); replaces the owner's earlier periodic set. No
        targets or no interval: none."""
        self._refresh.pop((owner, "extra_if"), None)
        if interval > 0 and targets:
            self._refresh[(owner, "extra_if")] = _Refresh(
                owner, now + interval, tuple(targets), interval, 1
            )

    def periodic(self, owner: str) -> tuple[float, tuple[Target, ...]] | None:
        """The owner's ``every`` set as (interval, targets); None without one."""
        r = self._refresh.get((owner, "extra_if"))
        return None if r is None else (r.interval, r.targets)

    def lower_priority_advert(self, owner: str, now: float, targets: Sequence[Target]) -> None:
        """A MASTER heard a lower-priority advert (split brain healing): announce again."""
        tm = self.timing
        repeat = tm.master_repeat if tm.lower_prio_repeat is None else tm.lower_prio_repeat
        delay = tm.master_delay if tm.lower_prio_delay is None else tm.lower_prio_delay
        self._enqueue(owner, now, targets, repeat)
        if delay > 0:
            self._enqueue(owner, now + delay, targets, repeat)

    def stop(self, owner: str) -> None:
        """Leaving MASTER: drop everything still pending for ``owner``."""
        for periodic in [k for k in self._refresh if k[0] == owner]:
            del self._refresh[periodic]
        for key, queue in self._queues.items():
            kept = [e for e in queue if e[2] != owner]
            if len(kept) != len(queue):
                heapq.heapify(kept)
                self._queues[key] = kept

    def pending(self, owner: str | None = None) -> int:
        return sum(1 for q in self._queues.values() for e in q if owner in (None, e[2]))

    def _slot(self, key: tuple[str, int]) -> float | None:
        queue = self._queues.get(key)
        if not queue:
            return None
        return max(queue[0][0], self._next_free.get(key, float("-inf")))

    def next_due(self) -> float | None:
        """When the next frame (or refresh) is due; ``None`` when idle."""
        times = [s for s in (self._slot(k) for k in self._queues) if s is not None]
        times += [r.next_at for r in self._refresh.values()]
        return min(times) if times else None

    def due(self, now: float) -> list[Planned]:
        """Everything due at ``now``, paced per interface; in send order."""
        for r in self._refresh.values():
            while r.next_at <= now:
                self._enqueue(r.owner, r.next_at, r.targets, r.repeat)
                r.next_at += r.interval
        out: list[Planned] = []
        for key, queue in self._queues.items():
            interval = self._interval(*key)
            while queue:
                slot = self._slot(key)
                if slot is None or slot > now:
                    break
                _, _, owner, target = heapq.heappop(queue)
                out.append(Planned(slot, target, self.frames.get(target), owner))
                self._next_free[key] = slot + interval
        out.sort()
        return out


class FrameSender:
    """Sends prebuilt frames on ``AF_PACKET`` raw sockets, one per interface.

    A packet socket belongs to the network namespace that is current when it is opened:
    the ones named in ``ifnames`` are opened at construction, any other on first use. Sends
    never block: a full socket buffer counts as a drop rather than stalling the loop.
    """

    def __init__(self, ifnames: Iterable[str] = ()) -> None:
        self._socks: dict[str, socket.socket] = {}
        self.sent = 0
        self.dropped = 0
        for ifname in ifnames:
            self.open(ifname)

    def open(self, ifname: str) -> None:
        """Open (or keep) the socket for ``ifname`` in the current namespace."""
        self._sock(ifname)

    def _sock(self, ifname: str) -> socket.socket:
        sock = self._socks.get(ifname)
        if sock is None:
            try:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                sock.bind((ifname, 0))
                sock.setblocking(False)
            except OSError as exc:
                raise AnnounceError(f"cannot open raw socket on {ifname}: {exc}") from exc
            self._socks[ifname] = sock
        return sock

    def send(self, ifname: str, frame: bytes) -> bool:
        """Send one frame; False if dropped because the socket buffer was full."""
        sock = self._sock(ifname)
        try:
            sock.send(frame)
        except BlockingIOError:
            self.dropped += 1
            log.warning("netd.announce.dropped", ifname=ifname)
            return False
        except OSError as exc:
            # The interface vanished or went down: the caller decides whether to reopen.
            self._socks.pop(ifname, None)
            sock.close()
            raise AnnounceError(f"send on {ifname} failed: {exc}") from exc
        self.sent += 1
        return True

    def send_planned(self, planned: Iterable[Planned]) -> int:
        n = 0
        for p in planned:
            n += self.send(p.target.ifname, p.frame)
        return n

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
