"""HTTP_GET/SSL_GET's url walk as tables: keepalived 2.2.7's ``epilog`` and ``timeout_epilog``
(keepalived/check/check_http.c) traced by hand for each sequence of GET results.

Each row is one attempt: the url it fetched, its result, then what ``record_url`` says: the
step, the verdict for the pool and the delay before the next attempt. Urls /0 and /1,
``retry 1``, ``delay_loop 6``, ``delay_before_retry 3`` unless a test says otherwise.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from checkd.checker_state import RetryState
from checkd.url_walk import record_url

Row = tuple[int, bool, str, bool | None, float]


def walk(
    results: list[bool],
    *,
    urls: int = 2,
    retry: int = 1,
    delay_loop: float = 6,
    delay_before_retry: float = 3,
    fast_recovery: bool = False,
    alpha: bool = False,
    state: RetryState | None = None,
) -> tuple[list[Row], RetryState]:
    state = state or RetryState.start(retry, alpha=alpha)
    rows: list[Row] = []
    for ok in results:
        out = record_url(
            state,
            ok,
            urls=urls,
            retry=retry,
            delay_loop=delay_loop,
            delay_before_retry=delay_before_retry,
            fast_recovery=fast_recovery,
        )
        rows.append((state.url, ok, out.step, out.verdict, out.delay))
        state = out.state
    return rows, state


UP = RetryState(is_up=True, has_run=True, retry_it=0)
T, F = True, False


def test_one_url_per_attempt_and_up_only_after_the_whole_list() -> None:
    rows, state = walk([T, T, T, T])
    assert rows == [
        (0, T, "ok", None, 6),
        (1, T, "first-up", True, 6),  # a checker that starts up: no notification
        (0, T, "ok", None, 6),
        (1, T, "ok", None, 6),
    ]
    assert state == UP


def test_a_failing_url_is_retried_then_down_and_polled_until_the_list_passes_again() -> None:
    rows, state = walk([F, F, F, T, T, T, T], state=replace(UP, url=1))
    assert rows == [
        (1, F, "retry", None, 3),  # the same url after delay_before_retry
        (1, F, "down", False, 6),  # retries spent: DOWN, /1 is the failed url
        (1, F, "still-down", None, 6),  # polled every max(delay_before_retry, delay_loop)
        (1, T, "ok", None, 6),  # the failed url passes: the list from the start
        (0, T, "ok", None, 6),
        (1, T, "up", True, 6),  # the whole list passed: UP
        (0, T, "ok", None, 6),
    ]
    assert state == replace(UP, url=1)


def test_a_success_on_another_url_resets_the_retry_count() -> None:
    rows, _ = walk([F, T, T, F, F], state=replace(UP, url=1))
    assert [r[2] for r in rows] == ["retry", "ok", "ok", "retry", "down"]


def test_a_failed_url_is_polled_at_the_longer_of_the_two_delays() -> None:
    rows, state = walk([F, F, F], delay_before_retry=10, state=UP)
    assert rows == [
        (0, F, "retry", None, 10),
        (0, F, "down", False, 10),
        (0, F, "still-down", None, 10),
    ]
    assert state.failed_url == 0 and state.retry_it == 2  # keepalived leaves it past retry


def test_the_first_failure_before_any_verdict_is_down_at_once() -> None:
    rows, state = walk([T, F])  # /0 passes, /1 fails: the retries are still spent
    assert rows == [(0, T, "ok", None, 6), (1, F, "down", False, 6)]
    assert state.failed_url == 1
    rows, _ = walk([F])
    assert rows == [(0, F, "down", False, 6)]


def test_a_url_failing_on_the_way_back_up_is_retried_every_delay_before_retry() -> None:
    """keepalived marks only the url that made the checker fail: one failing on the walk back
    up is not remembered, so it is retried at ``delay_before_retry`` (not the longer delay)
    and, once it passes, the walk goes on from there."""
    down = RetryState(is_up=False, has_run=True, retry_it=2, url=1, failed_url=1)
    rows, state = walk([T, F, F, T, T], state=down)
    assert rows == [
        (1, T, "ok", None, 6),
        (0, F, "still-down", None, 3),
        (0, F, "still-down", None, 3),
        (0, T, "ok", None, 6),
        (1, T, "up", True, 6),
    ]
    assert state == UP


def test_alpha_starts_down_says_nothing_on_a_failure_and_comes_up_after_the_list() -> None:
    rows, _ = walk([F, T, T, T], alpha=True)
    assert rows == [
        (0, F, "still-down", None, 6),  # keepalived calls no update_svr_checker_state here
        (0, T, "ok", None, 6),
        (0, T, "ok", None, 6),
        (1, T, "up", True, 6),
    ]
    rows, _ = walk([T, T], alpha=True)
    assert rows == [(0, T, "ok", None, 6), (1, T, "up", True, 6)]


def test_retry_0_fails_at_the_first_failure() -> None:
    rows, _ = walk([F], retry=0, state=replace(UP, url=1))
    assert rows == [(1, F, "down", False, 6)]


@pytest.mark.parametrize("urls", [0, 1])
def test_one_url_stays_put_and_needs_two_passes_to_come_back(urls: int) -> None:
    """With one url too, the failed url passing only starts the list again: UP comes with the
    next pass, ``delay_loop`` later (at once with ``fast_recovery``)."""
    rows, state = walk([T, T, F, F, T, T], urls=urls)
    assert [r[0] for r in rows] == [0, 0, 0, 0, 0, 0]
    assert [r[2] for r in rows] == ["first-up", "ok", "retry", "down", "ok", "up"]
    assert state == UP
    rows, _ = walk([F, T, T], urls=urls, fast_recovery=True)
    assert rows == [(0, F, "down", False, 6), (0, T, "ok", None, 0), (0, T, "up", True, 6)]


def test_fast_recovery_fetches_the_next_url_at_once_while_walking_up() -> None:
    rows, _ = walk([T, T, T], urls=3, fast_recovery=True)
    assert rows == [(0, T, "ok", None, 0), (1, T, "ok", None, 0), (2, T, "first-up", True, 6)]
    down = RetryState(is_up=False, has_run=True, retry_it=2, url=1, failed_url=1)
    rows, _ = walk([F, T, T, T, T], fast_recovery=True, state=down)
    assert rows == [
        (1, F, "still-down", None, 6),  # the failed url: no hurry
        (1, T, "ok", None, 0),
        (0, T, "ok", None, 0),
        (1, T, "up", True, 6),
        (0, T, "ok", None, 6),  # up: delay_loop again
    ]


def test_fast_recovery_never_retries_a_failure_at_once() -> None:
    """keepalived retries a url failing on the walk back up at once, in a loop while the server
    refuses; checkd waits ``delay_before_retry`` (docs/checkers.md, Differences)."""
    walking = RetryState(is_up=False, has_run=True, retry_it=0, url=0)
    rows, _ = walk([F, F], fast_recovery=True, state=walking)
    assert rows == [(0, F, "still-down", None, 3), (0, F, "still-down", None, 3)]
