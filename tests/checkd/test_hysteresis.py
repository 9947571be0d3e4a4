"""rise/fall counting and the fork/terminate debounce, against keepalived's rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from checkd.hysteresis import Debounce, RiseFall

counts = st.integers(min_value=1, max_value=6)
runs = st.lists(st.booleans(), max_size=60)


def test_initial_state_one_run_decides() -> None:
    ok = RiseFall.start(3, 3)
    assert not ok.decided
    assert ok.record(True) and ok.ok  # one success is enough at startup
    ko = RiseFall.start(3, 3)
    assert ko.record(False) and not ko.ok and ko.decided


def test_init_fail_needs_rise_successes() -> None:
    rf = RiseFall.start(3, 2, init_fail=True)
    assert rf.decided and not rf.ok
    assert [rf.record(True) or rf.ok for _ in range(3)] == [False, False, True]


@given(rise=counts, fall=counts, history=runs)
def test_rise_successes_always_make_ok_and_fall_failures_ko(
    rise: int, fall: int, history: list[bool]
) -> None:
    rf = RiseFall.start(rise, fall)
    for r in history:
        rf.record(r)
    for _ in range(rise):
        rf.record(True)
    assert rf.ok
    for _ in range(fall):
        rf.record(False)
    assert not rf.ok


@given(rise=counts, fall=counts, history=runs, streak=st.integers(0, 6))
def test_short_streaks_do_not_flip(rise: int, fall: int, history: list[bool], streak: int) -> None:
    rf = RiseFall.start(rise, fall)
    for r in [*history, *([True] * rise)]:
        rf.record(r)
    assert rf.ok
    for _ in range(min(streak, fall - 1)):
        rf.record(False)
        assert rf.ok  # fewer than `fall` failures in a row keep an OK script OK
    rf.record(True)
    assert rf.ok
    for _ in range(fall):
        rf.record(False)
    for _ in range(min(streak, rise - 1)):
        rf.record(True)
        assert not rf.ok  # fewer than `rise` successes keep a failed script failed


@given(rise=counts, fall=counts, history=runs)
def test_record_reports_exactly_the_state_changes(
    rise: int, fall: int, history: list[bool]
) -> None:
    rf = RiseFall.start(rise, fall)
    before: bool | None = None
    for r in history:
        changed = rf.record(r)
        assert changed == (rf.ok != before)
        before = rf.ok
        assert 0 <= rf.counter <= rise + fall - 1


@given(rise=counts, fall=counts, ok=st.booleans())
def test_resumed_keeps_the_verdict(rise: int, fall: int, ok: bool) -> None:
    rf = RiseFall.resumed(rise, fall, ok=ok)
    assert rf.ok == ok
    if ok and fall > 1:
        rf.record(False)
        assert rf.ok  # resumed at the top: a single failure after a reload does not flip


def value(d: Debounce) -> bool | None:
    return d.value


def test_debounce_holds_changes_for_their_delay() -> None:
    d = Debounce(rise_delay=2.0, fall_delay=5.0)
    assert d.update(False, 0.0)
    assert value(d) is False  # first observation taken as is
    assert not d.update(True, 1.0)
    assert value(d) is False
    assert d.deadline() == 3.0
    assert not d.update(True, 2.9)
    assert d.update(True, 3.0)
    assert value(d) is True
    assert not d.update(False, 10.0)
    assert not d.update(True, 12.0)  # bounced back: pending change cancelled
    assert d.deadline() is None
    assert not d.update(False, 13.0)
    assert not d.update(False, 17.9)  # the fall delay restarted at 13.0
    assert d.update(False, 18.0)
    assert value(d) is False


@given(
    delays=st.tuples(st.floats(0, 5), st.floats(0, 5)),
    samples=st.lists(st.tuples(st.floats(0, 3), st.booleans()), min_size=1, max_size=40),
)
def test_debounced_value_held_by_the_raw_input_for_the_delay(
    delays: tuple[float, float], samples: list[tuple[float, bool]]
) -> None:
    d = Debounce(*delays)
    now = 0.0
    history: list[tuple[float, bool]] = []
    for step, raw in samples:
        now += step
        history.append((now, raw))
        if d.update(raw, now) and len(history) > 1:
            # A change is only made when the raw value has been continuously the new value
            # for at least the delay that applies to that direction.
            delay = delays[0] if raw else delays[1]
            start = now
            for t, r in reversed(history):
                if r != raw:
                    break
                start = t
            assert now - start >= delay
        assert d.value is not None
