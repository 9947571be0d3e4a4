"""The minimal, correctly ordered nftables operations from one datapath layout to the next.

Pure: two :func:`~netd.lvs.layout.layout` results in, a :class:`Plan` out. The backend runs a
plan as one transaction, so its order only has to satisfy the kernel's references within it:
removals first (elements, then rules, then chains, then maps and sets: nothing is removed
while something still points at it), then additions the other way round. An object whose
content changed is removed and added again; so are the later rules of a chain that gains an
earlier rule (nftables appends, and the order of a chain's rules is its meaning).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from netd.lvs.layout import (
    AffinitySet,
    Chain,
    Element,
    IngressChain,
    Obj,
    Objects,
    Rule,
    SlotMap,
    layout,
)
from netd.lvs.model import VirtualServer

__all__ = ["Op", "Plan", "diff", "plan"]

_DEL_RANK = {Element: 0, Rule: 1, Chain: 2, IngressChain: 2, SlotMap: 3, AffinitySet: 3}
_ADD_RANK = {AffinitySet: 0, SlotMap: 0, Chain: 1, IngressChain: 1, Rule: 2, Element: 3}


@dataclass(frozen=True, slots=True)
class Op:
    verb: str  # "add" or "del"
    obj: Obj

    def __str__(self) -> str:
        return f"{self.verb} {describe(self.obj)}"


@dataclass(frozen=True, slots=True)
class Plan:
    objects: dict[tuple[str, ...], Obj]
    ops: tuple[Op, ...] = field(default=())

    def touched(self) -> set[str]:
        """Names of every chain, set and map an operation touches (a rule or element counts as
        its chain's or map's; an element also as its target's)."""
        out: set[str] = set()
        for op in self.ops:
            o = op.obj
            if isinstance(o, Rule):
                out.add(o.chain)
            elif isinstance(o, Element):
                out.update((o.map, o.target))
            else:
                out.add(o.name)
        return out


def describe(o: Obj) -> str:
    if isinstance(o, Chain):
        return f"chain {o.name}"
    if isinstance(o, IngressChain):
        return f"chain {o.name} (ingress of {o.device})"
    if isinstance(o, SlotMap):
        return f"map {o.name}"
    if isinstance(o, AffinitySet):
        return f"set {o.name}"
    if isinstance(o, Rule):
        return f"rule {o.chain}/{o.tag}"
    return f"element {o.map}[{o.label or o.key_bytes.hex()}] -> goto {o.target}"


def _reordered(old: Objects, new: Objects, added: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Kept rules that must be re-added because an earlier rule of their chain is added."""
    first_added: dict[str, int] = {}
    for k in added:
        o = new[k]
        if isinstance(o, Rule):
            first_added[o.chain] = min(o.order, first_added.get(o.chain, o.order))
    out: set[tuple[str, ...]] = set()
    for k, o in new.items():
        if (
            isinstance(o, Rule)
            and k in old
            and k not in added
            and o.order > first_added.get(o.chain, o.order)
        ):
            out.add(k)
    return out


def diff(old: Objects, new: Objects) -> tuple[Op, ...]:
    """Operations that turn a table holding ``old`` into one holding ``new``."""
    gone = {k for k in old if k not in new}
    changed = {k for k in old if k in new and old[k] != new[k]}
    added = (set(new) - set(old)) | changed
    redo = _reordered(old, new, added)
    dels = [old[k] for k in gone | changed | redo]
    adds = [new[k] for k in added | redo]
    dels.sort(key=lambda o: (_DEL_RANK[type(o)], _sort_key(o)))
    adds.sort(key=lambda o: (_ADD_RANK[type(o)], _sort_key(o)))
    return (*(Op("del", o) for o in dels), *(Op("add", o) for o in adds))


def _sort_key(o: Obj) -> tuple[str, int, str]:
    if isinstance(o, Rule):
        return (o.chain, o.order, o.tag)
    if isinstance(o, Element):
        return (o.map, 0, o.key_bytes.hex())
    return (o.name, 0, "")


def plan(applied: Objects, desired: Iterable[VirtualServer]) -> Plan:
    """What to change so the table implements ``desired``, given that it holds ``applied``."""
    new = layout(desired, applied)
    return Plan(new, diff(applied, new))


def ops_text(ops: Sequence[Op]) -> list[str]:
    return [str(op) for op in ops]
