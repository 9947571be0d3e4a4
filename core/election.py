"""Cross-node lint: can a tracker's failure actually move the VIP?

A single keepalived.conf cannot tell whether `weight -2` is enough: it depends on the peers'
priorities. Given the configs of all nodes of a cluster (several files, or one file loaded with
several config ids), this finds trackers whose failure leaves the current master still the
highest priority (the VIP never moves), and ties that leave the election to the IP addresses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from core.api import LoadResult
from core.checks import tracker_weight
from core.model import TrackRef, VrrpInstance
from core.problems import Problem, find_location

_FIELDS = ("track_interface", "track_script", "track_file", "track_process")


@dataclass(frozen=True, slots=True)
class _Member:
    node: str
    inst: VrrpInstance
    result: LoadResult


def _trackers(m: _Member) -> list[tuple[str, TrackRef, int]]:
    return [
        (f, ref, tracker_weight(m.result.config, f, ref))
        for f in _FIELDS
        for ref in getattr(m.inst, f)
        if not ref.reverse
    ]


def _healthy_priority(m: _Member) -> int:
    """Priority with every tracker OK: positive weights added, negative ones not applied."""
    if m.inst.effective_priority == 255:
        return 255
    bonus = sum(w for _, _, w in _trackers(m) if w > 0)
    return max(1, min(254, m.inst.effective_priority + bonus))


def election_lint(nodes: Mapping[str, LoadResult]) -> list[Problem]:
    """Problems (warnings) about trackers that cannot change the election between `nodes`."""
    groups: defaultdict[tuple[int, int, frozenset[str]], list[_Member]] = defaultdict(list)
    for node, result in nodes.items():
        for inst in result.config.instances:
            if inst.virtual_router_id is None:
                continue
            vips = frozenset(a.address for a in inst.virtual_ipaddress)
            groups[(inst.virtual_router_id, inst.family, vips)].append(_Member(node, inst, result))
    problems: list[Problem] = []
    for (vrid, _, _), members in sorted(groups.items(), key=lambda kv: kv[0][:2]):
        if len({m.node for m in members}) < 2:
            continue
        healthy = {id(m): _healthy_priority(m) for m in members}
        master = max(members, key=lambda m: healthy[id(m)])
        peers = [m for m in members if m is not master]
        best_peer = max(peers, key=lambda m: healthy[id(m)])
        peer_prio = healthy[id(best_peer)]
        mine = healthy[id(master)]
        for field, ref, w in _trackers(master):
            if w == 0:
                continue  # weight 0: failure means FAULT, which always hands over
            after = max(1, min(254, mine - abs(w))) if mine != 255 else 255
            if after < peer_prio:
                continue
            loc = find_location(master.result.locations, ("vrrp_instance", master.inst.name, field))
            tie = after == peer_prio
            problems.append(
                Problem(
                    "warning",
                    "weight-tie" if tie else "weight-never-fails-over",
                    f"[{master.node}] {master.inst.name} (VRID {vrid}): when {ref.name} fails, "
                    f"priority goes {mine} -> {after}, "
                    + (
                        f"equal to {best_peer.node}'s {peer_prio}: the election falls to the "
                        "primary IP addresses"
                        if tie
                        else f"still above {best_peer.node}'s {peer_prio}: the VIP never moves"
                    ),
                    loc.file,
                    loc.line,
                    loc.col,
                    ref.name,
                )
            )
    return problems
