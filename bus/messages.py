"""Every public bus message as one typed class: the one definition publishers and subscribers
share.

``Message.encode()`` gives the body to publish; ``Cls.decode(topic, body)`` checks an untrusted
body field by field (``bus.wirefields`` says how types map to the wire) and raises
``MessageRejected("schema", ...)`` naming the first bad field. ``bus.schemas`` derives the
per-topic required fields from these classes and docs/bus.md documents every field (a test
keeps them in step).

Items inside an intent are core model parts as plain data (``core.part_to_wire``), tagged with
their kind; netd's failure reports name an item in that same form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bus.wirefields import MAX_ENTRIES, Message, Struct, wire

__all__ = [
    "MESSAGES",
    "AddrChange",
    "Applied",
    "ConfigCurrent",
    "ConfigRejected",
    "ConfigReload",
    "ExtraIf",
    "Failure",
    "Heartbeat",
    "Held",
    "Intent",
    "IntentItem",
    "LinkReport",
    "LogRecord",
    "Renew",
    "SplitBrain",
    "StateReport",
    "Synced",
    "TrackerShare",
    "Verdict",
    "Vmac",
    "message_for",
]

#: a whole configuration model or diff: only the payload limit (16 MiB) bounds it
_BIG = 16 * 1024 * 1024


# ---- config ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigCurrent(Message):
    PATTERN = "config.current"
    SUMMARY = "the running configuration (retained)"

    generation: int
    hash: str
    path: str
    #: the typed model as plain data (``core.to_wire(..., omit_defaults=True)``)
    model: Mapping[str, Any] = field(metadata=wire(max_len=_BIG))
    diff: Mapping[str, Any] = field(metadata=wire(max_len=_BIG))
    reason: str


@dataclass(frozen=True, slots=True)
class ConfigRejected(Message):
    PATTERN = "config.rejected"
    SUMMARY = "a reload that failed validation; the old config keeps running"

    kept_generation: int
    path: str
    problems: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ConfigReload(Message):
    PATTERN = "config.reload"
    SUMMARY = "a request to reload (pykeepalivedctl reload)"


# ---- health ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict(Message):
    """A check verdict; external checkers may send only ``name`` and ``ok``."""

    PATTERN = "health.*"
    SUMMARY = "a check verdict (retained by checkd)"

    name: str
    ok: bool
    kind: str | None = None
    reason: str | None = None
    weight: int | None = None
    reverse: bool | None = None
    rc: int | None = None
    value: int | None = None
    count: int | None = None
    disabled: bool | None = None
    #: seconds the verdict holds after it is received, whatever the configuration says
    #: (vrrpd.freshness, checkd.external); without it the check's own interval decides
    ttl: float | None = field(default=None, metadata=wire(positive=True))


# ---- check (the LVS pools, docs/checkers.md) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolMember(Struct):
    """One real server in a virtual server's pool."""

    id: str
    ip: str
    alive: bool
    port: int | None = None
    weight: int | None = None
    effective_weight: int | None = None
    #: the weight it is balanced with; absent (null) while it is not in the pool
    pool_weight: int | None = None


@dataclass(frozen=True, slots=True)
class PoolReport(Message):
    """A virtual server's pool as checkd keeps it."""

    PATTERN = "check.pool.*"
    SUMMARY = "a virtual server's pool (retained by checkd)"

    vs: str
    quorum_up: bool
    members: tuple[PoolMember, ...]
    name: str | None = None
    key: str | None = None
    quorum: int | None = None
    hysteresis: int | None = None
    live_weight: int | None = None
    sorry_server: str | None = None
    sorry_active: bool | None = None
    sorry_weight: int | None = None
    ha_suspended: bool | None = None


@dataclass(frozen=True, slots=True)
class CheckerResult(Struct):
    """One checker of a real server: its verdict after retries and its last attempt."""

    id: str
    kind: str
    up: bool
    has_run: bool | None = None
    ok: bool | None = None
    reason: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class RealServerReport(Message):
    """One real server's verdict and its checkers' last results."""

    PATTERN = "check.rs.*"
    SUMMARY = "a real server's verdict and its checkers' last results (retained by checkd)"

    vs: str
    rs: str
    alive: bool
    checkers: tuple[CheckerResult, ...]
    ip: str | None = None
    port: int | None = None
    weight: int | None = None
    effective_weight: int | None = None
    pool_weight: int | None = None
    ha_suspended: bool | None = None


# ---- vrrp ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrackerShare(Struct):
    """What one tracker adds to an instance's priority (or that it puts it in FAULT)."""

    tracker: str
    weight: int
    reverse: bool
    #: true/false, a track_file value, or absent before its first report
    status: bool | int | None = None
    delta: int = 0
    fault: bool = False
    #: why a status false was assumed rather than reported: ``stale`` (the verdict outlived
    #: its time), ``never reported`` (an ``init_fail`` script before its first verdict)
    assumed: str | None = None


@dataclass(frozen=True, slots=True)
class StateReport(Message):
    """An instance's state; the transition fields describe the last transition."""

    PATTERN = "vrrp.state.*"
    SUMMARY = "an instance's state (retained); transitions carry old/new/cause"

    instance: str
    state: str
    priority: int
    base_priority: int | None = None
    vrid: int | None = None
    interface: str | None = None
    family: int | None = None
    version: int | None = None
    master: str | None = None
    vips: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    trackers: tuple[TrackerShare, ...] = ()
    drops: Mapping[str, int] = field(default_factory=dict)
    stats: Mapping[str, int] = field(default_factory=dict)
    transitions: int | None = None
    old: str | None = None
    new: str | None = None
    cause: str | None = None
    cause_kind: str | None = None
    peer: str | None = None
    timer: str | None = None
    tracker: str | None = None


@dataclass(frozen=True, slots=True)
class IntentItem(Struct):
    """One thing netd installs: a core model part (``core.part_to_wire``) of one kind."""

    kind: Literal["vip", "evip", "route", "rule"]
    spec: Mapping[str, Any] = field(metadata=wire(max_len=256))


@dataclass(frozen=True, slots=True)
class Vmac(Struct):
    """A macvlan netd creates for ``use_vmac`` / ``use_vmac_addr``."""

    base: str
    name: str
    vrid: int
    family: int
    mac: str | None = None
    always: bool = True
    #: only on the instance's own VMAC: adverts leave from the base interface
    xmit_base: bool | None = None
    #: only on the instance's own VMAC: the name was picked, not configured
    default_name: bool | None = None


@dataclass(frozen=True, slots=True)
class ExtraIf(Struct):
    """``garp_extra_if``: a GARP/NA every ``interval`` s on VMACs (all interfaces with ``all``)."""

    interval: float
    all: bool = False


@dataclass(frozen=True, slots=True)
class Intent(Message):
    """What netd should install for one instance while it is held, valid ``lease`` seconds."""

    PATTERN = "vrrp.intent.*"
    SUMMARY = "desired addresses/routes/rules of one instance for netd (retained)"

    instance: str
    generation: int
    items: tuple[IntentItem, ...]
    lease: float
    held: bool = False
    interface: str | None = None
    family: int | None = None
    accept: bool = True
    #: a counter: each increase asks for one GARP/NA burst of ``garp_count``
    announce: int = 0
    garp_count: int = 0
    garp: Mapping[str, float] = field(default_factory=dict, metadata=wire(max_len=16))
    vmac: Vmac | None = None
    addr_vmacs: tuple[Vmac, ...] = ()
    garp_extra_if: ExtraIf | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Renew(Message):
    """Renews held intents without repeating them: instance -> (generation, lease)."""

    PATTERN = "vrrp.renew"
    SUMMARY = "renews held intents by generation: instance -> [generation, lease]"

    leases: Mapping[str, tuple[int, float]]


@dataclass(frozen=True, slots=True)
class SplitBrain(Message):
    """A notice about an instance (``kind=split_brain``: a lower-priority master was heard)."""

    PATTERN = "vrrp.event.*"
    SUMMARY = "split brain and other notices"

    instance: str
    kind: str
    peer: str | None = None
    peer_priority: int | None = None
    peer_vips: tuple[str, ...] = ()
    priority: int | None = None
    vips: tuple[str, ...] = ()
    repeated: int | None = None


# ---- net -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure(Struct):
    """One thing netd could not do for an owner. ``item`` is an intent item's form
    (``{"kind": "vip", "spec": ...}``), or ``{"kind": "firewall", "table": ...}`` /
    ``{"kind": "vmac", "ifname": ...}`` /
    ``{"kind": "virtual_server", "key": ..., "name": ...}``."""

    item: Mapping[str, Any] = field(metadata=wire(max_len=256))
    action: str
    errno: str
    reason: str


@dataclass(frozen=True, slots=True)
class Applied(Message):
    """What netd installed for one owner (``vrrp:VI_1``, ``static``, ``lvs:<vs key>``)."""

    PATTERN = "net.applied.*"
    SUMMARY = "what netd applied for one owner (retained)"

    owner: str
    generation: int
    failures: tuple[Failure, ...]
    items: int | None = None
    fingerprint: str | None = None
    expired: bool | None = None
    #: for ``lvs:`` owners, the datapath holding the virtual server (``nftables``)
    backend: str | None = None


@dataclass(frozen=True, slots=True)
class Held(Message):
    """The ``vrrp:`` owners netd holds items for: those whose ``net.applied`` report lists
    installed items, or will once netd has installed the set it holds. Retained from netd's
    start (empty on a cold start), so a starting vrrpd knows at once that no report is coming
    for an instance not named (vrrpd.resume)."""

    PATTERN = "net.held"
    SUMMARY = "the vrrp owners netd holds items for (retained)"

    owners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkReport(Message):
    """One link: up means administratively up and carrier."""

    PATTERN = "net.link.*"
    SUMMARY = "one link (retained)"

    ifindex: int
    name: str
    up: bool
    mac: str | None = None
    oper_state: str | None = None
    addresses: tuple[str, ...] = ()
    #: which of ``addresses`` are primary (not secondary / not tentative); absent when the
    #: publisher does not say
    primary: tuple[str, ...] | None = None
    #: which of ``addresses`` are IPv6 tentative (duplicate address detection running)
    tentative: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class AddrChange(Message):
    PATTERN = "net.addr"
    SUMMARY = "an address appeared or vanished"

    ifindex: int
    address: str
    present: bool
    interface: str | None = None


# ---- components ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Synced(Message):
    """A publisher has re-sent the retained topics of every subscription that reached it
    before ``fence`` (a ``bus.fence.*`` subscription that no message is sent on)."""

    PATTERN = "bus.synced.*"
    SUMMARY = "a publisher's answer to a fence: its re-sends before it are out"

    publisher: str
    fence: str


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    PATTERN = "hb.*"
    SUMMARY = "heartbeat from a component's event loop"

    name: str
    uptime: float
    lag: float | None = None


@dataclass(frozen=True, slots=True)
class LogRecord(Message):
    """A structured log record; ``fields`` are its key=value pairs, flat in the body."""

    PATTERN = "log.*"
    SUMMARY = "a component's structured log record"

    event: str
    level: str
    fields: Mapping[str, Any] = field(
        default_factory=dict, metadata=wire(max_len=MAX_ENTRIES, rest=True)
    )


MESSAGES: tuple[type[Message], ...] = (
    ConfigCurrent,
    ConfigRejected,
    ConfigReload,
    Verdict,
    PoolReport,
    RealServerReport,
    StateReport,
    Intent,
    Renew,
    SplitBrain,
    Applied,
    Held,
    LinkReport,
    AddrChange,
    Heartbeat,
    Synced,
    LogRecord,
)


def message_for(topic: str) -> type[Message] | None:
    """The class of a public topic, None for a topic no class covers."""
    for cls in MESSAGES:
        if cls.covers(topic):
            return cls
    return None
