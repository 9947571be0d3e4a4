"""One nftables table of ours, changed only by atomic transactions (netlink I/O).

Both LVS tables are one of these: the ``inet`` NAT table and the ``netdev`` DR table. What
differs is given: the family, the marker, the fixed skeleton (created with the table) and
what it holds (``fixed``, so the read-back can be compared). The objects beyond the skeleton
come from :func:`netd.lvs.layout.layout` and :func:`netd.lvs.planner.diff`. Each change is
planned (``plan_*``: a :class:`Pending`, the requests and what to remember once committed) and
run by :func:`transact`, alone or with the other table's part, as one transaction
(:class:`netd.nftbatch.NftSocket`) whose acknowledgements are all read: either the kernel holds
the whole new state of both tables or nothing changed, and the error names the operation and
the kernel's reason. A table of our name without our marker is never touched.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_GETCHAIN,
    NFT_MSG_GETRULE,
    NFT_MSG_GETSET,
    NFT_MSG_GETSETELEM,
    NFT_MSG_GETTABLE,
)

from netd.errors import NftError
from netd.lvs.layout import Chain, Element, IngressChain, Obj, Rule
from netd.lvs.planner import Op, diff
from netd.lvs.render import delete_table, request
from netd.nftbatch import NftRequest, NftSocket

__all__ = ["Applied", "Fixed", "NftTable", "Pending", "Signature", "transact"]

_RULE_CHAIN, _RULE_HANDLE, _RULE_USERDATA = 2, 3, 7  # NFTA_RULE_*

log = structlog.get_logger(__name__)

#: What a table shows when read back: chains, sets/maps, (chain, rule tag), map elements.
Signature = tuple[frozenset[str], frozenset[str], frozenset[tuple[str, str]], frozenset[Any]]


@dataclass(frozen=True, slots=True)
class Applied:
    """One transaction's outcome: its operations and the ruleset generation after it."""

    ops: tuple[Op, ...]
    generation: int
    rebuilt: bool = False


@dataclass(frozen=True, slots=True)
class Pending:
    """One table's part of a transaction: its requests (each naming the table's family), and
    what the table remembers once the transaction is committed (``finish``, given the
    generation). :func:`transact` runs several tables' parts as one transaction."""

    requests: tuple[NftRequest, ...]
    finish: Callable[[int], Applied]


def transact(sock: NftSocket, parts: Sequence[Pending]) -> tuple[Applied, ...]:
    """Run every table's part as **one** transaction on ``sock`` (the kernel commits all of it
    or none: nftables batches may hold tables of several families), then let each table
    remember what it now holds. Nothing to send: the generation is read, nothing committed."""
    requests = [r for part in parts for r in part.requests]
    generation = sock.transaction(requests) if requests else sock.generation()
    return tuple(part.finish(generation) for part in parts)


@dataclass(frozen=True, slots=True)
class Fixed:
    """The skeleton a table is created with, as the read-back shows it."""

    chains: frozenset[str]
    sets: frozenset[str]
    rules: frozenset[tuple[str, str]]


def _comment(udata: bytes) -> str:
    """A rule's tag from its userdata: nft's TLV ``comment`` (type 0, length, text and NUL),
    as pyroute2 writes it."""
    if len(udata) < 2 or udata[0] != 0:
        return ""
    return udata[2 : 2 + udata[1]].rstrip(b"\0").decode()


class NftTable:
    """The table ``name`` of ``family`` (call from one thread only)."""

    def __init__(
        self,
        family: int,
        name: str,
        marker: str,
        skeleton: Callable[[str], list[NftRequest]],
        fixed: Fixed,
    ) -> None:
        """Opens the socket now: the table lives in the caller's network namespace."""
        self.family, self.name, self.marker = family, name, marker
        self._skeleton, self._fixed = skeleton, fixed
        self.sock = NftSocket(family)
        self.objects: dict[tuple[str, ...], Obj] = {}
        self.built = False

    # ---- reading the kernel -----------------------------------------------------------------

    def tables(self) -> dict[str, str]:
        """Table name (of this family) -> its userdata marker ("" if none)."""
        out = {}
        for msg in self.sock.dump(NFT_MSG_GETTABLE, (), "list tables"):
            out[str(msg.get_attr("NFTA_TABLE_NAME"))] = str(
                msg.get_attr("NFTA_TABLE_USERDATA") or ""
            )
        return out

    def rule_handles(self, chains: Iterable[str] | None = None) -> dict[tuple[str, str], int]:
        """(chain, rule tag) -> the kernel's handle for every rule of the table, or only of
        ``chains`` (a 1,000-server pool has over 1,000 rules: decoding them all costs ~100 ms,
        a one-server change needs one or two chains)."""
        out = {}
        table = (("NFTA_RULE_TABLE", self.name),)
        dump = self.sock.dump_attributes
        if chains is None:
            rules = dump(NFT_MSG_GETRULE, table, "list rules")
        else:
            rules = [
                attrs
                for chain in sorted(set(chains))
                for attrs in dump(
                    NFT_MSG_GETRULE, (*table, ("NFTA_RULE_CHAIN", chain)), f"list rules of {chain}"
                )
            ]
        for attrs in rules:
            chain = attrs[_RULE_CHAIN].rstrip(b"\0").decode()
            (handle,) = struct.unpack("!Q", attrs[_RULE_HANDLE])
            out[(chain, _comment(attrs.get(_RULE_USERDATA, b"")))] = handle
        return out

    def _elements(self, name: str) -> set[tuple[str, str, str]]:
        attrs = (("NFTA_SET_ELEM_LIST_TABLE", self.name), ("NFTA_SET_ELEM_LIST_SET", name))
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
        if self.tables().get(self.name) != self.marker:
            return None
        table = (("NFTA_CHAIN_TABLE", self.name),)
        chains = {
            str(m.get_attr("NFTA_CHAIN_NAME"))
            for m in self.sock.dump(NFT_MSG_GETCHAIN, table, "list chains")
        }
        sets_msgs = self.sock.dump(NFT_MSG_GETSET, (("NFTA_SET_TABLE", self.name),), "list sets")
        sets, elems = set(), set()
        for msg in sets_msgs:
            name = str(msg.get_attr("NFTA_SET_NAME"))
            sets.add(name)
            flags = msg.get_attr("NFTA_SET_FLAGS") or ()
            if "NFT_SET_MAP" in flags:
                elems |= self._elements(name)
        rules = set(self.rule_handles())
        return frozenset(chains), frozenset(sets), frozenset(rules), frozenset(elems)

    def signature(self) -> Signature:
        """What the read-back should show for what was applied."""
        chains, sets = set(self._fixed.chains), set(self._fixed.sets)
        rules: set[tuple[str, str]] = set(self._fixed.rules)
        elems: set[Any] = set()
        for o in self.objects.values():
            if isinstance(o, Rule):
                rules.add((o.chain, o.tag))
            elif isinstance(o, Element):
                elems.add((o.map, o.key_bytes.hex(), o.target))
            elif isinstance(o, Chain | IngressChain):
                chains.add(o.name)
            else:
                sets.add(o.name)
        return frozenset(chains), frozenset(sets), frozenset(rules), frozenset(elems)

    # ---- changing it --------------------------------------------------------------------

    def _ours(self, requests: Iterable[NftRequest]) -> tuple[NftRequest, ...]:
        return tuple(replace(r, family=self.family) for r in requests)

    def plan_remove_marked(self) -> tuple[list[str], Pending]:
        """Remove every table of this family carrying our marker (a killed run's)."""
        removed = [n for n, mark in self.tables().items() if mark == self.marker]

        def finish(generation: int) -> Applied:
            for name in removed:
                log.info("netd.lvs.leftover_removed", table=name, detail="left by an earlier run")
            self.objects, self.built = {}, False
            return Applied((), generation)

        return removed, Pending(self._ours(delete_table(n) for n in removed), finish)

    def remove_marked(self) -> list[str]:
        removed, part = self.plan_remove_marked()
        transact(self.sock, [part])
        return removed

    def _check_name_free(self) -> list[NftRequest]:
        mark = self.tables().get(self.name)
        if mark is None:
            return []
        if mark != self.marker:
            raise NftError(
                f"table {self.name}",
                errno.EEXIST,
                "EEXIST",
                "a table of that name exists and is not ours; not touching it",
            )
        return [delete_table(self.name)]  # ours, but not what we remember: start clean

    def plan_build(self, objects: Mapping[tuple[str, ...], Obj], *, drift: bool) -> Pending:
        """(Re)create the whole table holding ``objects``."""
        ops = diff({}, objects)
        requests = [*self._check_name_free(), *self._skeleton(self.name)]
        requests += [request(self.name, op, {}) for op in ops]
        held = dict(objects)

        def finish(generation: int) -> Applied:
            self.objects, self.built = held, True
            log.info(
                "netd.lvs.table",
                table=self.name,
                objects=len(held),
                operations=len(requests),
                generation=generation,
                rebuilt=drift,
            )
            return Applied(ops, generation, rebuilt=True)

        return Pending(self._ours(requests), finish)

    def build(self, objects: Mapping[tuple[str, ...], Obj], *, drift: bool) -> Applied:
        """(Re)create the whole table holding ``objects`` in one transaction."""
        return transact(self.sock, [self.plan_build(objects, drift=drift)])[0]

    def plan_apply(self, objects: Mapping[tuple[str, ...], Obj]) -> Pending:
        """Make the table hold ``objects`` (only what changed)."""
        if not self.built:
            return self.plan_build(objects, drift=False)
        ops = diff(self.objects, objects)
        chains = [op.obj.chain for op in ops if op.verb == "del" and isinstance(op.obj, Rule)]
        handles = self.rule_handles(chains) if chains else {}
        held = dict(objects)

        def finish(generation: int) -> Applied:
            self.objects = held
            for op in ops:
                log.debug("netd.lvs.op", table=self.name, op=str(op), generation=generation)
            return Applied(ops, generation)

        return Pending(self._ours(request(self.name, op, handles) for op in ops), finish)

    def apply(self, objects: Mapping[tuple[str, ...], Obj]) -> Applied:
        """Make the table hold ``objects`` in one transaction (only what changed)."""
        return transact(self.sock, [self.plan_apply(objects)])[0]

    def drifted(self) -> bool:
        """Read the table back: does it differ from what was applied? (logs why)"""
        if not self.built:
            return False
        seen = self.observe()
        if seen == self.signature():
            return False
        log.warning(
            "netd.lvs.drift",
            table=self.name,
            detail="the table was changed outside netd" if seen else "the table is gone",
        )
        return True

    def plan_withdraw(self) -> Pending:
        """Remove the table (if the kernel holds ours)."""
        ours = self.tables().get(self.name) == self.marker

        def finish(generation: int) -> Applied:
            if ours:
                log.info("netd.lvs.removed", table=self.name)
            self.objects, self.built = {}, False
            return Applied((), generation)

        return Pending(self._ours([delete_table(self.name)] if ours else []), finish)

    def withdraw(self) -> None:
        """Remove the table."""
        transact(self.sock, [self.plan_withdraw()])

    def close(self) -> None:
        self.sock.close()
