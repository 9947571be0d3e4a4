"""When checkd forks its connect helper (checkd.helper_policy): only when the schedule slipped
with enough TCP_CHECKs to move, as a table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checkd.helper_policy import DEFAULT_POLICY, HelperPolicy, LateStarts, idle_seconds


def window(policy: HelperPolicy, *lateness: float) -> LateStarts:
    starts = LateStarts(policy.late)
    for late in lateness:
        starts.note(late)
    return starts


ON_TIME = [0.001] * 99


@pytest.mark.parametrize(
    ("lateness", "tcp_rate", "idle", "forks"),
    [
        ([*ON_TIME, 0.050], 10_000, 1.0, False),  # 1 in 100 late: a p99 of 50 ms is the line
        ([*ON_TIME, 0.050, 0.050], 10_000, 1.0, True),  # 2 in 101: the p99 is late
        ([*ON_TIME, 0.010, 0.010], 10_000, 1.0, False),  # 10 ms is not over 10 ms
        ([0.5] * 100, 1_999, 1.0, False),  # badly late, too few TCP_CHECKs to be worth it
        ([0.5] * 100, 2_000, 1.0, True),
        # 10,000 a second need 0.45 of a core: with less idle the helper would compete for
        # the CPU the loop is waiting for
        ([0.5] * 100, 10_000, 0.44, False),
        ([0.5] * 100, 10_000, 0.45, True),
        ([], 10_000, 1.0, False),  # nothing started: nothing to judge
    ],
)
def test_the_default_forks_when_the_p99_is_late_and_a_cpu_is_spare(
    lateness: list[float], tcp_rate: float, idle: float, forks: bool
) -> None:
    starts = window(DEFAULT_POLICY, *lateness)
    assert starts.calls_for_helper(DEFAULT_POLICY, tcp_rate, idle) is forks


def test_always_and_never() -> None:
    always, never = HelperPolicy.always(), HelperPolicy.never()
    assert window(always, 0.0).calls_for_helper(always, 1.0, 0.0)
    assert not window(never, *[9.0] * 100).calls_for_helper(never, 1e9, 2.0)


def test_idle_seconds_reads_the_cpus_asked_for(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  10 0 10 600 40 0 0 0 0 0\n"
        "cpu0 5 0 5 300 20 0 0 0 0 0\n"
        "cpu1 5 0 5 300 20 0 0 0 0 0\n"
        "intr 1 2 3\n"
    )
    tick = os.sysconf("SC_CLK_TCK")
    assert idle_seconds([1], str(stat)) == 320 / tick  # idle and iowait
    assert idle_seconds([0, 1], str(stat)) == 640 / tick
