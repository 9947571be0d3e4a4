"""The fault harness's own bookkeeping (tests/netfaults.py), without a kernel: dual-master
stretches from a timeline of transitions."""

from __future__ import annotations

from tests.netfaults import Stretch, Transition, master_stretches


def t(node: int, at: float, old: str, new: str) -> Transition:
    return Transition(node, at, old, new, "timer", "")


def test_a_takeover_and_a_step_down_make_one_stretch_with_both_members() -> None:
    timeline = [t(1, 10.0, "BACKUP", "MASTER"), t(1, 11.5, "MASTER", "BACKUP")]
    assert master_stretches(timeline, {0}) == [Stretch(10.0, 11.5, frozenset({0, 1}))]


def test_a_third_master_joins_the_open_stretch() -> None:
    timeline = [
        t(1, 10.0, "BACKUP", "MASTER"),
        t(2, 10.5, "BACKUP", "MASTER"),
        t(1, 11.0, "MASTER", "BACKUP"),
        t(2, 12.0, "MASTER", "BACKUP"),
    ]
    assert master_stretches(timeline, {0}) == [Stretch(10.0, 12.0, frozenset({0, 1, 2}))]


def test_a_handover_with_one_master_at_a_time_is_no_stretch() -> None:
    timeline = [t(0, 10.0, "MASTER", "FAULT"), t(1, 13.5, "BACKUP", "MASTER")]
    assert master_stretches(timeline, {0}) == []
