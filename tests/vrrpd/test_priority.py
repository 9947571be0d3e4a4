"""Effective priority from weighted trackers (keepalived 2.2.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrrpd.priority import Tracker, TrackerKind, evaluate

SCRIPT = Tracker(TrackerKind.SCRIPT, "chk", weight=-60)


def test_keepalived_verified_example() -> None:
    # "script weight -60 at prio 150 -> Changing effective priority from 150 to 90"
    assert evaluate(150, [SCRIPT], {SCRIPT: False}).priority == 90
    assert evaluate(150, [SCRIPT], {SCRIPT: True}).priority == 150


@pytest.mark.parametrize(
    ("weight", "reverse", "ok", "delta"),
    [
        (10, False, True, 10),
        (10, False, False, 0),
        (-10, False, True, 0),
        (-10, False, False, -10),
        (10, True, True, -10),
        (10, True, False, 0),
        (-10, True, True, 0),
        (-10, True, False, 10),
    ],
)
def test_weight_sign_and_reverse(weight: int, reverse: bool, ok: bool, delta: int) -> None:
    t = Tracker(TrackerKind.INTERFACE, "eth1", weight=weight, reverse=reverse)
    verdict = evaluate(100, [t], {t: ok})
    assert verdict.priority == 100 + delta
    assert verdict.faults == frozenset()
    if delta:
        assert "track_interface eth1" in verdict.reason


@pytest.mark.parametrize(
    ("reverse", "ok", "fault"),
    [(False, False, True), (False, True, False), (True, True, True), (True, False, False)],
)
def test_unweighted_tracker_faults(reverse: bool, ok: bool, fault: bool) -> None:
    t = Tracker(TrackerKind.PROCESS, "haproxy", weight=0, reverse=reverse)
    verdict = evaluate(100, [t], {t: ok})
    assert (verdict.faults == {"track_process haproxy"}) is fault
    assert verdict.priority == 100


def test_unreported_tracker() -> None:
    weighted = Tracker(TrackerKind.SCRIPT, "a", weight=20)
    unweighted = Tracker(TrackerKind.SCRIPT, "b", weight=0)
    verdict = evaluate(100, [weighted, unweighted], {})
    assert verdict.priority == 100
    assert verdict.faults == {"track_script b"}


@pytest.mark.parametrize(
    ("weight", "reverse", "value", "prio", "fault"),
    [
        (2, False, 5, 110, False),
        (-2, False, 5, 90, False),
        (2, True, 5, 90, False),
        (0, False, 0, 100, False),
        (0, False, 3, 100, True),
        (0, True, 0, 100, True),  # reverse: a zero value is the fault
        (0, True, 3, 100, False),
        (-100, False, 3, 100, True),  # -300 is below -253: a fault, no priority change
        (100, False, 3, 254, False),  # +300 is capped at +253, then clamped to 254
        (1, False, 999, 254, False),
    ],
)
def test_track_file(weight: int, reverse: bool, value: int, prio: int, fault: bool) -> None:
    t = Tracker(TrackerKind.FILE, "/run/f", weight=weight, reverse=reverse)
    verdict = evaluate(100, [t], {t: value})
    assert verdict.priority == prio
    assert bool(verdict.faults) is fault


def test_owner_never_moves() -> None:
    t = Tracker(TrackerKind.SCRIPT, "a", weight=-100)
    assert evaluate(255, [t], {t: False}).priority == 255


_trackers = st.lists(
    st.builds(
        Tracker,
        kind=st.sampled_from([TrackerKind.INTERFACE, TrackerKind.SCRIPT, TrackerKind.PROCESS]),
        name=st.text("abcdef", min_size=1, max_size=4),
        weight=st.integers(-253, 253),
        reverse=st.booleans(),
    ),
    max_size=6,
    unique=True,
)


@given(st.integers(1, 254), _trackers, st.data())
def test_non_owner_priority_stays_in_1_254_and_sums(
    base: int, trackers: list[Tracker], data: st.DataObject
) -> None:
    status = {t: data.draw(st.booleans()) for t in trackers}
    verdict = evaluate(base, trackers, status)
    assert 1 <= verdict.priority <= 254
    # Independent sum: each weighted tracker contributes its weight (sign flipped by reverse)
    # exactly when its state is the "active" one for its sign.
    expected = base
    for t in trackers:
        if t.weight == 0:
            continue
        active = status[t] if t.weight > 0 else not status[t]
        if active:
            expected += -t.weight if t.reverse else t.weight
    assert verdict.priority == min(max(expected, 1), 254)


def test_track_file_positive_result_is_capped_at_253() -> None:
    f = Tracker(TrackerKind.FILE, "/run/f", weight=100)
    s = Tracker(TrackerKind.SCRIPT, "chk", weight=-200)
    # 100 + min(3 * 100, 253) - 200 = 153 (uncapped it would be 200)
    assert evaluate(100, [f, s], {f: 3, s: False}).priority == 153
