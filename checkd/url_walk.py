"""HTTP_GET and SSL_GET: one url per attempt, counted as keepalived's HTTP checker counts.

Pure and clock-free, like ``checkd.checker_state.record`` for the other checkers: ``record_url``
takes the result of one GET (the url at ``RetryState.url``) and returns the next state, the
delay before the next GET and the verdict, if any. keepalived 2.2.7's rules
(docs/checkers.md, "One checker: retries"):

* each attempt fetches one url, and the next attempt the next url, ``delay_loop`` later;
* the checker is UP only once the whole list has passed in a row (when it was down or had not
  run); a success on the last url starts the list again;
* a failing url is retried, the same url, after ``delay_before_retry``; with ``retry``
  retries spent the checker is DOWN and that url is remembered as the *failed url*. Before
  the first verdict one failure is enough (the retries start spent, as for every checker);
* a down checker polls its failed url every max(``delay_before_retry``, ``delay_loop``);
  once it passes the list starts again from the first url, and a url failing on that way is
  retried every ``delay_before_retry`` (keepalived does not remember it as failed);
* ``fast_recovery``: while the checker has not run yet, or is down with no failed url (the
  walk back up), the next url is fetched at once instead of ``delay_loop`` later.

One difference, on purpose: keepalived's ``fast_recovery`` also retries *a failing url* of that
walk back up at once, with no delay at all, so a server that refuses connections is hammered
in a loop for as long as it refuses (and a reload of a down checker, which forgets its failed
url, starts that loop). Here a failure always waits ``delay_before_retry``, the delay keepalived
computes there and then skips.
"""

from __future__ import annotations

from dataclasses import replace

from checkd.checker_state import Outcome, RetryState, Step


def record_url(
    state: RetryState,
    success: bool,
    *,
    urls: int,
    retry: int,
    delay_loop: float,
    delay_before_retry: float,
    fast_recovery: bool,
) -> Outcome:
    """Count one GET of the url at ``state.url`` (of ``urls``; with none, every attempt
    passes, as checkd's probe then reports)."""
    if success:
        return _passed(state, urls, retry, delay_loop, fast_recovery)
    return _failed(state, retry, delay_loop, delay_before_retry)


def _passed(
    state: RetryState, urls: int, retry: int, delay_loop: float, fast_recovery: bool
) -> Outcome:
    step: Step = "ok"
    verdict: bool | None = None
    if state.url + 1 >= urls and state.failed_url is None:  # the whole list passed
        if not state.is_up or not state.has_run:
            step = "up" if not state.is_up else "first-up"
            verdict = True
        new = RetryState(is_up=True, has_run=True, retry_it=0)
    elif state.failed_url is not None:  # the failed url passes: the whole list again
        new = replace(state, retry_it=0, url=0, failed_url=None)
    else:
        new = replace(state, retry_it=0, url=state.url + 1)
    if not new.has_run:  # until the first verdict one failure is enough
        new = replace(new, retry_it=retry)
    walking_up = not new.has_run or (not new.is_up and new.failed_url is None)
    delay = 0.0 if fast_recovery and walking_up else delay_loop
    return Outcome(new, delay, step, verdict)


def _failed(state: RetryState, retry: int, delay_loop: float, delay_before_retry: float) -> Outcome:
    step: Step
    verdict: bool | None = None
    retries = 0
    if state.is_up or not state.has_run:
        retry_it = state.retry_it + 1
        if retry_it > retry:
            # keepalived leaves the counter past ``retry``; the next success resets it
            new = replace(state, has_run=True, retry_it=retry_it, failed_url=state.url)
            if state.is_up:
                step, verdict, retries = "down", False, retry_it - 1 if retry else 0
                new = replace(new, is_up=False)
            else:  # alpha, first run: already down, and keepalived says nothing
                step = "still-down"
        else:
            new = replace(state, has_run=True, retry_it=retry_it)
            step = "retry"
    else:  # down already: the same url again, nothing counted
        new, step = state, "still-down"
    if new.failed_url is not None:
        delay = max(delay_before_retry, delay_loop)
    else:
        delay = delay_before_retry
    return Outcome(new, delay, step, verdict, retries)
