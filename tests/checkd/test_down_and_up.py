"""Each checker in the running service against a real server: DOWN only at the ``retry + 1``-th
consecutive failed attempt, the retries ``delay_before_retry`` apart, then probed every
``delay_loop`` without retries (SMTP_CHECK: with its retries, every round), and UP again at the
first success (SSL_GET: its failed URL passes, then the whole list ``delay_loop`` later)
(keepalived's check_*.c epilogues and ``update_svr_checker_state``; docs/checkers.md, "One
checker: retries").

The attempts are read as the service records them (``PoolRunner.last``, polled far faster than
they come), each with the real server's verdict right after it; the servers count what they
answered. keepalived counts ``delay_before_retry`` from the end of the failed attempt and checkd
may start an attempt up to a tenth of its delay sooner (docs/checkers.md, "Scheduling"): that
is the lower bound asserted between attempts, never an upper one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import core
from checkd.lvs_runner import CATCH_UP
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from checkd.pool_topics import rs_topic
from tests.checkd.checkers.servers import dns_answer, http_server, make_certificate, udp_responder
from tests.checkd.checkers.test_http_fast import ok_response
from tests.checkd.support import FakePublisher, Served, Switched, until
from tests.lab import Lab
from tests.smtp_servers import smtp_server

VS = "[192.0.2.10]:tcp:80"
RETRY = 2
DELAY_BEFORE_RETRY = 0.2
DELAY_LOOP = 0.5
TIMING = f"""
            retry {RETRY}
            delay_before_retry {DELAY_BEFORE_RETRY}
            delay_loop {DELAY_LOOP}
            connect_timeout 0.5
"""
# Each wait below ends long before this on a quiet machine; it only bounds a hung test.
PATIENCE = 15.0


@dataclass(frozen=True)
class Attempt:
    ok: bool
    reason: str
    at: float  # when it ended (the service's wall clock)
    alive: bool  # the real server's verdict right after it
    retry_it: int  # the retries its round has made (keepalived's dump: "Retries iterations")


@dataclass
class Target:
    """A checker and what makes its probes fail (``off``) and pass again (``on``)."""

    kind: str
    real_server: str  # "<address> <port>"
    checker: str  # the checker block's own lines
    off: Callable[[], object]
    on: Callable[[], object]
    failure: str  # the reason of an attempt while off
    answered: Callable[[], int] | None = None  # probes the server answered since ``on``
    retries: bool = True  # FILE_CHECK has none: its file's value is the verdict
    # FILE_CHECK: read when its file changes, not every delay_loop (no schedule to check)
    watched: bool = False
    per_round: bool = False  # SMTP_CHECK: retries in every round, while down too
    # passing attempts that bring it back up: HTTP_GET/SSL_GET's failed URL passes, then the
    # whole list (keepalived's check_http.c epilog)
    to_up: int = 1
    rs_lines: str = ""  # real_server options
    top: str = ""  # configuration before the virtual server

    def config(self) -> str:
        return f"""{self.top}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    real_server {self.real_server} {{
        {self.rs_lines}
        {self.kind} {{
            {self.checker}
        }}
    }}
}}
"""


@contextmanager
def _smtp(port: int) -> Iterator[Served]:
    with smtp_server(port=port or None) as (inbox, bound):
        yield bound, lambda: len(inbox.helos)


@contextmanager
def _dns(port: int) -> Iterator[Served]:
    with udp_responder(dns_answer(), port=port) as (bound, rec):
        yield bound, lambda: len(rec.requests)


@contextmanager
def _udp(port: int) -> Iterator[Served]:
    with udp_responder(lambda data: [b"\xca\xfe" + data], port=port) as (bound, rec):
        yield bound, lambda: len(rec.requests)


def _https(directory: Path) -> Callable[[int], AbstractContextManager[Served]]:
    tls = make_certificate(directory)

    @contextmanager
    def start(port: int) -> Iterator[Served]:
        with http_server(ok_response(), tls=tls, port=port) as (bound, rec):
            yield bound, lambda: len(rec.requests)

    return start


@contextmanager
def switched_target(
    kind: str, start: Callable[[int], AbstractContextManager[Served]], checker: str, failure: str
) -> Iterator[Target]:
    server = Switched(start)
    try:
        yield Target(
            kind,
            f"127.0.0.1 {server.port}",
            checker + TIMING,
            server.off,
            server.on,
            failure.format(peer=f"127.0.0.1:{server.port}"),
            answered=server.count,
            per_round=kind == "SMTP_CHECK",
            to_up=2 if kind == "SSL_GET" else 1,
        )
    finally:
        server.off()


@contextmanager
def file_target(directory: Path) -> Iterator[Target]:
    state = directory / "state"

    def put(value: str) -> None:
        new = directory / "state.new"
        new.write_text(value)
        os.replace(new, state)  # never seen half-written

    put("0\n")
    yield Target(
        "FILE_CHECK",
        "127.0.0.1 80",
        "track_file state",
        lambda: put("1\n"),
        lambda: put("0\n"),
        f"{state}: value 1 is not 0 (weight 0)",
        retries=False,
        watched=True,
        # keepalived's FILE_CHECK block takes no timing keywords: they come from the real
        # server here and mean nothing to it (its file is watched: DOWN and UP come within
        # PATIENCE, far sooner than this delay_loop)
        rs_lines="retry 2\n        delay_loop 60",
        top=f'track_file state {{\n    file "{state}"\n    weight 0\n}}\n',
    )


def ping_target(lab: Lab) -> Target:
    here, there = lab.node(0), lab.node(1)
    there.run(["ip", "addr", "add", "198.51.100.7/32", "dev", "lo"])
    route = ["198.51.100.7/32", "via", there.ip4]
    here.run(["ip", "route", "add", *route])
    return Target(
        "PING_CHECK",
        "198.51.100.7 80",
        TIMING,
        lambda: here.run(["ip", "route", "del", *route]),
        lambda: here.run(["ip", "route", "add", *route]),
        "ping 198.51.100.7: cannot send echo request: network is unreachable",
    )


@dataclass
class Run:
    attempts: list[Attempt]  # from the last success before ``off`` on
    alive: list[bool]  # the real server's published verdicts, repeats left out
    answered_at_up: int | None  # what the server had answered when UP was published


async def _tap(service: LvsService, out: list[Attempt]) -> None:
    """Every attempt of the only checker, with the verdict it left: one result replaces the
    last, so they are read far more often than they can come (every 5 ms; the closest two
    are ``(1 - CATCH_UP) * delay_before_retry`` apart, and this task's timer comes due before
    the runner's that starts the next one)."""
    seen: float | None = None
    while True:
        for cid, armed in service.runner.armed.items():
            last = service.runner.last.get(cid)
            if last is not None and last.at != seen:
                seen = last.at
                member = service.runner.pools[armed.vs_id].member(armed.plan.rs_id)
                retry_it = member.checkers[cid].retry.retry_it
                out.append(Attempt(last.ok, last.reason, last.at, member.alive, retry_it))
        await asyncio.sleep(0.005)


def down_and_up(target: Target) -> Run:
    async def scenario() -> Run:
        publisher = FakePublisher()
        service = LvsService(publisher, actions=ActionRunner())
        model = core.to_wire(core.loads(target.config(), script_env=None).config)
        assert service.apply_model(model, 1)
        (armed,) = service.runner.armed.values()
        rs = service.runner.pools[VS].member(armed.plan.rs_id).rs
        topic = rs_topic(VS, rs.text)

        def alive() -> bool | None:
            body = publisher.retained.get(topic)
            return None if body is None else bool(body["alive"])

        attempts: list[Attempt] = []
        service.start()
        tap = asyncio.create_task(_tap(service, attempts))
        try:
            await until(lambda: any(a.ok for a in attempts), PATIENCE, "a first success")
            since = len(attempts) - 1
            target.off()
            await until(lambda: not attempts[-1].alive, PATIENCE, "the DOWN verdict")
            down = len(attempts)
            # a whole round while down, and the next one's first attempt
            rounds = RETRY + 1 if target.per_round else 1
            if not target.watched:
                await until(lambda: len(attempts) > down + rounds, PATIENCE, "probes while down")
            target.on()
            await until(lambda: attempts[-1].alive, PATIENCE, "the UP verdict")
            answered = target.answered() if target.answered is not None else None
            assert alive() is True
        finally:
            tap.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tap
            await service.stop()
        verdicts = [bool(b["alive"]) for t, b in publisher.sent if t == topic]
        return Run(attempts[since:], [k for k, _ in itertools.groupby(verdicts)], answered)

    return asyncio.run(scenario())


def assert_down_and_up(target: Target, run: Run) -> None:
    last_ok, *rest = run.attempts
    assert last_ok.ok and last_ok.alive
    # (an attempt under way when the server went off may still have passed)
    while rest[0].ok:
        last_ok, *rest = rest
    failed = list(itertools.takewhile(lambda a: not a.ok, rest))
    back = rest[len(failed) :]  # from the first success on, the test stops at UP
    assert [a.reason for a in failed] == [target.failure] * len(failed)

    # DOWN at the retry + 1-th failure in a row, not before (FILE_CHECK: at the first)
    to_down = RETRY + 1 if target.retries else 1
    assert [a.alive for a in failed] == [True] * (to_down - 1) + [False] * (
        len(failed) - to_down + 1
    )
    assert [(a.ok, a.alive) for a in back] == [(True, False)] * (target.to_up - 1) + [(True, True)]
    assert run.alive == [True, False, True]
    if target.watched:
        return
    # While down: no retries (every delay_loop, as while up), except SMTP_CHECK's rounds
    rounds = RETRY + 1 if target.per_round else 1
    assert len(failed) > to_down + rounds - 1  # the test waits for a round and one more
    if target.retries:
        one_round = [*range(1, RETRY + 1), 0]  # the retries made, then the round is over
        down_round = one_round if target.per_round else [0]
        if target.kind in ("HTTP_GET", "SSL_GET"):
            # keepalived's check_http.c leaves the url walk's counter past ``retry`` while down
            one_round = [*range(1, RETRY + 2)]
            down_round = [RETRY + 1]
        assert [a.retry_it for a in failed[: to_down + rounds]] == one_round + down_round
    floor = 1 - CATCH_UP
    gaps = [round(b.at - a.at, 3) for a, b in itertools.pairwise([last_ok, *failed, back[0]])]
    assert gaps[0] >= floor * DELAY_LOOP, gaps
    assert all(g >= floor * DELAY_BEFORE_RETRY for g in gaps[1:to_down]), gaps
    for j, gap in enumerate(gaps[to_down:]):
        least = DELAY_LOOP if j % rounds == 0 else DELAY_BEFORE_RETRY
        assert gap >= floor * least, gaps

    # UP at the first success (HTTP/SSL: the second, the list walked again delay_loop later),
    # and one DOWN between (asserted above): no flapping on the bus
    assert all(b.at - a.at >= floor * DELAY_LOOP for a, b in itertools.pairwise(back)), back
    if run.answered_at_up is not None:
        # those successes were the restarted server's first answers
        assert run.answered_at_up == target.to_up


def test_smtp_check_goes_down_and_up() -> None:
    with switched_target(
        "SMTP_CHECK",
        _smtp,
        "helo_name lb1.example.org",
        "connect to {peer} failed: connection refused",
    ) as target:
        assert_down_and_up(target, down_and_up(target))


def test_dns_check_goes_down_and_up() -> None:
    with switched_target(
        "DNS_CHECK",
        _dns,
        "type A\n            name www.example.test",
        "DNS A www.example.test to {peer}: connection refused",
    ) as target:
        assert_down_and_up(target, down_and_up(target))


def test_udp_check_goes_down_and_up() -> None:
    with switched_target(
        "UDP_CHECK",
        _udp,
        "payload 0102\n            require_reply cafe0102",
        "UDP to {peer}: connection refused",
    ) as target:
        assert_down_and_up(target, down_and_up(target))


def test_ssl_get_goes_down_and_up(tmp_path: Path) -> None:
    with switched_target(
        "SSL_GET",
        _https(tmp_path),
        "url {\n                path /\n                status_code 200\n            }",
        "GET /: connect to {peer} failed: connection refused",
    ) as target:
        assert_down_and_up(target, down_and_up(target))


def test_file_check_goes_down_and_up_without_retries(tmp_path: Path) -> None:
    with file_target(tmp_path) as target:
        assert_down_and_up(target, down_and_up(target))


@pytest.mark.netns
def test_ping_check_goes_down_and_up_with_the_route(lab: Lab) -> None:
    target = ping_target(lab)
    with lab.node(0).inside():
        run = down_and_up(target)
    assert_down_and_up(target, run)
