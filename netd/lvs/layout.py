"""Virtual servers -> the nftables objects that implement them (pure; see docs/lvs.md).

The table follows kube-proxy's nftables layout, with weights, persistence and sorry servers::

    map svc4 { ipv4_addr . inet_proto . inet_service : verdict }   # + svc6, fwm4, fwm6
    chain dispatch { ip daddr . meta l4proto . th dport vmap @svc4 ; ... meta mark vmap @fwm4 }
    chain <vs>      { jump <vs>-aff                      # persistence only
                      numgen inc mod N vmap @<vs>-slots } # or random / jhash ip saddr
    map <vs>-slots  { 0 : goto <vs>-<rs>, ... }          # a server holds <weight> slots
    chain <vs>-aff  { ip saddr & mask @<vs>-<rs>-aff goto <vs>-<rs> ; ... }
    set <vs>-<rs>-aff { ipv4_addr; flags dynamic,timeout; timeout <persistence_timeout> }
    chain <vs>-<rs> { update @<vs>-<rs>-aff { ip saddr & mask } ; dnat to <rs>:<port> }

Every object is named after what it serves (service, then server address and port), so one
server's change touches only its own chain, set, affinity rule and slots: when its slots go,
the modulus shrinks and only the slots above the new modulus move into the holes (each still
pointing at the server it pointed at). An inhibited server (weight 0) keeps its chain, set and
affinity rule, so established flows (conntrack) and persistent clients keep reaching it; it only
loses its slots.

``lvs_method DR`` virtual servers are laid out for a second table (``netdev``, see
docs/lvs.md) with the same objects, except that every real server has an affinity set (keyed
on the client's address and port when there is no persistence: ingress has no conntrack, so
that set is what keeps a connection on its server) and its chain ends in ``fwd`` instead of
``dnat`` (:class:`DrForward`); :func:`dr_base` adds an ingress chain per interface.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from netd.errors import LvsConfigError
from netd.lvs.model import (
    FALLBACK_SCHEDULERS,
    PROTOCOLS,
    Forwarding,
    Member,
    Service,
    VirtualServer,
)
from netd.lvs.nft_support import refuse_unsupported

__all__ = [
    "DISPATCH_MAPS",
    "MAX_SLOTS",
    "Affinity",
    "AffinitySet",
    "Chain",
    "DrForward",
    "Drop",
    "Element",
    "Forward",
    "IngressChain",
    "Jump",
    "Obj",
    "Objects",
    "Pick",
    "Rule",
    "SlotMap",
    "Stmt",
    "assign_slots",
    "dr_base",
    "layout",
    "members_of",
    "notes",
    "previous_slots",
    "service_chain",
    "slot_counts",
]

#: A service's slot map never grows beyond this many slots (weights are scaled down).
MAX_SLOTS: Final = 1024
#: (family, fwmark?) -> the dispatch map the service's element goes in
DISPATCH_MAPS: Final = {
    (4, False): "svc4",
    (6, False): "svc6",
    (4, True): "fwm4",
    (6, True): "fwm6",
}
JHASH_SEED: Final = 0x6B65_6570  # fixed, so sh/dh keep their choice across restarts
#: DR is stateless (no conntrack at ingress): a connection stays on its server through a
#: per-server set of (client address . port) refreshed by each of its packets; an idle flow is
#: forgotten after this many seconds (IPVS's established TCP timeout).
FLOW_TIMEOUT: Final = 900


@dataclass(frozen=True, slots=True)
class Jump:
    chain: str


@dataclass(frozen=True, slots=True)
class Drop:
    """No server can take a new connection (every weight 0, no sorry server)."""


@dataclass(frozen=True, slots=True)
class Pick:
    """``<how> mod <modulus> vmap @<slots>``: how is ``inc``, ``random``, ``jhash-saddr`` or
    ``jhash-daddr``."""

    how: str
    modulus: int
    slots: str
    family: int


@dataclass(frozen=True, slots=True)
class Affinity:
    """``ip saddr & mask @<set> goto <target>`` (``flow``: ``ip saddr . th sport @<set>``)."""

    family: int
    prefix: int
    set_name: str
    target: str
    flow: bool = False


@dataclass(frozen=True, slots=True)
class Forward:
    """``[update @<affinity> { ip saddr & mask }] dnat to <address>[:<port>]``."""

    family: int
    address: str
    port: int | None
    affinity: str | None
    prefix: int


@dataclass(frozen=True, slots=True)
class DrForward:
    """``update @<affinity> { key } ; fwd ip to <address> device <ifindex>`` (lvs_method DR:
    the destination stays the VIP, the kernel resolves the real server's MAC)."""

    family: int
    address: str
    ifindex: int
    affinity: str
    prefix: int
    flow: bool


Stmt: TypeAlias = Jump | Drop | Pick | Affinity | Forward | DrForward


@dataclass(frozen=True, slots=True)
class Chain:
    name: str

    @property
    def key(self) -> tuple[str, ...]:
        return ("chain", self.name)


@dataclass(frozen=True, slots=True)
class IngressChain:
    """A netdev base chain on ``device``'s ingress hook (the DR table)."""

    name: str
    device: str

    @property
    def key(self) -> tuple[str, ...]:
        return ("chain", self.name)


@dataclass(frozen=True, slots=True)
class SlotMap:
    name: str

    @property
    def key(self) -> tuple[str, ...]:
        return ("map", self.name)


@dataclass(frozen=True, slots=True)
class AffinitySet:
    name: str
    family: int
    timeout: int  # seconds
    flow: bool = False  # keyed by address . port (DR connections), not the address alone

    @property
    def key(self) -> tuple[str, ...]:
        return ("set", self.name)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, found again by its ``tag`` (stored as the rule's userdata). Rules of one chain
    run in ``order``."""

    chain: str
    tag: str
    order: int
    stmt: Stmt

    @property
    def key(self) -> tuple[str, ...]:
        return ("rule", self.chain, self.tag)


@dataclass(frozen=True, slots=True)
class Element:
    """``key : goto <target>`` in map ``map``."""

    map: str
    key_bytes: bytes
    target: str
    label: str = field(compare=False, default="")

    @property
    def key(self) -> tuple[str, ...]:
        return ("elem", self.map, self.key_bytes.hex())


Obj: TypeAlias = Chain | IngressChain | SlotMap | AffinitySet | Rule | Element
#: Object key -> object: everything the table holds beyond its fixed skeleton.
Objects: TypeAlias = Mapping[tuple[str, ...], Obj]


def service_chain(vs: VirtualServer) -> str:
    s = vs.service
    if s.fwmark is not None:
        return f"vs-fwm{s.family}-{s.fwmark}"
    return f"vs-{s.protocol}-{s.address}-{s.port}"


def slot_counts(vs: VirtualServer) -> dict[str, int]:
    """Server id -> number of slots: its weight, scaled down only when the weights add up to
    more than :data:`MAX_SLOTS` (a server with a weight keeps at least one slot). Weights are
    not reduced by their gcd: then one server's change would move the others' slots too.
    ``fo`` gives the only slot to the first server of the highest weight."""
    weights = {rid: m.weight for rid, m in vs.pool() if m.weight > 0}
    if not weights:
        return {}
    if vs.scheduler == "fo":
        top = max(weights.values())
        first = next(rid for rid, w in weights.items() if w == top)
        return {first: 1}
    if vs.scheduler == "rr":
        return dict.fromkeys(weights, 1)  # rr ignores weights, except 0
    counts = dict(weights)
    total = sum(counts.values())
    if total > MAX_SLOTS:
        counts = {rid: max(1, c * MAX_SLOTS // total) for rid, c in counts.items()}
    return counts


def assign_slots(previous: Mapping[int, str], counts: Mapping[str, int]) -> dict[int, str]:
    """Slot -> server id for ``counts``, moving as few slots as possible from ``previous``.

    A server keeps its lowest slots that stay below the new modulus, up to its new count; the
    free slots below the modulus then go, lowest first, to the servers that need more (in the
    order of ``counts``).
    """
    total = sum(counts.values())
    held: dict[str, int] = dict.fromkeys(counts, 0)
    out: dict[int, str] = {}
    for slot in sorted(previous):
        rid = previous[slot]
        if slot < total and rid in counts and held[rid] < counts[rid]:
            out[slot] = rid
            held[rid] += 1
    free = (s for s in range(total) if s not in out)
    for rid, n in counts.items():
        for _ in range(n - held[rid]):
            out[next(free)] = rid
    return out


def _pick_how(vs: VirtualServer) -> str:
    if vs.scheduler in ("rr", "wrr"):
        return "inc"
    if vs.scheduler in ("sh", "mh"):
        return "jhash-saddr"
    if vs.scheduler == "dh":
        return "jhash-daddr"
    assert vs.scheduler in FALLBACK_SCHEDULERS or vs.scheduler == "fo"
    return "random"


def _dispatch_key(s: Service) -> tuple[bytes, str]:
    if s.fwmark is not None:
        return struct.pack("=I", s.fwmark), f"mark {s.fwmark}"
    assert s.address is not None
    addr = ipaddress.ip_address(s.address).packed
    # concatenated key: each field padded to 4 bytes (registers are 32-bit)
    key = addr + bytes([PROTOCOLS[s.protocol], 0, 0, 0]) + struct.pack("!H", s.port) + b"\0\0"
    return key, f"{s.address} . {s.protocol} . {s.port}"


def _dr_member_objects(
    vs: VirtualServer, svc: str, rid: str, m: Member, routes: Mapping[str, int]
) -> list[Obj]:
    chain, fam = f"{svc}-{rid}", vs.service.family
    aff = f"{chain}-aff"
    prefix = 32 if fam == 4 else 128
    flow = vs.persistence is None
    timeout = FLOW_TIMEOUT
    if vs.persistence is not None:
        prefix, timeout = vs.persistence.prefix or prefix, vs.persistence.timeout
    if m.address not in routes:
        raise LvsConfigError(f"{vs.name or vs.service}: no route to real server {m.address}")
    return [
        Chain(chain),
        AffinitySet(aff, fam, timeout, flow),
        Rule(f"{svc}-aff", rid, 0, Affinity(fam, prefix, aff, chain, flow)),
        Rule(chain, "fwd", 0, DrForward(fam, m.address, routes[m.address], aff, prefix, flow)),
    ]


def _member_objects(vs: VirtualServer, svc: str, rid: str, m: Member) -> list[Obj]:
    chain = f"{svc}-{rid}"
    fam = vs.service.family
    out: list[Obj] = [Chain(chain)]
    aff: str | None = None
    prefix = 32 if fam == 4 else 128
    if vs.persistence is not None:
        aff = f"{chain}-aff"
        prefix = vs.persistence.prefix or prefix
        out.append(AffinitySet(aff, fam, vs.persistence.timeout))
        out.append(Rule(f"{svc}-aff", rid, 0, Affinity(fam, prefix, aff, chain)))
    port = m.port if m.port is not None else vs.service.port or None
    out.append(Rule(chain, "fwd", 0, Forward(fam, m.address, port, aff, prefix)))
    return out


def _service_objects(
    vs: VirtualServer, previous: Mapping[int, str], routes: Mapping[str, int] | None
) -> list[Obj]:
    refuse_unsupported(vs)
    dr = vs.forwarding is Forwarding.DR
    if dr and routes is None:
        raise LvsConfigError(f"{vs.name or vs.service}: lvs_method DR belongs in the DR table")
    svc = service_chain(vs)
    fam = vs.service.family
    slots_map = f"{svc}-slots"
    out: list[Obj] = [Chain(svc), SlotMap(slots_map)]
    for s in (vs.service, *vs.aliases):  # a group's addresses and marks share the chain
        key, label = _dispatch_key(s)
        out.append(Element(DISPATCH_MAPS[(s.family, s.fwmark is not None)], key, svc, label))
    if vs.persistence is not None or dr:
        out += [Chain(f"{svc}-aff"), Rule(svc, "aff", 0, Jump(f"{svc}-aff"))]
    for rid, m in vs.pool():
        if routes is not None and dr:
            out += _dr_member_objects(vs, svc, rid, m, routes)
        else:
            out += _member_objects(vs, svc, rid, m)
    slots = assign_slots(previous, slot_counts(vs))
    for slot, rid in sorted(slots.items()):
        out.append(Element(slots_map, struct.pack("=I", slot), f"{svc}-{rid}", str(slot)))
    stmt: Stmt = Pick(_pick_how(vs), len(slots), slots_map, fam) if slots else Drop()
    out.append(Rule(svc, "pick", 1, stmt))
    return out


def previous_slots(objects: Objects, vs: VirtualServer) -> dict[int, str]:
    """The slot -> server id assignment ``objects`` hold for ``vs``."""
    svc = service_chain(vs)
    slots_map = f"{svc}-slots"
    out: dict[int, str] = {}
    for obj in objects.values():
        if isinstance(obj, Element) and obj.map == slots_map:
            (slot,) = struct.unpack("=I", obj.key_bytes)
            out[slot] = obj.target.removeprefix(f"{svc}-")
    return out


def layout(
    desired: Iterable[VirtualServer],
    previous: Objects,
    routes: Mapping[str, int] | None = None,
) -> dict[tuple[str, ...], Obj]:
    """Every object the table should hold for ``desired``; slots stay where ``previous`` has
    them wherever they can. ``routes`` (real server address -> the director's interface index
    it is reached through) is given for the DR table only: its virtual servers are all DR."""
    out: dict[tuple[str, ...], Obj] = {}
    seen: dict[str, VirtualServer] = {}
    for vs in desired:
        svc = service_chain(vs)
        if svc in seen:
            raise LvsConfigError(f"{vs.service}: defined twice")
        seen[svc] = vs
        for obj in _service_objects(vs, previous_slots(previous, vs), routes):
            if obj.key in out:  # a dispatch element: two virtual servers claim one service
                assert isinstance(obj, Element)
                raise LvsConfigError(f"{vs.name or vs.service}: {obj.label} is defined twice")
            out[obj.key] = obj
    return out


def dr_base(devices: Iterable[str]) -> dict[tuple[str, ...], Obj]:
    """The DR table's ingress chains, one per interface of the director, each jumping to the
    dispatch chain: a client's packet is taken at whichever interface it arrives on."""
    out: dict[tuple[str, ...], Obj] = {}
    for dev in sorted(set(devices)):
        chain = f"ingress-{dev}"
        for obj in (IngressChain(chain, dev), Rule(chain, "dispatch", 0, Jump("dispatch"))):
            out[obj.key] = obj
    return out


def members_of(objects: Objects, chain: str) -> Sequence[str]:
    """Slot targets of ``chain``'s slot map (for tests and logs), in slot order."""
    slots_map = f"{chain}-slots"
    elems = [o for o in objects.values() if isinstance(o, Element) and o.map == slots_map]
    return [e.target for e in sorted(elems, key=lambda e: struct.unpack("=I", e.key_bytes)[0])]


def notes(vs: VirtualServer) -> list[str]:
    """Where the nftables datapath behaves differently from IPVS for ``vs``, one sentence
    each (for ``-t`` and the log; docs/lvs.md has the whole list)."""
    where = vs.name or str(vs.service)
    out = []
    if vs.scheduler in FALLBACK_SCHEDULERS:
        out.append(
            f"{where}: lvs_sched {vs.scheduler} needs connection counts, which nftables does not "
            "keep: new connections are spread at random by weight"
        )
    if vs.scheduler == "mh":
        out.append(
            f"{where}: lvs_sched mh is a source-address hash (jhash), not Maglev: changing the "
            "pool remaps most clients"
        )
    if vs.persistence is not None:
        out.append(
            f"{where}: persistence_timeout counts from the client's last new connection, not "
            "from the end of its last connection"
        )
    return out
