"""From the configuration model (core) to netd's desired items.

vrrpd's intents and the static blocks both carry core model parts (``Address``, ``Route``,
``Rule`` as plain data); this is the one place that knows how keepalived's options map onto
what netd installs. A part that cannot be installed raises ``InvalidItemError`` naming it.
"""

from __future__ import annotations

import socket
from typing import Any

import core
from netd.desired import RT_TABLE_MAIN, SCOPES, Address, Item, Route, Rule
from netd.errors import InvalidItemError

# keepalived's default rule preference when none is given (ip rule's own is "next free").
_TABLE_NAMES = {"main": 254, "local": 255, "default": 253}


def _table(text: str | None) -> int:
    if text is None:
        return RT_TABLE_MAIN
    if text in _TABLE_NAMES:
        return _TABLE_NAMES[text]
    try:
        return int(text)
    except ValueError:
        raise InvalidItemError(
            f"table {text!r} is neither a number nor main/local/default "
            "(names from /etc/iproute2/rt_tables are not supported yet)"
        ) from None


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


def route(part: core.Route, default_dev: str | None) -> Route:
    kind = part.type or "unicast"
    dev = part.dev
    if dev is None and part.via is None and kind == "unicast":
        dev = default_dev
    return Route(
        dst=part.dest,
        via=part.via,
        dev=dev,
        src=part.src,
        table=_table(part.table),
        metric=part.metric,
        scope=_scope(part.scope),
        type=kind,
        onlink=part.onlink,
        no_track=part.no_track,
    )


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
    return Rule(
        priority=priority,
        table=_table(part.table) if part.table or action == "table" else None,
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
    )


def intent_items(
    items: list[dict[str, Any]], interface: str | None, vip_interface: str | None = None
) -> list[Item]:
    """Items of a ``vrrp.intent.<instance>`` message: ``{"kind": ..., "spec": <core part>}``.

    ``vip_interface`` is where VIPs without ``dev`` go when it differs from the instance's
    interface: with ``use_vmac`` keepalived puts them on the VMAC.
    """
    out: list[Item] = []
    rules = 0
    for entry in items:
        kind, spec = entry["kind"], entry["spec"]
        if kind == "vip":
            out.append(address(core.part_from_wire(core.Address, spec), vip_interface or interface))
        elif kind == "evip":
            out.append(address(core.part_from_wire(core.Address, spec), interface))
        elif kind == "route":
            out.append(route(core.part_from_wire(core.Route, spec), interface))
        elif kind == "rule":
            out.append(rule(core.part_from_wire(core.Rule, spec), rules))
            rules += 1
        else:
            raise InvalidItemError(f"unknown intent item kind {kind!r}")
    return out


def static_items(config: core.Config) -> list[Item]:
    """``static_ipaddress``, ``static_routes`` and ``static_rules``: held whatever the state."""
    default_dev = config.global_defs.default_interface
    items: list[Item] = [address(a, default_dev) for a in config.static_ipaddress]
    items += [route(r, default_dev) for r in config.static_routes]
    items += [rule(r, i) for i, r in enumerate(config.static_rules)]
    return items
