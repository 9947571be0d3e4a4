"""Pure reconciliation: desired items vs observed kernel items -> ordered operations.

No kernel here. The kernel adapter reads the kernel into the same value types
(:mod:`netd.desired`) and tells us which observed items are *ours* (installed by netd: marked
with netd's protocol number or listed in its state file); only those may be deleted, so an
operator's own addresses, routes and rules are never touched.

Order of the plan, chosen so traffic keeps flowing and dependencies exist when needed:

1. add/replace addresses (routes may use them as ``src``),
2. add/replace routes, device routes before gateway routes (a gateway must be reachable),
3. add rules,
4. delete rules,
5. delete routes, gateway routes before device routes,
6. delete addresses, in reverse of the kernel's listing (secondaries before the primary,
   since deleting an IPv4 primary also flushes its secondaries unless promote_secondaries).

Applying the plan and planning again yields nothing (idempotence).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from netd.desired import Address, DesiredSet, Item, ItemKey, Nexthop, Route, Rule, item_key

__all__ = [
    "Action",
    "Conflict",
    "Merged",
    "Operation",
    "merge",
    "plan",
    "satisfies",
]


class Action(StrEnum):
    ADD = "add"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Operation:
    """One kernel change. For REPLACE, ``old`` is the observed item being superseded."""

    action: Action
    item: Item
    old: Item | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two owners want different items under one kernel identity; ``kept`` wins."""

    key: ItemKey
    kept_owner: str
    kept: Item
    dropped_owner: str
    dropped: Item


@dataclass(frozen=True, slots=True)
class Merged:
    items: tuple[Item, ...]
    owners: dict[ItemKey, tuple[str, ...]]
    conflicts: tuple[Conflict, ...]


# Fields where None in the desired item means "whatever the kernel chose is fine", so a
# kernel-filled default (route scope, IPv4 label = ifname, ...) does not cause churn.
_DONT_CARE_WHEN_NONE: Final[dict[type, frozenset[str]]] = {
    Address: frozenset({"brd", "label", "preferred_lft"}),
    Route: frozenset({"dev", "scope", "proto", "mtu", "pref"}),
    Rule: frozenset({"protocol"}),
}


def satisfies(desired: Item, observed: Item) -> bool:
    """True when ``observed`` (from the kernel) already is what ``desired`` asks for."""
    if type(desired) is not type(observed):
        return False
    loose = _DONT_CARE_WHEN_NONE[type(desired)]
    for f in dataclasses.fields(desired):
        if not f.compare:
            continue
        want = getattr(desired, f.name)
        if want is None and f.name in loose:
            continue
        if f.name == "nexthops":
            if not _nexthops_satisfy(want, getattr(observed, f.name)):
                return False
        elif want != getattr(observed, f.name):
            return False
    return True


def _nexthops_satisfy(want: tuple[Nexthop, ...], have: tuple[Nexthop, ...]) -> bool:
    # A nexthop without dev lets the kernel pick the interface from its gateway.
    return len(want) == len(have) and all(
        w == (h if w.dev is not None else dataclasses.replace(h, dev=None))
        for w, h in zip(want, have, strict=True)
    )


def merge(sets: Iterable[DesiredSet]) -> Merged:
    """Union of several owners' sets. Identical items are shared; on a real conflict the
    owner that sorts first keeps the key (deterministic), and the conflict is reported."""
    chosen: dict[ItemKey, tuple[str, Item]] = {}
    owners: dict[ItemKey, list[str]] = {}
    conflicts: list[Conflict] = []
    for ds in sorted(sets, key=lambda s: s.owner):
        for item in ds.items:
            key = item_key(item)
            if key not in chosen:
                chosen[key] = (ds.owner, item)
                owners[key] = [ds.owner]
            elif chosen[key][1] == item:
                if ds.owner not in owners[key]:
                    owners[key].append(ds.owner)
            else:
                kept_owner, kept = chosen[key]
                conflicts.append(Conflict(key, kept_owner, kept, ds.owner, item))
    return Merged(
        items=tuple(item for _, item in chosen.values()),
        owners={k: tuple(v) for k, v in owners.items()},
        conflicts=tuple(conflicts),
    )


def _route_rank(route: Route) -> int:
    # Device/link routes first on add; the reverse on delete.
    return 0 if route.via is None else 1


def plan(
    desired: Iterable[Item],
    observed: Iterable[Item],
    owned: Collection[ItemKey],
) -> list[Operation]:
    """Operations turning ``observed`` into ``desired`` without touching foreign items.

    ``owned`` holds the keys of observed items netd installed. An observed item whose key is
    desired but whose attributes differ is replaced even if it is not ours: the desired set
    is authoritative for the keys it names (keepalived likewise re-adds its VIPs).
    """
    want: dict[ItemKey, Item] = {}
    for item in desired:
        want.setdefault(item_key(item), item)
    have: dict[ItemKey, Item] = {}
    for item in observed:
        have.setdefault(item_key(item), item)

    adds: list[Operation] = []
    for key, item in want.items():
        old = have.get(key)
        if old is None:
            adds.append(Operation(Action.ADD, item))
        elif not satisfies(item, old):
            adds.append(Operation(Action.REPLACE, item, old))
    deletes = [
        Operation(Action.DELETE, item)
        for key, item in reversed(list(have.items()))
        if key in owned and key not in want
    ]

    def of(ops: list[Operation], cls: type) -> list[Operation]:
        return [op for op in ops if isinstance(op.item, cls)]

    # of(..., Route) keeps only Route items, which mypy cannot follow through isinstance.
    route_adds = sorted(of(adds, Route), key=lambda op: _route_rank(op.item))  # type: ignore[arg-type]
    route_dels = sorted(of(deletes, Route), key=lambda op: -_route_rank(op.item))  # type: ignore[arg-type]
    return [
        *of(adds, Address),
        *route_adds,
        *of(adds, Rule),
        *of(deletes, Rule),
        *route_dels,
        *of(deletes, Address),
    ]
