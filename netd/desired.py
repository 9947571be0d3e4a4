"""Desired network state: addresses, routes and rules as immutable values.

The field set follows keepalived's entry syntax (keepalived-features.md §2.10) closely enough
that the config layer can map a parsed ``virtual_ipaddress`` / ``virtual_routes`` /
``virtual_rules`` line onto these classes one to one. Values are normalised on construction
(compressed IP text, ``default`` spelled as ``0.0.0.0/0`` or ``::/0``) so two spellings of
the same item compare equal and reconcile to nothing.

``to_wire`` / ``from_wire`` give plain msgpack-able dicts for the bus.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from netd.errors import InvalidItemError, WireFormatError

__all__ = [
    "ROUTE_TYPES",
    "RULE_ACTIONS",
    "SCOPES",
    "Address",
    "DesiredSet",
    "Item",
    "ItemKey",
    "Route",
    "Rule",
    "item_from_wire",
    "item_key",
    "item_to_wire",
]

#: rtm_scope / ifa_scope names (iproute2's rt_scopes).
SCOPES: Final[Mapping[str, int]] = {
    "global": 0,
    "universe": 0,
    "site": 200,
    "link": 253,
    "host": 254,
    "nowhere": 255,
}

#: rtm_type names (iproute2's rtnl_rtntype_n2a).
ROUTE_TYPES: Final[Mapping[str, int]] = {
    "unicast": 1,
    "local": 2,
    "broadcast": 3,
    "anycast": 4,
    "multicast": 5,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
    "throw": 9,
    "nat": 10,
}

#: fib rule actions (FR_ACT_*), the ``type`` of an ``ip rule``.
RULE_ACTIONS: Final[Mapping[str, int]] = {
    "table": 1,
    "goto": 2,
    "nop": 3,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
}

RT_TABLE_MAIN: Final = 254
IP6_RT_PRIO_USER: Final = 1024
MAX_LABEL_LEN: Final = 15


def _ip(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidItemError(f"{what}: {text!r} is not an IP address") from exc


def _net(text: str, family: int | None, what: str) -> str:
    """Normalise ``net/len`` (host bits cleared), ``default``/``any``/``all``."""
    if text in ("default", "any", "all"):
        if family is None:
            raise InvalidItemError(f"{what}: {text!r} needs an address family")
        return "0.0.0.0/0" if family == socket.AF_INET else "::/0"
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise InvalidItemError(f"{what}: {text!r} is not a network") from exc


def _family_of(text: str) -> int:
    return socket.AF_INET6 if ":" in text else socket.AF_INET


def _scope(value: int | str, what: str) -> int:
    if isinstance(value, str):
        if value.isdigit():
            value = int(value)
        elif value in SCOPES:
            return SCOPES[value]
        else:
            raise InvalidItemError(f"{what}: unknown scope {value!r}")
    if not 0 <= value <= 255:
        raise InvalidItemError(f"{what}: scope {value} out of range")
    return value


def _set(obj: object, name: str, value: object) -> None:
    # Normalising inside __post_init__ of a frozen dataclass.
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True)
class Address:
    """One address on one interface (a VIP, an eVIP or a static address).

    ``brd`` may be an address, ``"+"`` (set host bits) or ``"-"`` (clear them); it is
    resolved to an address on construction. IPv6 addresses take no scope or label.
    ``preferred_lft`` ``None`` means keepalived's default (0 for an IPv6 /128, else forever).
    ``no_track`` concerns vrrpd only and does not take part in comparisons.
    """

    ip: str
    prefix: int
    dev: str
    brd: str | None = None
    label: str | None = None
    scope: int = 0
    peer: str | None = None
    preferred_lft: int | None = None
    noprefixroute: bool = False
    home: bool = False
    mngtmpaddr: bool = False
    autojoin: bool = False
    no_track: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        ip = _ip(self.ip, "address")
        _set(self, "ip", str(ip))
        maxlen = ip.max_prefixlen
        if not 0 <= self.prefix <= maxlen:
            raise InvalidItemError(f"address {self.ip}: prefix {self.prefix} out of range")
        if not self.dev:
            raise InvalidItemError(f"address {self.ip}: no interface (dev) given")
        _set(self, "scope", _scope(self.scope, f"address {self.ip}"))
        if self.peer is not None:
            peer = _ip(self.peer.split("/")[0], f"address {self.ip} peer")
            if peer.version != ip.version:
                raise InvalidItemError(f"address {self.ip}: peer {self.peer} of another family")
            _set(self, "peer", str(peer))
        if ip.version == 4 and (self.home or self.mngtmpaddr):
            raise InvalidItemError(f"address {self.ip}: home/mngtmpaddr are IPv6-only")
        if ip.version == 6:
            if self.label is not None:
                raise InvalidItemError(f"address {self.ip}: IPv6 addresses take no label")
            if self.brd is not None:
                raise InvalidItemError(f"address {self.ip}: IPv6 addresses take no broadcast")
            if self.scope != 0:
                raise InvalidItemError(f"address {self.ip}: IPv6 addresses take no scope")
            return
        if self.label is not None and len(self.label) > MAX_LABEL_LEN:
            raise InvalidItemError(f"address {self.ip}: label {self.label!r} too long (max 15)")
        if self.brd is not None:
            _set(self, "brd", self._resolve_brd(ipaddress.IPv4Address(int(ip)), self.brd))

    def _resolve_brd(self, ip: ipaddress.IPv4Address, brd: str) -> str:
        if brd in ("+", "-"):
            if self.prefix > 30:
                raise InvalidItemError(f"address {ip}: brd {brd} needs a prefix of 30 or less")
            net = ipaddress.IPv4Network(f"{ip}/{self.prefix}", strict=False)
            return str(net.broadcast_address if brd == "+" else net.network_address)
        return str(_ip(brd, f"address {ip} brd"))

    @property
    def family(self) -> int:
        return _family_of(self.ip)

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefix}"

    def effective_preferred_lft(self) -> int | None:
        """keepalived's default: an IPv6 /128 VIP is added deprecated (preferred_lft 0)."""
        if self.preferred_lft is not None:
            return self.preferred_lft
        if self.family == socket.AF_INET6 and self.prefix == 128:
            return 0
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """One route. ``dst`` is ``net/len`` or ``default``; ``type`` a name from ROUTE_TYPES.

    ``proto`` ``None`` means "netd's own marker" (see ``netd.kernel.NETD_PROTO``); set it only
    when the config gives ``protocol`` explicitly. ``metric`` ``None`` means the kernel default.
    """

    dst: str
    via: str | None = None
    dev: str | None = None
    src: str | None = None
    table: int = RT_TABLE_MAIN
    metric: int | None = None
    proto: int | None = None
    scope: int | None = None
    type: str = "unicast"
    onlink: bool = False
    tos: int = 0
    mtu: int | None = None
    no_track: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        fam: int | None = None
        for text in (self.via, self.src):
            if text is not None:
                fam = _family_of(text)
        if self.dst not in ("default", "any", "all"):
            fam = _family_of(self.dst)
        _set(self, "dst", _net(self.dst, fam, "route dst"))
        if self.via is not None:
            _set(self, "via", str(_ip(self.via, f"route {self.dst} via")))
        if self.src is not None:
            _set(self, "src", str(_ip(self.src, f"route {self.dst} src")))
        for text in (self.via, self.src):
            if text is not None and _family_of(text) != self.family:
                raise InvalidItemError(f"route {self.dst}: {text} is of another family")
        if self.type not in ROUTE_TYPES:
            raise InvalidItemError(f"route {self.dst}: unknown type {self.type!r}")
        if self.type == "unicast" and self.via is None and self.dev is None:
            raise InvalidItemError(f"route {self.dst}: a unicast route needs via or dev")
        if self.scope is not None:
            _set(self, "scope", _scope(self.scope, f"route {self.dst}"))
        if not 0 <= self.table < 2**32:
            raise InvalidItemError(f"route {self.dst}: table {self.table} out of range")
        # Spell the kernel's defaults the way it reports them, so read-back compares equal:
        # IPv4 metric 0 is "no metric", an IPv6 route without one gets 1024.
        if self.family == socket.AF_INET and self.metric == 0:
            _set(self, "metric", None)
        elif self.family == socket.AF_INET6 and self.metric is None:
            _set(self, "metric", IP6_RT_PRIO_USER)

    @property
    def family(self) -> int:
        return _family_of(self.dst)


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy-routing rule (``ip rule``). ``src``/``dst`` are ``net/len``.

    keepalived assigns a preference when the config gives none; netd requires one so a rule
    has a stable identity (the config layer applies keepalived's defaults).
    """

    priority: int
    table: int | None = None
    src: str | None = None
    dst: str | None = None
    family: int = socket.AF_INET
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int = 0
    action: str = "table"
    goto: int | None = None
    suppress_prefixlength: int | None = None
    protocol: int | None = None
    no_track: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        fam = self.family
        for text in (self.src, self.dst):
            if text is not None:
                fam = _family_of(text)
        _set(self, "family", fam)
        if self.src is not None:
            _set(self, "src", _net(self.src, fam, "rule from"))
        if self.dst is not None:
            _set(self, "dst", _net(self.dst, fam, "rule to"))
        for text in (self.src, self.dst):
            if text is not None and _family_of(text) != fam:
                raise InvalidItemError(f"rule {self.priority}: from/to of mixed families")
        if self.action not in RULE_ACTIONS:
            raise InvalidItemError(f"rule {self.priority}: unknown type {self.action!r}")
        if self.action == "table" and self.table is None:
            raise InvalidItemError(f"rule {self.priority}: needs a table")
        if self.action == "goto" and self.goto is None:
            raise InvalidItemError(f"rule {self.priority}: goto needs a target preference")
        if not 0 <= self.priority < 2**32:
            raise InvalidItemError(f"rule {self.priority}: preference out of range")
        if self.fwmark is not None and self.fwmask is None:
            _set(self, "fwmask", 0xFFFFFFFF)  # what the kernel reports for a bare fwmark
        if self.fwmark is None and self.fwmask is not None:
            raise InvalidItemError(f"rule {self.priority}: fwmask without fwmark")


Item: TypeAlias = Address | Route | Rule
ItemKey: TypeAlias = tuple[Any, ...]


def item_key(item: Item) -> ItemKey:
    """The kernel's identity of an item: two items with one key cannot coexist.

    Items with the same key but other attributes are *changed*, not added.
    """
    if isinstance(item, Address):
        return ("addr", item.dev, item.ip, item.prefix, item.peer)
    if isinstance(item, Route):
        # IPv4 fib aliases are keyed by (table, dst, tos, priority); IPv6 by (table, dst, metric).
        return ("route", item.family, item.table, item.dst, item.tos, item.metric)
    # Rules have no identity beyond their content; the kernel refuses exact duplicates and
    # ignores the protocol when it compares them.
    return (
        "rule",
        *(
            getattr(item, f.name)
            for f in dataclasses.fields(item)
            if f.compare and f.name != "protocol"
        ),
    )


_KINDS: Final[Mapping[str, type[Address] | type[Route] | type[Rule]]] = {
    "addr": Address,
    "route": Route,
    "rule": Rule,
}


def item_to_wire(item: Item) -> dict[str, Any]:
    """A plain dict: ``{"kind": "addr"|"route"|"rule", <non-default fields>...}``."""
    kind = {Address: "addr", Route: "route", Rule: "rule"}[type(item)]
    out: dict[str, Any] = {"kind": kind}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            out[f.name] = value
    return out


def item_from_wire(data: Mapping[str, Any]) -> Item:
    if not isinstance(data, Mapping):
        raise WireFormatError(f"item must be a map, got {type(data).__name__}")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireFormatError(f"unknown item kind {kind!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names) - {"kind"}
    if unknown:
        raise WireFormatError(f"{kind}: unknown field(s) {sorted(unknown)}")
    kwargs = {k: v for k, v in data.items() if k != "kind"}
    for k, v in kwargs.items():
        if not isinstance(v, str | int | bool | type(None)):
            raise WireFormatError(f"{kind}.{k}: unsupported value type {type(v).__name__}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise WireFormatError(f"{kind}: {exc}") from exc
    except InvalidItemError as exc:
        raise WireFormatError(f"{kind}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DesiredSet:
    """Everything one owner wants installed, as of one generation.

    ``owner`` is e.g. ``"vrrp:VI_1"`` or ``"static"``. A newer generation replaces the older
    one as a whole (level-triggered): an item missing from it is to be removed. ``lease``
    (seconds) bounds how long netd keeps the items without a refresh from the owner
    (``None`` = until replaced; used for static items).
    """

    owner: str
    generation: int
    items: tuple[Item, ...] = ()
    lease: float | None = None

    def __post_init__(self) -> None:
        if not self.owner:
            raise InvalidItemError("desired set without owner")
        _set(self, "items", tuple(self.items))

    @property
    def addresses(self) -> tuple[Address, ...]:
        return tuple(i for i in self.items if isinstance(i, Address))

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(i for i in self.items if isinstance(i, Route))

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(i for i in self.items if isinstance(i, Rule))

    def to_wire(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "generation": self.generation,
            "lease": self.lease,
            "items": [item_to_wire(i) for i in self.items],
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> DesiredSet:
        if not isinstance(data, Mapping):
            raise WireFormatError("desired set must be a map")
        owner, gen, lease, items = (
            data.get("owner"),
            data.get("generation"),
            data.get("lease"),
            data.get("items", []),
        )
        if not isinstance(owner, str) or not owner:
            raise WireFormatError("desired set: owner must be a non-empty string")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise WireFormatError("desired set: generation must be a non-negative integer")
        if lease is not None and (not isinstance(lease, int | float) or isinstance(lease, bool)):
            raise WireFormatError("desired set: lease must be a number or null")
        if not isinstance(items, list | tuple):
            raise WireFormatError("desired set: items must be a list")
        return cls(
            owner=owner,
            generation=gen,
            items=tuple(item_from_wire(i) for i in items),
            lease=None if lease is None else float(lease),
        )
