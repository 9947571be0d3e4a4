"""From the configuration model (core) to netd's desired items.

vrrpd's intents and the static blocks both carry core model parts (``Address``, ``Route``,
``Rule`` as plain data); this is the one place that knows how keepalived's options map onto
what netd installs. A part that cannot be installed raises ``InvalidItemError`` naming it.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import core
from bus import messages
from netd import rtnames
from netd.desired import (
    ROUTE_METRICS,
    ROUTE_PREFS,
    RT_TABLE_MAIN,
    RTAX_MTU,
    SCOPES,
    Address,
    Encap,
    Item,
    Nexthop,
    Route,
    Rule,
    with_origin,
)
from netd.errors import InvalidItemError


def _table(text: str | None) -> int:
    if text is None:
        return RT_TABLE_MAIN
    try:
        return int(text, 0)
    except ValueError:
        pass
    names = rtnames.table_names()
    if text not in names:
        raise InvalidItemError(
            f"table {text!r} is neither a number nor a name in /etc/iproute2/rt_tables "
            "(or rt_tables.d/*.conf)"
        )
    return names[text]


def _scope(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    if text not in SCOPES:
        raise InvalidItemError(f"unknown scope {text!r} (one of {', '.join(SCOPES)})")
    return SCOPES[text]


def address(part: core.Address, default_dev: str | None) -> Address:
    ip, _, prefix = part.address.partition("/")
    family_bits = 128 if ":" in ip else 32
    dev = part.dev or default_dev
    if dev is None:
        raise InvalidItemError(f"address {part.address}: no interface (dev) given")
    return Address(
        ip=ip,
        prefix=int(prefix) if prefix else family_bits,
        dev=dev,
        brd=part.broadcast,
        label=part.label,
        scope=_scope(part.scope) or 0,
        peer=part.peer,
        noprefixroute=part.noprefixroute,
        no_track=part.no_track,
    )


# rtm_protocol names (iproute2's rt_protos) a config may give instead of a number.
_ROUTE_PROTOCOLS = {
    "unspec": 0,
    "redirect": 1,
    "kernel": 2,
    "boot": 3,
    "static": 4,
    "keepalived": 18,
}
# Unit -> milliseconds for rtt/rttvar/rto_min, as iproute2's get_time_rtt.
_TIME_MS = {"s": 1000.0, "sec": 1000.0, "secs": 1000.0, "ms": 1.0, "msec": 1.0, "msecs": 1.0}
_TIME_MS |= {"us": 0.001, "usec": 0.001, "usecs": 0.001}
# iproute2 sends a time given with a unit in the kernel's units: rtt in 1/8 ms, rttvar 1/4 ms.
_TIME_SCALE = {"rtt": 8, "rttvar": 4, "rto_min": 1}


def _realms(text: str) -> int:
    src, _, dst = text.rpartition("/")
    return (int(src) << 16 if src else 0) | int(dst)


def _metric_value(name: str, text: str) -> int | str:
    if name == "congctl":
        return text
    if name == "features":
        return 1  # RTAX_FEATURE_ECN, the only one keepalived accepts
    if name in _TIME_SCALE:
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(digits) :]
        if not unit:
            return int(digits)  # raw kernel units, as iproute2
        if unit not in _TIME_MS:
            raise InvalidItemError(f"{name}: unknown time unit in {text!r}")
        return round(int(digits) * _TIME_MS[unit]) * _TIME_SCALE[name]
    return int(text)


def _route_options(part: core.Route) -> dict[str, Any]:
    """The validated option words of a core Route as desired Route fields."""
    out: dict[str, Any] = {}
    metrics: dict[str, int | str] = {}
    lock = 0
    for opt in part.options:
        name, value = opt[0], opt[-1]
        if name == "tos":
            out["tos"] = int(value, 0)
        elif name == "realms":
            out["realms"] = _realms(value)
        elif name == "pref":
            out["pref"] = ROUTE_PREFS[value] if value in ROUTE_PREFS else int(value)
        elif name == "expires":
            out["expires"] = int(value)
        elif name == "mtu":
            out["mtu"] = int(value)
        elif name in ROUTE_METRICS:
            metrics[name] = _metric_value(name, value)
        else:
            raise InvalidItemError(f"route {part.dest}: option {name!r} is not supported")
        # The kernel honours rto_min only when locked, so iproute2 always locks it.
        if (len(opt) == 3 and opt[1] == "lock") or name == "rto_min":
            lock |= 1 << (RTAX_MTU if name == "mtu" else ROUTE_METRICS[name])
    if lock:
        metrics["lock"] = lock
    if metrics:
        out["metrics"] = tuple(metrics.items())
    return out


def _encap(part: core.Encap | None) -> Encap | None:
    if part is None:
        return None
    return Encap(
        type=part.type,
        labels=part.labels,
        id=part.id or 0,
        dst=part.dst,
        src=part.src,
        tos=part.tos or 0,
        ttl=part.ttl or 0,
        flags=part.flags or 0,
        locator=part.locator,
    )


def _protocol(text: str | None) -> int | None:
    if text is None:
        return None
    if text in _ROUTE_PROTOCOLS:
        return _ROUTE_PROTOCOLS[text]
    try:
        return int(text, 0)
    except ValueError:
        raise InvalidItemError(f"unknown route protocol {text!r}") from None


def route(part: core.Route, default_dev: str | None) -> Route:
    kind = part.type or "unicast"
    dev = part.dev
    nexthops = tuple(
        Nexthop(
            via=nh.via,
            dev=nh.dev or part.dev,
            weight=nh.weight or 1,
            onlink=nh.onlink,
            realms=_realms(nh.realms) if nh.realms else None,
            encap=_encap(nh.encap),
        )
        for nh in part.nexthops
    )
    via = part.via
    if part.via_or is not None:
        # keepalived turns the deprecated `via A or B` into two nexthops.
        nexthops = (Nexthop(via=via, dev=dev), Nexthop(via=part.via_or, dev=dev))
        via = None
    if nexthops:
        dev = None
    elif dev is None and via is None and kind == "unicast":
        dev = default_dev
    return Route(
        dst=part.dest,
        via=via,
        dev=dev,
        src=part.src,
        table=_table(part.table),
        metric=part.metric,
        proto=_protocol(part.protocol),
        scope=_scope(part.scope),
        type=kind,
        onlink=part.onlink,
        no_track=part.no_track,
        nexthops=nexthops,
        encap=_encap(part.encap),
        from_prefix=part.from_,
        **_route_options(part),
    )


def _range(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def rule(part: core.Rule, index: int) -> Rule:
    family = socket.AF_INET6 if part.family in ("inet6", "6") else socket.AF_INET
    action = part.type or ("goto" if part.goto is not None else "table")
    fwmark, fwmask = None, None
    if part.fwmark:
        mark, _, mask = part.fwmark.partition("/")
        fwmark = int(mark, 0)
        fwmask = int(mask, 0) if mask else None
    # keepalived gives un-numbered rules a preference; a stable one keeps reloads idempotent.
    priority = part.preference if part.preference is not None else 32000 - index
    uid_start, uid_end = _range(part.uidrange)
    sport_start, sport_end = _range(part.sport)
    dport_start, dport_end = _range(part.dport)
    wants_table = part.table or (action == "table" and not part.l3mdev)
    return Rule(
        priority=priority,
        table=_table(part.table) if wants_table else None,
        src=part.from_,
        dst=part.to,
        family=family,
        iif=part.iif,
        oif=part.oif,
        fwmark=fwmark,
        fwmask=fwmask,
        action=action,
        goto=part.goto,
        no_track=part.no_track,
        tos=int(part.tos, 0) if part.tos else 0,
        invert=part.invert,
        realms=_realms(part.realms) if part.realms else None,
        suppress_prefixlength=part.suppress_prefixlength,
        suppress_ifgroup=part.suppress_ifgroup,
        l3mdev=part.l3mdev,
        protocol=part.protocol,
        uid_start=uid_start,
        uid_end=uid_end,
        ip_proto=part.ipproto,
        sport_start=sport_start,
        sport_end=sport_end,
        dport_start=dport_start,
        dport_end=dport_end,
        tun_id=part.tunnel_id,
    )


def intent_items(
    items: Sequence[messages.IntentItem], interface: str | None, vip_interface: str | None = None
) -> list[Item]:
    """Items of a ``vrrp.intent.<instance>`` message (core model parts tagged with a kind),
    each remembering the entry it came from.

    ``vip_interface`` is where VIPs without ``dev`` go when it differs from the instance's
    interface: with ``use_vmac`` keepalived puts them on the VMAC.
    """
    out: list[Item] = []
    rules = 0
    for entry in items:
        kind, spec = entry.kind, entry.spec
        item: Item
        if kind == "vip":
            item = address(core.part_from_wire(core.Address, spec), vip_interface or interface)
        elif kind == "evip":
            item = address(core.part_from_wire(core.Address, spec), interface)
        elif kind == "route":
            item = route(core.part_from_wire(core.Route, spec), interface)
        else:
            item = rule(core.part_from_wire(core.Rule, spec), rules)
            rules += 1
        out.append(with_origin(item, kind, spec))
    return out


def static_items(config: core.Config) -> list[Item]:
    """``static_ipaddress``, ``static_routes`` and ``static_rules``: held whatever the state."""
    default_dev = config.global_defs.default_interface
    items: list[Item] = [
        with_origin(address(a, default_dev), "address", core.part_to_wire(a))
        for a in config.static_ipaddress
    ]
    items += [
        with_origin(route(r, default_dev), "route", core.part_to_wire(r))
        for r in config.static_routes
    ]
    items += [
        with_origin(rule(r, i), "rule", core.part_to_wire(r))
        for i, r in enumerate(config.static_rules)
    ]
    return items
