"""A checker's retry counting and warmup, as keepalived's tcp_epilog (docs/checkers.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkd.checker_state import (
    BOOTSTRAP_DELAY,
    Outcome,
    RetryState,
    first_delay,
    mail_body,
    migrate,
    record,
)

LOOP, RETRY_DELAY = 60.0, 2.0


def run(results: list[bool], retry: int, alpha: bool = False) -> list[Outcome]:
    state = RetryState.start(retry, alpha=alpha)
    outcomes = []
    for ok in results:
        out = record(state, ok, retry=retry, delay_loop=LOOP, delay_before_retry=RETRY_DELAY)
        outcomes.append(out)
        state = out.state
    return outcomes


def steps(results: list[bool], retry: int, alpha: bool = False) -> list[str]:
    return [o.step for o in run(results, retry, alpha)]


@pytest.mark.parametrize(
    ("results", "retry", "alpha", "expected"),
    [
        # first failure before any success: DOWN at once, whatever retry says
        ([False], 3, False, ["down"]),
        ([False], 3, True, ["down"]),
        # first success: a silent confirmation without alpha, a real UP with alpha
        ([True], 1, False, ["first-up"]),
        ([True], 1, True, ["up"]),
        # after a success: retry+1 consecutive failures make DOWN
        ([True, False, False], 1, False, ["first-up", "retry", "down"]),
        (
            [True, False, False, False, False],
            3,
            False,
            ["first-up", "retry", "retry", "retry", "down"],
        ),
        ([True, False], 0, False, ["first-up", "down"]),
        # a success in between resets the count
        ([True, False, True, False, False], 1, False, ["first-up", "retry", "ok", "retry", "down"]),
        # down: no retries, one success brings it back
        ([False, False, False, True], 2, False, ["down", "still-down", "still-down", "up"]),
        ([True, True, True], 1, False, ["first-up", "ok", "ok"]),
    ],
)
def test_retry_table(results: list[bool], retry: int, alpha: bool, expected: list[str]) -> None:
    assert steps(results, retry, alpha) == expected


def test_smtp_check_retries_in_every_round() -> None:
    """keepalived's SMTP_CHECK zeroes its counter at each delay_loop round: the first failures
    are retried too, and a down checker still makes retry + 1 attempts a round."""
    state = RetryState.start(2, alpha=False, per_round=True)
    outs = []
    for ok in [False, False, False, False, False, False, True, False, True]:
        out = record(
            state, ok, retry=2, delay_loop=LOOP, delay_before_retry=RETRY_DELAY, per_round=True
        )
        outs.append(out)
        state = out.state
    assert [o.step for o in outs] == [
        *("retry", "retry", "down"),
        *("retry", "retry", "still-down"),
        *("up", "retry", "ok"),
    ]
    assert [o.delay for o in outs] == [RETRY_DELAY, RETRY_DELAY, LOOP] * 2 + [
        LOOP,
        RETRY_DELAY,
        LOOP,
    ]
    assert [o.verdict for o in outs] == [None, None, False, None, None, None, True, None, None]
    assert outs[2].retries == 2
    no_retry = record(
        RetryState(is_up=False, has_run=True, retry_it=0),
        False,
        retry=0,
        delay_loop=LOOP,
        delay_before_retry=RETRY_DELAY,
        per_round=True,
    )
    assert (no_retry.step, no_retry.delay) == ("still-down", LOOP)


def test_delays_follow_the_state() -> None:
    outs = run([True, False, False, False, True], retry=1)
    assert [o.delay for o in outs] == [LOOP, RETRY_DELAY, LOOP, LOOP, LOOP]


def test_verdicts() -> None:
    outs = run([True, False, False, True], retry=1)
    assert [o.verdict for o in outs] == [True, None, False, True]
    assert outs[2].retries == 1


def test_first_failure_reports_no_retries() -> None:
    assert run([False], retry=3)[0].retries == 0


@given(retry=st.integers(0, 6), history=st.lists(st.booleans(), max_size=40))
def test_down_takes_exactly_retry_plus_one_failures_after_being_up(
    retry: int, history: list[bool]
) -> None:
    outs = run([*history, True, *([False] * (retry + 1))], retry)
    tail = [o.step for o in outs[-(retry + 1) :]]
    assert tail == ["retry"] * retry + ["down"]
    assert outs[-1].state == RetryState(is_up=False, has_run=True, retry_it=0)


@given(retry=st.integers(0, 6), history=st.lists(st.booleans(), min_size=1, max_size=40))
def test_one_success_is_always_up_and_state_matches_verdicts(
    retry: int, history: list[bool]
) -> None:
    outs = run([*history, True], retry)
    assert outs[-1].state.is_up
    up: bool | None = None
    for o in outs:
        if o.verdict is not None:
            up = o.verdict
        assert up is None or o.state.is_up == up
        assert 0 <= o.state.retry_it <= retry


@given(warmup=st.floats(0, 3600), r=st.floats(0, 1))
def test_warmup_bounds(warmup: float, r: float) -> None:
    d = first_delay(warmup, lambda: r)
    assert BOOTSTRAP_DELAY <= d <= BOOTSTRAP_DELAY + warmup


def test_warmup_zero_starts_after_the_bootstrap_delay() -> None:
    assert first_delay(0.0, lambda: 0.9) == BOOTSTRAP_DELAY


@pytest.mark.parametrize(
    ("old", "retry", "new"),
    [
        (RetryState(False, True, 0), 2, RetryState(False, True, 3)),
        (RetryState(True, True, 1), 3, RetryState(True, True, 1)),
        (RetryState(True, True, 3), 1, RetryState(True, True, 1)),
        (RetryState(True, True, 0), 0, RetryState(True, True, 0)),
    ],
)
def test_migrate(old: RetryState, retry: int, new: RetryState) -> None:
    assert migrate(old, retry=retry) == new


def test_migrated_up_checker_with_spent_retries_goes_down_on_next_failure() -> None:
    state = migrate(RetryState(True, True, 3), retry=1)
    out = record(state, False, retry=1, delay_loop=LOOP, delay_before_retry=RETRY_DELAY)
    assert out.step == "down"


@pytest.mark.parametrize(
    ("kind", "up", "detail", "body"),
    [
        ("TCP_CHECK", True, None, "=> TCP CHECK succeed on service <="),
        ("TCP_CHECK", False, None, "=> TCP CHECK failed on service <="),
        ("UDP_CHECK", False, None, "=> UDP CHECK failed on service <="),
        ("PING_CHECK", True, None, "=> ICMP CHECK succeed on service <="),
        ("DNS_CHECK", False, None, "=> DNS_CHECK: failed on service <="),
        ("HTTP_GET", True, None, "=> CHECK succeed on service <="),
        ("SSL_GET", False, None, "=> CHECK failed on service : HTTP/SSL request failed <="),
        (
            "SMTP_CHECK",
            False,
            "Bad server response 421",
            "=> CHECK failed on service : Bad server response 421 <=",
        ),
        ("SMTP_CHECK", False, None, "=> CHECK failed on service <="),
        ("MISC_CHECK", True, None, "=> MISC CHECK succeeded on service <="),
        ("MISC_CHECK", False, "timed out", "=> MISC CHECK timed out on service <="),
        ("BFD_CHECK", False, "bfd1", "=> BFD CHECK bfd1 failed on service <="),
        ("FILE_CHECK", False, None, None),
    ],
)
def test_mail_bodies(kind: str, up: bool, detail: str | None, body: str | None) -> None:
    assert mail_body(kind, up, detail) == body
