"""The LVS datapath on nftables: one table of our own, changed only by atomic transactions.

This kernel-facing half runs what :mod:`netd.lvs.planner` decides: each change is one
transaction (:class:`netd.nftbatch.NftSocket`) whose acknowledgements are all read, so either
the kernel holds the whole new state or nothing changed and the error names the operation and
the kernel's reason. It remembers what it applied, and :meth:`NftablesBackend.reconcile` reads
the table back (chains, sets, maps, rule tags, map elements) and rebuilds it in one transaction
when someone changed it behind our back. The table carries a userdata marker; a table of that
name without it is never touched, and marked leftovers of a killed run are removed at start.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFPROTO_INET,
    NFT_MSG_GETCHAIN,
    NFT_MSG_GETRULE,
    NFT_MSG_GETSET,
    NFT_MSG_GETSETELEM,
    NFT_MSG_GETTABLE,
)

from netd.errors import NftError
from netd.lvs.layout import Chain, Element, Obj, Objects, Rule, layout
from netd.lvs.model import VirtualServer
from netd.lvs.nft_support import refuse_unsupported
from netd.lvs.planner import Op, diff, plan
from netd.lvs.render import MARKER, delete_table, request, skeleton
from netd.nftbatch import NftRequest, NftSocket

__all__ = ["DEFAULT_TABLE", "Applied", "NftablesBackend"]

log = structlog.get_logger(__name__)

DEFAULT_TABLE: Final = "pykeepalived_lvs"
_SKELETON_CHAINS: Final = frozenset({"dispatch", "prerouting", "output"})
_DISPATCH_MAPS: Final = ("svc4", "svc6", "fwm4", "fwm6")
_SKELETON_RULES: Final = frozenset(
    {("dispatch", t) for t in _DISPATCH_MAPS} | {("prerouting", "dispatch"), ("output", "dispatch")}
)

#: What a table shows when read back: chains, sets/maps, (chain, rule tag), map elements.
Signature = tuple[frozenset[str], frozenset[str], frozenset[tuple[str, str]], frozenset[Any]]


@dataclass(frozen=True, slots=True)
class Applied:
    """One transaction's outcome: its operations and the ruleset generation after it."""

    ops: tuple[Op, ...]
    generation: int
    rebuilt: bool = False


def _signature(objects: Objects) -> Signature:
    chains, sets, rules, elems = (
        set(_SKELETON_CHAINS),
        set(_DISPATCH_MAPS),
        set(_SKELETON_RULES),
        set(),
    )
    for o in objects.values():
        if isinstance(o, Rule):
            rules.add((o.chain, o.tag))
        elif isinstance(o, Element):
            elems.add((o.map, o.key_bytes.hex(), o.target))
        elif isinstance(o, Chain):
            chains.add(o.name)
        else:
            sets.add(o.name)
    return frozenset(chains), frozenset(sets), frozenset(rules), frozenset(elems)


class NftablesBackend:
    """The ``inet`` table ``table`` (netlink I/O; call from one thread only)."""

    name: Final = "nftables"

    def __init__(self, table: str = DEFAULT_TABLE) -> None:
        """Opens the socket now: the table lives in the caller's network namespace."""
        self.table = table
        self.sock = NftSocket(NFPROTO_INET)
        self._applied: dict[tuple[str, ...], Obj] = {}
        self._built = False

    @property
    def applied(self) -> Objects:
        return self._applied

    # ---- reading the kernel -----------------------------------------------------------------

    def _tables(self) -> dict[str, str]:
        """inet table name -> its userdata marker ("" if none)."""
        out = {}
        for msg in self.sock.dump(NFT_MSG_GETTABLE, (), "list tables"):
            out[str(msg.get_attr("NFTA_TABLE_NAME"))] = str(
                msg.get_attr("NFTA_TABLE_USERDATA") or ""
            )
        return out

    def rule_handles(self, chains: Iterable[str] | None = None) -> dict[tuple[str, str], int]:
        """(chain, rule tag) -> the kernel's handle for every rule of our table, or only of
        ``chains`` (a 1,000-server pool has over 1,000 rules: decoding them all costs ~100 ms,
        a one-server change needs one or two chains)."""
        out = {}
        table = (("NFTA_RULE_TABLE", self.table),)
        if chains is None:
            rules = self.sock.dump(NFT_MSG_GETRULE, table, "list rules")
        else:
            rules = [
                msg
                for chain in sorted(set(chains))
                for msg in self.sock.dump(
                    NFT_MSG_GETRULE, (*table, ("NFTA_RULE_CHAIN", chain)), f"list rules of {chain}"
                )
            ]
        for msg in rules:
            key = (str(msg.get_attr("NFTA_RULE_CHAIN")), str(msg.get_attr("NFTA_RULE_USERDATA")))
            out[key] = int(msg.get_attr("NFTA_RULE_HANDLE"))
        return out

    def _elements(self, name: str) -> set[tuple[str, str, str]]:
        attrs = (("NFTA_SET_ELEM_LIST_TABLE", self.table), ("NFTA_SET_ELEM_LIST_SET", name))
        out = set()
        for msg in self.sock.dump(NFT_MSG_GETSETELEM, attrs, f"list elements of {name}"):
            for elem in msg.get_attr("NFTA_SET_ELEM_LIST_ELEMENTS") or ():
                key = bytes(elem.get_attr("NFTA_SET_ELEM_KEY").get_attr("NFTA_DATA_VALUE"))
                data = elem.get_attr("NFTA_SET_ELEM_DATA")
                verdict = data.get_attr("NFTA_DATA_VERDICT") if data is not None else None
                target = verdict.get_attr("NFTA_VERDICT_CHAIN") if verdict is not None else None
                out.add((name, key.hex(), str(target)))
        return out

    def observe(self) -> Signature | None:
        """What the kernel's table holds now (``None``: no table of ours)."""
        if self._tables().get(self.table) != MARKER:
            return None
        table = (("NFTA_CHAIN_TABLE", self.table),)
        chains = {
            str(m.get_attr("NFTA_CHAIN_NAME"))
            for m in self.sock.dump(NFT_MSG_GETCHAIN, table, "list chains")
        }
        sets_msgs = self.sock.dump(NFT_MSG_GETSET, (("NFTA_SET_TABLE", self.table),), "list sets")
        sets, elems = set(), set()
        for msg in sets_msgs:
            name = str(msg.get_attr("NFTA_SET_NAME"))
            sets.add(name)
            flags = msg.get_attr("NFTA_SET_FLAGS") or ()
            if "NFT_SET_MAP" in flags:
                elems |= self._elements(name)
        rules = set(self.rule_handles())
        return frozenset(chains), frozenset(sets), frozenset(rules), frozenset(elems)

    # ---- changing it --------------------------------------------------------------------

    def start(self) -> list[str]:
        """Remove every inet table carrying our marker (a killed run's); return their names."""
        removed = [n for n, mark in self._tables().items() if mark == MARKER]
        if removed:
            self.sock.transaction([delete_table(n) for n in removed])
            for name in removed:
                log.info("netd.lvs.leftover_removed", table=name, detail="left by an earlier run")
        self._applied, self._built = {}, False
        return removed

    def _check_name_free(self) -> list[NftRequest]:
        mark = self._tables().get(self.table)
        if mark is None:
            return []
        if mark != MARKER:
            raise NftError(
                f"table inet {self.table}",
                errno.EEXIST,
                "EEXIST",
                "a table of that name exists and is not ours; not touching it",
            )
        return [delete_table(self.table)]  # ours, but not what we remember: start clean

    def check(self, vs: VirtualServer) -> None:
        """Raise :class:`netd.errors.LvsUnsupportedError` if this datapath cannot forward ``vs``."""
        refuse_unsupported(vs)

    def _build(self, desired: Sequence[VirtualServer], *, drift: bool) -> Applied:
        for vs in desired:
            refuse_unsupported(vs)
        objects = layout(desired, self._applied)
        ops = diff({}, objects)
        requests = [*self._check_name_free(), *skeleton(self.table)]
        requests += [request(self.table, op, {}) for op in ops]
        generation = self.sock.transaction(requests)
        self._applied, self._built = objects, True
        log.info(
            "netd.lvs.table",
            table=self.table,
            services=len(desired),
            operations=len(requests),
            generation=generation,
            rebuilt=drift,
        )
        return Applied(ops, generation, rebuilt=True)

    def apply(self, desired: Sequence[VirtualServer]) -> Applied:
        """Make the table implement ``desired`` in one transaction (only what changed)."""
        if not self._built:
            return self._build(desired, drift=False)
        for vs in desired:
            refuse_unsupported(vs)
        p = plan(self._applied, desired)
        if not p.ops:
            return Applied((), self.sock.generation())
        chains = [op.obj.chain for op in p.ops if op.verb == "del" and isinstance(op.obj, Rule)]
        handles = self.rule_handles(chains) if chains else {}
        generation = self.sock.transaction([request(self.table, op, handles) for op in p.ops])
        self._applied = p.objects
        for op in p.ops:
            log.debug("netd.lvs.op", table=self.table, op=str(op), generation=generation)
        return Applied(p.ops, generation)

    def reconcile(self, desired: Sequence[VirtualServer]) -> Applied:
        """Read the table back; rebuild it if it drifted from what we applied, then apply."""
        if self._built:
            seen = self.observe()
            want = _signature(self._applied)
            if seen != want:
                log.warning(
                    "netd.lvs.drift",
                    table=self.table,
                    detail="the table was changed outside netd" if seen else "the table is gone",
                )
                return self._build(desired, drift=True)
        return self.apply(desired)

    def withdraw(self) -> None:
        """Remove our table (nothing is balanced any more)."""
        if self._tables().get(self.table) == MARKER:
            self.sock.transaction([delete_table(self.table)])
            log.info("netd.lvs.removed", table=self.table)
        self._applied, self._built = {}, False

    def close(self) -> None:
        self.sock.close()
