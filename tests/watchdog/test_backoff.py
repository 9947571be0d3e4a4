from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchdog import Backoff


def test_young_deaths_back_off_doubling_to_sixty() -> None:
    b = Backoff()
    assert [b.delay_after(1.0) for _ in range(9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_a_healthy_run_resets_the_delay() -> None:
    b = Backoff()
    for _ in range(5):
        b.delay_after(0.5)
    assert b.delay_after(60.0) == 0
    assert b.delay_after(0.5) == 1


@given(st.lists(st.floats(min_value=0, max_value=120), max_size=40))
def test_delay_is_bounded_and_zero_after_healthy_run(runs: list[float]) -> None:
    b = Backoff()
    for ran in runs:
        delay = b.delay_after(ran)
        assert 0 <= delay <= 60
        if ran >= 60:
            assert delay == 0
