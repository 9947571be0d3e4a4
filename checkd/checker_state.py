"""One checker's retry counting, as keepalived's checkers do it (TCP/UDP/PING/DNS alike).

Pure and clock-free: ``record`` takes one probe result and returns the next state, the delay
before the next probe and the verdict to hand to the pool (``checkd.pool``), if any. The rules
(docs/checkers.md, "Pools, quorum and sorry servers"):

* a checker starts *up but not yet run* (``alpha``: *down* and not yet run) with its retry
  counter already spent, so the first failure before any success is a DOWN verdict at once;
* a success resets the counter and is an UP verdict when the checker was down or has not run;
* a failure while up is retried after ``delay_before_retry`` while fewer than ``retry`` retries
  were made; the next one is the DOWN verdict, so DOWN takes ``retry + 1`` consecutive failures;
* a down checker is probed every ``delay_loop`` and makes no retries;
* the first probe starts 1 s plus a uniformly random part of ``warmup`` after start-up.

HTTP_GET/SSL_GET count the same way but one url at a time (``checkd.url_walk``, which keeps
its place in the url list here too); MISC_CHECK carries weights on top of this.

SMTP_CHECK counts *per round* instead (``per_round``): keepalived zeroes its counter at the start
of every ``delay_loop`` round (check_smtp.c, ``smtp_start_check_thread``) and retries a failure
whether the checker is up or not (``smtp_final``). Every round, the first one and the rounds
while down included, makes up to ``retry`` retries ``delay_before_retry`` apart, and the
round's ``retry + 1``-th failure is DOWN when the checker was up or had not run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

# keepalived waits this long before the first probe, whatever the warmup.
BOOTSTRAP_DELAY = 1.0

Step = Literal["up", "down", "retry", "ok", "still-down", "first-up"]


@dataclass(frozen=True, slots=True)
class RetryState:
    is_up: bool
    has_run: bool
    retry_it: int
    # HTTP_GET/SSL_GET only (``checkd.url_walk``): the url the next attempt fetches, and the
    # one that made the checker fail (keepalived's ``url_it`` and ``failed_url``), as indexes
    # into the checker's url list. A reload starts both afresh, as keepalived's does.
    url: int = 0
    failed_url: int | None = None

    @classmethod
    def start(cls, retry: int, *, alpha: bool, per_round: bool = False) -> RetryState:
        return cls(is_up=not alpha, has_run=False, retry_it=0 if per_round else retry)


# The checkers whose retries count per delay_loop round (keepalived's SMTP_CHECK).
PER_ROUND = frozenset({"SMTP_CHECK"})


@dataclass(frozen=True, slots=True)
class Outcome:
    state: RetryState
    delay: float  # seconds until the next probe
    step: Step
    # The verdict for the pool (keepalived's update_svr_checker_state), None when there is none.
    verdict: bool | None
    # For the log line: how many retries were made before a DOWN verdict (0: none).
    retries: int = 0


def record(
    state: RetryState,
    success: bool,
    *,
    retry: int,
    delay_loop: float,
    delay_before_retry: float,
    per_round: bool = False,
) -> Outcome:
    """Count one probe result (``per_round``: SMTP_CHECK's counting, above)."""
    if per_round and not success:
        return _round_failure(
            state, retry=retry, delay_loop=delay_loop, delay_before_retry=delay_before_retry
        )
    fresh = state.is_up or not state.has_run
    if success or (fresh and state.retry_it >= retry):
        if success and (not state.is_up or not state.has_run):
            step: Step = "up" if not state.is_up else "first-up"
            new = RetryState(is_up=True, has_run=True, retry_it=0)
            return Outcome(new, delay_loop, step, True)
        if not success:  # fresh, and the retries are spent
            retries = retry if state.has_run else 0
            new = RetryState(is_up=False, has_run=True, retry_it=0)
            return Outcome(new, delay_loop, "down", False, retries)
        return Outcome(replace(state, retry_it=0, has_run=True), delay_loop, "ok", None)
    if state.is_up:
        new = RetryState(is_up=True, has_run=True, retry_it=state.retry_it + 1)
        return Outcome(new, delay_before_retry, "retry", None)
    return Outcome(replace(state, has_run=True), delay_loop, "still-down", None)


def _round_failure(
    state: RetryState, *, retry: int, delay_loop: float, delay_before_retry: float
) -> Outcome:
    """A failure counted per round: retried while the round has retries left; the round's
    last failure ends it (the next round counts from zero) and is DOWN if the checker was up
    or had not run."""
    if state.retry_it < retry:
        new = replace(state, retry_it=state.retry_it + 1)
        return Outcome(new, delay_before_retry, "retry", None)
    if state.is_up or not state.has_run:
        down = RetryState(is_up=False, has_run=True, retry_it=0)
        return Outcome(down, delay_loop, "down", False, retry)
    return Outcome(replace(state, retry_it=0), delay_loop, "still-down", None)


def first_delay(warmup: float, random: Callable[[], float]) -> float:
    """Delay before a checker's first probe; ``random`` returns a float in [0, 1]."""
    return BOOTSTRAP_DELAY + (warmup * random() if warmup > 0 else 0.0)


def migrate(old: RetryState, *, retry: int) -> RetryState:
    """A checker's retry state carried over a reload that may have changed ``retry``.

    A down checker needs a success to come back; an up one keeps the retries it has made, but
    never more than the new ``retry`` allows, so one more failure is then enough.
    """
    if not old.is_up:
        return RetryState(is_up=False, has_run=old.has_run, retry_it=retry + 1)
    return RetryState(is_up=True, has_run=old.has_run, retry_it=min(old.retry_it, retry))


_MAIL_TEXT = {
    "TCP_CHECK": ("=> TCP CHECK succeed on service <=", "=> TCP CHECK failed on service <="),
    "UDP_CHECK": ("=> UDP CHECK succeed on service <=", "=> UDP CHECK failed on service <="),
    "PING_CHECK": ("=> ICMP CHECK succeed on service <=", "=> ICMP CHECK failed on service <="),
    "DNS_CHECK": ("=> DNS_CHECK: succeed on service <=", "=> DNS_CHECK: failed on service <="),
    "HTTP_GET": (
        "=> CHECK succeed on service <=",
        "=> CHECK failed on service : HTTP/SSL request failed <=",
    ),
    "SSL_GET": (
        "=> CHECK succeed on service <=",
        "=> CHECK failed on service : HTTP/SSL request failed <=",
    ),
    "SMTP_CHECK": ("=> CHECK succeed on service <=", "=> CHECK failed on service <="),
    "MISC_CHECK": ("=> MISC CHECK succeeded on service <=", "=> MISC CHECK failed on service <="),
    # not keepalived's: a verdict from outside checkd (docs/checkers.md, "External verdicts")
    "EXTERNAL": (
        "=> EXTERNAL CHECK succeeded on service <=",
        "=> EXTERNAL CHECK failed on service <=",
    ),
}


def mail_body(kind: str, up: bool, detail: str | None = None) -> str | None:
    """The smtp_alert body keepalived's checker of ``kind`` sends on a verdict change.

    ``detail``: SMTP_CHECK's failure reason (``=> CHECK failed on service : <detail> <=``),
    ``timed out`` for a MISC_CHECK killed at misc_timeout, a BFD_CHECK's instance name.
    FILE_CHECK sends no mail.
    """
    if kind == "SMTP_CHECK" and not up and detail:
        return f"=> CHECK failed on service : {detail} <="
    if kind == "MISC_CHECK" and not up and detail:
        return f"=> MISC CHECK {detail} on service <="
    if kind == "BFD_CHECK":
        return f"=> BFD CHECK {detail or ''} {'succeeded' if up else 'failed'} on service <="
    texts = _MAIL_TEXT.get(kind)
    if texts is None:
        return None
    return texts[0] if up else texts[1]
