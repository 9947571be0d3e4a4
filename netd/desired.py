"""Desired network state: addresses, routes and rules as immutable values.

The field set follows keepalived's entry syntax (keepalived 2.2.7) closely enough
that the config layer can map a parsed ``virtual_ipaddress`` / ``virtual_routes`` /
``virtual_rules`` line onto these classes one to one. Values are normalised on construction
(compressed IP text, ``default`` spelled as ``0.0.0.0/0`` or ``::/0``) so two spellings of
the same item compare equal and reconcile to nothing.

Items arrive as core model parts (``netd.fromconfig``) and remember that origin, which is how
``net.applied`` failure reports name them; netd has no wire form of its own for them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from netd.errors import InvalidItemError

__all__ = [
    "ENCAP_TYPES",
    "ROUTE_METRICS",
    "ROUTE_PREFS",
    "ROUTE_TYPES",
    "RULE_ACTIONS",
    "SCOPES",
    "Address",
    "DesiredSet",
    "Encap",
    "Item",
    "ItemKey",
    "Nexthop",
    "Route",
    "Rule",
    "describe",
    "item_key",
    "with_origin",
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

#: lightweight-tunnel encapsulations (LWTUNNEL_ENCAP_*) netd can install.
ENCAP_TYPES: Final[Mapping[str, int]] = {"mpls": 1, "ip": 2, "ila": 3, "ip6": 4}

#: route metrics (RTAX_*) by their ``ip route`` name; ``mtu`` has its own Route field.
ROUTE_METRICS: Final[Mapping[str, int]] = {
    "lock": 1,
    "window": 3,
    "rtt": 4,
    "rttvar": 5,
    "ssthresh": 6,
    "cwnd": 7,
    "advmss": 8,
    "reordering": 9,
    "hoplimit": 10,
    "initcwnd": 11,
    "features": 12,
    "rto_min": 13,
    "initrwnd": 14,
    "quickack": 15,
    "congctl": 16,
    "fastopen_no_cookie": 17,
}
RTAX_MTU: Final = 2

#: IPv6 router preference (RTA_PREF) names.
ROUTE_PREFS: Final[Mapping[str, int]] = {"medium": 0, "high": 1, "low": 3}

MAX_MPLS_LABEL: Final = 0xFFFFF
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
    #: the configuration entry it came from, as the bus names it (see ``with_origin``)
    origin: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

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


def _uint(value: int, bits: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise InvalidItemError(f"{what}: {value!r} is not a {bits}-bit unsigned number")


@dataclass(frozen=True, slots=True)
class Encap:
    """A route's lightweight-tunnel encapsulation (``encap mpls|ip|ip6|ila``).

    For ``ip6`` ``tos`` is the traffic class and ``ttl`` the hop limit. Unset numbers are 0
    and an unset source is ``None``, as the kernel reports them.
    """

    type: str
    labels: tuple[int, ...] = ()
    id: int = 0
    dst: str | None = None
    src: str | None = None
    tos: int = 0
    ttl: int = 0
    flags: int = 0
    locator: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ENCAP_TYPES:
            raise InvalidItemError(f"encap: unknown type {self.type!r}")
        _set(self, "labels", tuple(self.labels))
        for label in self.labels:
            _uint(label, 20, "encap mpls label")
        if self.type == "mpls" and not self.labels:
            raise InvalidItemError("encap mpls: needs at least one label")
        _uint(self.id, 64, "encap id")
        _uint(self.tos, 8, "encap tos")
        _uint(self.ttl, 8, "encap ttl")
        _uint(self.flags, 16, "encap flags")
        want = 6 if self.type == "ip6" else 4
        for name in ("dst", "src"):
            text = getattr(self, name)
            if text is None:
                continue
            ip = _ip(text, f"encap {name}")
            if ip.version != want:
                raise InvalidItemError(f"encap {self.type}: {name} {text} of another family")
            _set(self, name, None if name == "src" and int(ip) == 0 else str(ip))
        if self.type in ("ip", "ip6") and self.dst is None and not self.id:
            raise InvalidItemError(f"encap {self.type}: needs a dst or an id")
        if self.type == "ila":
            if self.locator is None:
                raise InvalidItemError("encap ila: needs a locator")
            groups = self.locator.split(":")
            try:
                ok = len(groups) == 4 and all(0 <= int(g, 16) <= 0xFFFF for g in groups)
            except ValueError:
                ok = False
            if not ok:
                raise InvalidItemError(f"encap ila: bad locator {self.locator!r}")
            _set(self, "locator", ":".join(f"{int(g, 16):04x}" for g in groups))


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One path of a multipath route. ``dev`` ``None`` means "the kernel resolves it"."""

    via: str | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False
    realms: int | None = None
    encap: Encap | None = None

    def __post_init__(self) -> None:
        if self.via is None and self.dev is None:
            raise InvalidItemError("nexthop: needs via or dev")
        if self.via is not None:
            _set(self, "via", str(_ip(self.via, "nexthop via")))
        if isinstance(self.weight, bool) or not 1 <= self.weight <= 256:
            raise InvalidItemError(f"nexthop: weight {self.weight!r} out of range 1..256")
        if self.realms is not None:
            _uint(self.realms, 32, "nexthop realms")


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
    nexthops: tuple[Nexthop, ...] = ()
    encap: Encap | None = None
    metrics: tuple[tuple[str, int | str], ...] = ()
    realms: int | None = None
    pref: int | None = None
    # The kernel counts it down, so a read-back never matches: installed once, not compared.
    expires: int | None = field(default=None, compare=False)
    #: source prefix of an IPv6 source-specific route (``from``); part of its identity.
    from_prefix: str | None = None
    #: the configuration entry it came from, as the bus names it (see ``with_origin``)
    origin: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        fam: int | None = None
        nexthops = tuple(self.nexthops)
        for text in (*(nh.via for nh in nexthops), self.via, self.src):
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
        self._normalise_paths(nexthops)
        if self.type == "unicast" and self.via is None and self.dev is None and not self.nexthops:
            raise InvalidItemError(f"route {self.dst}: a unicast route needs via or dev")
        self._check_metrics()
        if self.realms is not None:
            _uint(self.realms, 32, f"route {self.dst} realms")
        self._check_ipv6_options()
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

    def _check_ipv6_options(self) -> None:
        """``pref``, ``from`` and ``expires`` exist for IPv6 routes only."""
        v6 = self.family == socket.AF_INET6
        if self.pref is not None:
            if not v6:
                raise InvalidItemError(f"route {self.dst}: pref is IPv6-only")
            _uint(self.pref, 8, f"route {self.dst} pref")
        if self.from_prefix is not None:
            if not v6 or _family_of(self.from_prefix) != self.family:
                raise InvalidItemError(f"route {self.dst}: from is IPv6-only")
            _set(self, "from_prefix", _net(self.from_prefix, self.family, "route from"))
        if self.expires is not None:
            if not v6:
                raise InvalidItemError(f"route {self.dst}: expires is IPv6-only")
            _uint(self.expires, 32, f"route {self.dst} expires")

    def _normalise_paths(self, nexthops: tuple[Nexthop, ...]) -> None:
        for nh in nexthops:
            if nh.via is not None and _family_of(nh.via) != self.family:
                raise InvalidItemError(f"route {self.dst}: nexthop {nh.via} of another family")
        if nexthops and (self.via is not None or self.dev is not None or self.encap is not None):
            raise InvalidItemError(f"route {self.dst}: via/dev/encap given with nexthops")
        if len(nexthops) == 1:
            # The kernel stores (and reports) a one-path multipath route as a plain one.
            (nh,) = nexthops
            _set(self, "via", nh.via)
            _set(self, "dev", nh.dev)
            _set(self, "onlink", self.onlink or nh.onlink)
            _set(self, "encap", nh.encap)
            if nh.realms is not None:
                _set(self, "realms", nh.realms)
            nexthops = ()
        _set(self, "nexthops", nexthops)

    def _check_metrics(self) -> None:
        seen: dict[str, int | str] = {}
        for pair in self.metrics:
            name, value = pair
            if name not in ROUTE_METRICS:
                raise InvalidItemError(f"route {self.dst}: unknown metric {name!r}")
            if name == "congctl":
                if not isinstance(value, str) or not value:
                    raise InvalidItemError(f"route {self.dst}: congctl needs a name")
            else:
                # _uint itself refuses a value that is not an int; mypy sees str | int
                _uint(value, 32, f"route {self.dst} {name}")  # type: ignore[arg-type]
            seen[name] = value
        # Sorted by RTAX number, as the kernel reports them, so a read-back compares equal.
        _set(self, "metrics", tuple(sorted(seen.items(), key=lambda kv: ROUTE_METRICS[kv[0]])))

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
    invert: bool = False
    realms: int | None = None
    suppress_ifgroup: int | None = None
    l3mdev: bool = False
    uid_start: int | None = None
    uid_end: int | None = None
    ip_proto: int | None = None
    sport_start: int | None = None
    sport_end: int | None = None
    dport_start: int | None = None
    dport_end: int | None = None
    tun_id: int | None = None
    #: the configuration entry it came from, as the bus names it (see ``with_origin``)
    origin: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

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
        if self.action == "table" and self.table is None and not self.l3mdev:
            raise InvalidItemError(f"rule {self.priority}: needs a table")
        if self.l3mdev and (self.table is not None or self.action != "table"):
            raise InvalidItemError(f"rule {self.priority}: l3mdev takes no table or other type")
        self._check_selectors()
        if self.action == "goto" and self.goto is None:
            raise InvalidItemError(f"rule {self.priority}: goto needs a target preference")
        if not 0 <= self.priority < 2**32:
            raise InvalidItemError(f"rule {self.priority}: preference out of range")
        if self.fwmark is not None and self.fwmask is None:
            _set(self, "fwmask", 0xFFFFFFFF)  # what the kernel reports for a bare fwmark
        if self.fwmark is None and self.fwmask is not None:
            raise InvalidItemError(f"rule {self.priority}: fwmask without fwmark")

    def _check_selectors(self) -> None:
        """The numeric selectors: ranges in order and every number within its width."""
        for lo_name, hi_name, bits in (
            ("uid_start", "uid_end", 32),
            ("sport_start", "sport_end", 16),
            ("dport_start", "dport_end", 16),
        ):
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if (lo is None) != (hi is None):
                raise InvalidItemError(f"rule {self.priority}: {lo_name} needs {hi_name}")
            if lo is not None:
                _uint(lo, bits, f"rule {self.priority} {lo_name}")
                _uint(hi, bits, f"rule {self.priority} {hi_name}")
                if lo > hi:
                    raise InvalidItemError(f"rule {self.priority}: {lo_name} above {hi_name}")
        for name, bits in (("ip_proto", 8), ("realms", 32), ("suppress_ifgroup", 32)):
            if getattr(self, name) is not None:
                _uint(getattr(self, name), bits, f"rule {self.priority} {name}")
        if self.tun_id is not None:
            _uint(self.tun_id, 64, f"rule {self.priority} tunnel-id")


Item: TypeAlias = Address | Route | Rule
ItemKey: TypeAlias = tuple[Any, ...]


def with_origin(item: Item, kind: str, spec: Mapping[str, Any]) -> Item:
    """The item remembering the configuration entry it was made from: ``kind`` (``vip``,
    ``evip``, ``address``, ``route``, ``rule``) and ``spec`` (the core model part as plain
    data). netd's failure reports name an item so, in the form the intent gave it; the origin
    takes no part in comparisons."""
    _set(item, "origin", {"kind": kind, "spec": spec})
    return item


def item_key(item: Item) -> ItemKey:
    """The kernel's identity of an item: two items with one key cannot coexist.

    Items with the same key but other attributes are *changed*, not added.
    """
    if isinstance(item, Address):
        return ("addr", item.dev, item.ip, item.prefix, item.peer)
    if isinstance(item, Route):
        # IPv4 fib aliases are keyed by (table, dst, tos, priority); IPv6 by (table, dst, metric)
        # and, for source-specific routes, the source prefix.
        return ("route", item.family, item.table, item.dst, item.tos, item.metric, item.from_prefix)
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


_KIND_NAMES: Final[Mapping[type, str]] = {Address: "addr", Route: "route", Rule: "rule"}


def describe(item: Item) -> str:
    """One line for logs and reports: the kind and every field that is not its default
    (``addr ip=192.0.2.10 prefix=24 dev=eth0``)."""
    parts = [_KIND_NAMES[type(item)]]
    for f in dataclasses.fields(item):
        if f.name == "origin":
            continue
        value = getattr(item, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            parts.append(f"{f.name}={value}")
    return " ".join(parts)


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
