"""When checkd forks its connect helper (checkd.helper_policy): only when the schedule slipped
with enough TCP_CHECKs to move, as a table."""

from __future__ import annotations

import pytest

from checkd.helper_policy import DEFAULT_POLICY, HelperPolicy, LateStarts


def window(policy: HelperPolicy, *lateness: float) -> LateStarts:
    starts = LateStarts(policy.late)
    for late in lateness:
        starts.note(late)
    return starts


ON_TIME = [0.001] * 99


@pytest.mark.parametrize(
    ("lateness", "tcp_rate", "forks"),
    [
        ([*ON_TIME, 0.050], 10_000, False),  # 1 in 100 late: a p99 of 50 ms is at the line
        ([*ON_TIME, 0.050, 0.050], 10_000, True),  # 2 in 101: the p99 is late
        ([*ON_TIME, 0.010, 0.010], 10_000, False),  # 10 ms is not over 10 ms
        ([0.5] * 100, 1_999, False),  # badly late, too few TCP_CHECKs for the helper to help
        ([0.5] * 100, 2_000, True),
        ([], 10_000, False),  # nothing started: nothing to judge
    ],
)
def test_the_default_forks_when_the_p99_is_late(
    lateness: list[float], tcp_rate: float, forks: bool
) -> None:
    starts = window(DEFAULT_POLICY, *lateness)
    assert starts.calls_for_helper(DEFAULT_POLICY, tcp_rate) is forks


def test_always_and_never() -> None:
    assert window(HelperPolicy.always(), 0.0).calls_for_helper(HelperPolicy.always(), 1.0)
    never = HelperPolicy.never()
    assert not window(never, *[9.0] * 100).calls_for_helper(never, 1e9)
