"""Cluster lint: what only shows when the nodes' files are read side by side.

Each node's file can be valid on its own and the cluster still broken: peers that disagree on
the advert interval, the VRRP version or the password drop each other's adverts and both
become MASTER; peers with different VIP sets hand over different addresses; two virtual
routers with one VRID on a segment fight over the virtual MAC. keepalived finds these only at
run time, in a log line on one side. This reads the files of all nodes and says which file
and line disagree with which.

Instances of different nodes are **peers** when they share VRID and address family and their
VIP sets overlap. Members of one VRID and family whose VIPs do not overlap at all are two
virtual routers sharing a VRID — a collision if they share a segment, which the files cannot
tell, so it is reported as such.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from core.api import LoadResult
from core.checks import effective_version
from core.election import election_lint
from core.model import VrrpInstance
from core.problems import Problem, Severity, find_location


@dataclass(frozen=True, slots=True)
class Member:
    """One node's instance of a virtual router."""

    node: str
    inst: VrrpInstance
    result: LoadResult

    @property
    def vips(self) -> frozenset[str]:
        return frozenset(a.address for a in self.inst.virtual_ipaddress)

    @property
    def version(self) -> int:
        return effective_version(self.result.config, self.inst)

    @property
    def label(self) -> str:
        return f"[{self.node}] {self.inst.name}"

    def problem(self, severity: Severity, code: str, message: str, keyword: str = "") -> Problem:
        at = ("vrrp_instance", self.inst.name, *((keyword,) if keyword else ()))
        loc = find_location(self.result.locations, at)
        return Problem(severity, code, message, loc.file, loc.line, loc.col, keyword)


def cluster_lint(nodes: Mapping[str, LoadResult]) -> list[Problem]:
    """Every cross-node problem between `nodes` (node name -> its loaded file)."""
    problems: list[Problem] = []
    for (vrid, family), members in sorted(_by_vrid(nodes).items()):
        routers = _routers(members)
        problems += _collisions(vrid, family, routers)
        for router in routers:
            if len({m.node for m in router}) > 1:
                problems += _peer_problems(vrid, router)
    problems += election_lint(nodes)
    return problems


def _by_vrid(nodes: Mapping[str, LoadResult]) -> dict[tuple[int, int], list[Member]]:
    groups: defaultdict[tuple[int, int], list[Member]] = defaultdict(list)
    for node, result in nodes.items():
        for inst in result.config.instances:
            if inst.virtual_router_id is not None:
                groups[(inst.virtual_router_id, inst.family)].append(Member(node, inst, result))
    return groups


def _routers(members: Sequence[Member]) -> list[list[Member]]:
    """Members joined into virtual routers: connected by overlapping VIP sets."""
    routers: list[list[Member]] = []
    for member in members:
        joined = [r for r in routers if any(member.vips & other.vips for other in r)]
        merged = [member, *(m for r in joined for m in r)]
        routers = [r for r in routers if r not in joined] + [merged]
    return routers


def _collisions(vrid: int, family: int, routers: Sequence[list[Member]]) -> list[Problem]:
    problems = []
    for a, b in combinations(routers, 2):
        first, other = a[0], b[0]
        problems.append(
            first.problem(
                "error",
                "cluster-vrid-collision",
                f"{first.label} and {other.label} both use VRID {vrid} (IPv{family}) with "
                f"unrelated VIPs ({_show(first.vips)} vs {_show(other.vips)}): on one segment "
                "they are two virtual routers fighting over one virtual MAC",
                "virtual_router_id",
            )
        )
    return problems


def _peer_problems(vrid: int, members: Sequence[Member]) -> list[Problem]:
    problems: list[Problem] = []
    for check in _PAIR_CHECKS:
        for a, b in combinations(members, 2):
            if a.node != b.node:
                problems += check(vrid, a, b)
    problems += _priority_ties(vrid, members)
    problems += _unicast_peers(vrid, members)
    problems += _nopreempt_masters(vrid, members)
    return problems


def _differs(
    code: str,
    keyword: str,
    what: str,
    value: Callable[[Member], object],
    applies: Callable[[Member, Member], bool] = lambda a, b: True,
) -> Callable[[int, Member, Member], list[Problem]]:
    def check(vrid: int, a: Member, b: Member) -> list[Problem]:
        va, vb = value(a), value(b)
        if va == vb or not applies(a, b):
            return []
        return [
            a.problem(
                "error",
                code,
                f"{a.label} and {b.label} (VRID {vrid}) differ in {what}: {va} vs {vb}",
                keyword,
            )
        ]

    return check


def _auth(m: Member) -> str:
    auth = m.inst.authentication
    if m.version != 2 or auth is None or auth.auth_type is None:
        return "none"
    # keepalived compares only the first 8 characters of a PASS password; the message shows
    # a tag of it, never the password.
    secret = (auth.auth_pass or "")[:8]
    return f"{auth.auth_type} password #{hashlib.sha256(secret.encode()).hexdigest()[:6]}"


_PAIR_CHECKS: tuple[Callable[[int, Member, Member], list[Problem]], ...] = (
    _differs("cluster-vips-differ", "virtual_ipaddress", "VIPs", lambda m: _show(m.vips)),
    _differs("cluster-advert-int-differs", "advert_int", "advert_int", lambda m: m.inst.advert_int),
    _differs("cluster-version-differs", "version", "VRRP version", lambda m: m.version),
    # Only VRRPv2 authenticates; a version mismatch is reported on its own.
    _differs(
        "cluster-auth-differs",
        "authentication",
        "authentication",
        _auth,
        lambda a, b: a.version == b.version == 2,
    ),
)


def _priority_ties(vrid: int, members: Sequence[Member]) -> list[Problem]:
    by_prio: defaultdict[int, list[Member]] = defaultdict(list)
    for m in members:
        by_prio[m.inst.effective_priority].append(m)
    problems = []
    for prio, tied in sorted(by_prio.items()):
        if len({m.node for m in tied}) < 2:
            continue
        names = " and ".join(m.label for m in tied)
        if prio == 255:
            problems.append(
                tied[0].problem(
                    "error",
                    "cluster-two-owners",
                    f"{names} (VRID {vrid}) both have priority 255 (address owner): only one "
                    "node may own the addresses",
                    "priority",
                )
            )
        else:
            problems.append(
                tied[0].problem(
                    "warning",
                    "cluster-priority-tie",
                    f"{names} (VRID {vrid}) have the same priority {prio}: the election falls "
                    "to the primary IP addresses",
                    "priority",
                )
            )
    return problems


def _unicast_peers(vrid: int, members: Sequence[Member]) -> list[Problem]:
    unicast = [m for m in members if m.inst.unicast_peer]
    if not unicast:
        return []
    problems = [
        m.problem(
            "error",
            "cluster-unicast-peers",
            f"{m.label} (VRID {vrid}) sends multicast while "
            f"{_names(unicast)} send unicast: they never hear each other",
            "unicast_peer",
        )
        for m in members
        if not m.inst.unicast_peer
    ]
    for m in unicast:
        peers = {p.address for p in m.inst.unicast_peer}
        if m.inst.unicast_src_ip and m.inst.unicast_src_ip in peers:
            problems.append(
                m.problem(
                    "error",
                    "cluster-unicast-peers",
                    f"{m.label} (VRID {vrid}) lists its own unicast_src_ip "
                    f"{m.inst.unicast_src_ip} as a peer",
                    "unicast_peer",
                )
            )
        problems += _missing_from_peers(vrid, m, [o for o in unicast if o.node != m.node])
    return problems


def _missing_from_peers(vrid: int, m: Member, others: Iterable[Member]) -> list[Problem]:
    src = m.inst.unicast_src_ip
    if src is None:
        return []
    return [
        other.problem(
            "error",
            "cluster-unicast-peers",
            f"{other.label} (VRID {vrid}) does not list {m.label}'s unicast_src_ip {src} in "
            f"unicast_peer ({_show(p.address for p in other.inst.unicast_peer)}): "
            f"{m.node}'s adverts are dropped there",
            "unicast_peer",
        )
        for other in others
        if src not in {p.address for p in other.inst.unicast_peer}
    ]


def _nopreempt_masters(vrid: int, members: Sequence[Member]) -> list[Problem]:
    # Loading clears nopreempt next to state MASTER (as keepalived does, with a warning per
    # file), so look for the keyword as written.
    masters = [
        m
        for m in members
        if m.inst.effective_state == "MASTER"
        and ("vrrp_instance", m.inst.name, "nopreempt") in m.result.locations
    ]
    if len({m.node for m in masters}) < 2:
        return []
    return [
        masters[0].problem(
            "warning",
            "cluster-nopreempt-masters",
            f"{_names(masters)} (VRID {vrid}) are all `state MASTER` with `nopreempt`: "
            "nopreempt is cleared next to state MASTER, so the higher priority always takes "
            "over; use state BACKUP on every node",
            "nopreempt",
        )
    ]


def _names(members: Iterable[Member]) -> str:
    return ", ".join(m.label for m in members)


def _show(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"
