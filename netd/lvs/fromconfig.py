"""The virtual servers the datapath should hold: the configuration's ``virtual_server`` blocks
with the pools checkd publishes (``check.pool.<key>``). Pure: no I/O, no clock.

A virtual server's members are its configured real servers. checkd's pool says, for each one,
the weight it has in the pool (``pool_weight``; absent: not in the pool) and whether the sorry
server stands in. Until checkd has published a pool for a virtual server, every real server is
in it with its configured weight (keepalived starts them alive too), except an ``alpha`` one,
which waits for its first good check. A real server the pool does not list (the configuration
just added it) is handled the same way, and one the pool lists but the configuration no
longer has is left out: the configuration decides who exists, the pool how each one is doing.

A ``virtual_server_group``'s addresses, ports and marks (core.vsgroups expands them as checkd
does) share one pool: checkd publishes one for the group's virtual server.

What cannot be programmed (real servers mixing lvs methods, a group of over
:data:`MAX_GROUP_SERVICES` addresses, a bad granularity) is an error for that virtual server
alone, named by its key; what one datapath cannot forward (nftables: ``TUN``, port 0, fwmark
DR) is its backend's ``check()`` to say, in the driver.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from bus.messages import PoolReport
from core.model import Config, RealServer, VsgEntry
from core.model import VirtualServer as ConfigVs
from core.vsgroups import GroupEntryError, expand_group
from core.vsnames import vs_keys
from netd.errors import LvsConfigError, LvsUnsupportedError
from netd.lvs.model import SERVICE_FLAGS, Forwarding, Member, Persistence, Service, VirtualServer

__all__ = ["DEFAULT_SCHEDULER", "Desired", "desired_servers"]

#: keepalived's scheduler when a virtual server names none (``vs-no-scheduler`` in ``-t``).
DEFAULT_SCHEDULER = "wlc"
_MAX_WEIGHT = 65535  # IPVS's real server weight is an int, ours a slot count: cap it
#: a group's addresses are dispatch map elements: a /16 would be 65,536 of them
MAX_GROUP_SERVICES = 4096


@dataclass(frozen=True, slots=True)
class Desired:
    """Virtual servers by key, the configuration names of every key, and what cannot be
    programmed (key -> why)."""

    servers: dict[str, VirtualServer] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    errors: dict[str, LvsConfigError] = field(default_factory=dict)


def desired_servers(config: Config, pools: Mapping[str, PoolReport]) -> Desired:
    """What the datapath should forward for ``config``, given checkd's latest ``pools``."""
    out = Desired()
    groups = {g.name: g.entries for g in config.virtual_server_groups}
    for key, vs in vs_keys(config).items():
        out.names[key] = vs.name
        try:
            out.servers[key] = _virtual_server(vs, pools.get(key), groups)
        except LvsConfigError as exc:
            out.errors[key] = exc
    return out


def _virtual_server(
    vs: ConfigVs, pool: PoolReport | None, groups: Mapping[str, tuple[VsgEntry, ...]]
) -> VirtualServer:
    services = _group_services(vs, groups[vs.group]) if vs.group is not None else (_service(vs),)
    method = _method(vs)
    members = tuple(m for rs in vs.real_servers if (m := _member(vs, rs, method, pool)) is not None)
    sorry = None
    if vs.sorry_server is not None:
        port = _port(vs, vs.sorry_server.port, vs.sorry_forwarding())
        sorry = Member(vs.sorry_server.host, port, 1)
    return VirtualServer(
        services[0],
        (vs.lvs_sched or DEFAULT_SCHEDULER).lower(),
        _forwarding(vs.name, method),
        _persistence(vs),
        members,
        sorry,
        sorry_active=bool(pool is not None and pool.sorry_active and sorry is not None),
        name=vs.name,
        flags=frozenset(o.keyword for o in vs.other if o.keyword in SERVICE_FLAGS),
        aliases=services[1:],
        sorry_inhibit=vs.sorry_server_inhibit,
    )


def _group_services(vs: ConfigVs, entries: tuple[VsgEntry, ...]) -> tuple[Service, ...]:
    """Every address . port and mark of the group: an IPVS service each (as keepalived), or
    one chain, pool and scheduler sharing them all (nftables)."""
    try:
        members = expand_group(entries)
    except GroupEntryError as exc:
        raise LvsConfigError(f"{vs.name}: {exc}") from None
    out: list[Service] = []
    protocol = (vs.protocol or "udp").lower()
    for m in members:
        if m.fwmark is not None:
            out.append(Service(fwmark=m.fwmark, family=6 if m.family == "inet6" else 4))
            continue
        if len(out) + m.count > MAX_GROUP_SERVICES:
            raise LvsUnsupportedError(
                f"{vs.name}: virtual_server_group {vs.group} has more than "
                f"{MAX_GROUP_SERVICES} addresses"
            )
        out += [Service(a, protocol, m.port or 0) for a in m.addresses()]
    if not out:
        raise LvsConfigError(f"{vs.name}: virtual_server_group {vs.group} is empty")
    return tuple(out)


def _service(vs: ConfigVs) -> Service:
    if vs.fwmark is not None:
        return Service(fwmark=vs.fwmark, family=6 if vs.ip_family == "inet6" else 4)
    # No protocol on an addressed service is the kernel's default, UDP (as checkd).
    return Service(vs.ip, (vs.protocol or "udp").lower(), vs.port or 0)


def _method(vs: ConfigVs) -> str:
    """The one forwarding method of the virtual server's real servers and sorry server (each
    may name its own, keepalived allows mixing; NAT and DR live in different tables here)."""
    methods = {vs.forwarding_of(rs) for rs in vs.real_servers} or {(vs.lvs_method or "NAT").upper()}
    if vs.sorry_server is not None:
        methods.add(vs.sorry_forwarding())
    if len(methods) > 1:
        raise LvsUnsupportedError(
            f"{vs.name}: its real servers (and sorry server) mix lvs_method "
            f"{' and '.join(sorted(methods))}, which netd cannot program in one virtual server "
            "(one method per virtual server)"
        )
    return methods.pop()


def _forwarding(name: str, method: str) -> Forwarding:
    try:
        return Forwarding(method)
    except ValueError:
        raise LvsConfigError(f"{name}: unknown lvs_method {method!r}") from None


def _port(vs: ConfigVs, port: int | None, method: str) -> int | None:
    # As checkd (and keepalived): a NAT real server without a port takes the virtual
    # server's; a fwmark service has none, so the client's destination port is kept.
    if method == "NAT" and port:
        return port
    return vs.port or None


def _member(vs: ConfigVs, rs: RealServer, method: str, pool: PoolReport | None) -> Member | None:
    port = _port(vs, rs.port, method)
    if pool is not None:
        for m in pool.members:
            if m.ip == rs.ip and (m.port or None) == port:
                if m.pool_weight is None:
                    return None  # down (or the sorry server stands in) and not inhibited
                return Member(rs.ip, port, min(m.pool_weight, _MAX_WEIGHT), *_thresholds(rs))
    alpha = rs.alpha if rs.alpha is not None else vs.alpha
    if alpha:
        return None  # down until its first good check (checkd's pool will say)
    return Member(rs.ip, port, min(vs.real_server_weight(rs), _MAX_WEIGHT), *_thresholds(rs))


def _thresholds(rs: RealServer) -> tuple[int, int]:
    return (rs.uthreshold or 0, rs.lthreshold or 0)  # IPVS's; nftables has no counts


def _persistence(vs: ConfigVs) -> Persistence | None:
    # as keepalived, a persistence engine goes with persistence only
    engine = next((o.args[0] for o in vs.other if o.keyword == "persistence_engine"), None)
    if vs.persistence_timeout is None:
        if vs.fwmark is None and vs.group is None and not vs.port:
            # keepalived: "zero port only valid for persistent services" (a group's entries
            # have their own ports)
            return Persistence(engine=engine)
        return None
    prefix = _prefix(vs.name, vs.persistence_granularity)
    return Persistence(vs.persistence_timeout, prefix, engine)


def _prefix(name: str, granularity: str | None) -> int | None:
    """``persistence_granularity``: an IPv4 netmask (``255.255.255.0``) or a prefix length."""
    if granularity is None:
        return None
    try:
        if "." in granularity:
            return ipaddress.IPv4Network(f"0.0.0.0/{granularity}").prefixlen
        return int(granularity)
    except ValueError:
        raise LvsConfigError(
            f"{name}: persistence_granularity {granularity!r} is not a netmask or prefix length"
        ) from None
