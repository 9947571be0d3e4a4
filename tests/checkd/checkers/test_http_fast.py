"""HTTP_GET's fast path (checkd.checkers.http_fetches, checkd.attempts.HttpFast) gives the
verdict, reason and pool events of the generic attempt (``http_check`` in a Task, bounded as
``checkd.attempts`` bounds it) for the same exchange, and sends the same request bytes: each
case runs both ways against the same server (docs/checkers.md, "Scheduling")."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

import pytest

from checkd.attempts import Armed, AttemptResult, _bounded, _probe_attempt, arm
from checkd.checkers import CheckResult, Pinger, http_check
from checkd.checkers.http_fetches import HttpFetches
from checkd.checkplan import CheckPlan, build_plan
from checkd.lvs_runner import PoolRunner
from core.model import Checker, Config, RealServer, Url, VirtualServer
from tests.checkd.checkers.servers import closed_port, http_server, silent_tcp_server
from tests.checkd.support import FakePublisher, until
from tests.checkd.test_schedule import FakeActions

TIMEOUT = 0.3  # connect_timeout: the silent and trickling servers run into it
BODY = b"<html>pool member ok</html>\n"


def ok_response(body: bytes = BODY, status: str = "200 OK") -> bytes:
    return f"HTTP/1.0 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def armed_for(
    port: int, urls: tuple[Url, ...], host: str = "127.0.0.1", **checker: object
) -> Armed:
    return armed_plan(port, urls, host, "HTTP_GET", **checker)[1]


def armed_plan(
    port: int,
    urls: tuple[Url, ...],
    host: str = "127.0.0.1",
    kind: str = "HTTP_GET",
    **checker: object,
) -> tuple[CheckPlan, Armed]:
    kw: dict[str, object] = {"connect_timeout": TIMEOUT, "retry": 0, "delay_loop": 0.2}
    kw.update(checker)
    c = Checker(kind=kind, connect_port=port, urls=urls, **kw)  # type: ignore[arg-type]
    vs = VirtualServer(
        name="192.0.2.1 80",
        ip="192.0.2.1",
        port=80,
        protocol="TCP",
        real_servers=(RealServer(ip=host, port=port, checkers=(c,)),),
    )
    config = Config(virtual_servers=(vs,))
    plan = build_plan(config, hostname="lb1")
    (armed,) = arm(config, plan, Pinger()).values()
    assert armed.http is not None
    return plan, armed


def both_ways(armed: Armed, url: int = 0) -> tuple[AttemptResult, AttemptResult]:
    """The generic attempt, then the fast one, against the same server: one attempt is the
    GET of one url, the one at index ``url`` (as the runner asks for it, checkd.url_walk)."""
    http = armed.http
    assert http is not None
    generic = armed.attempt
    if url:
        probe = partial(http_check, http.check, url)
        generic = _bounded(armed.plan, _probe_attempt(armed.plan, probe), armed.bound)

    async def fast() -> AttemptResult:
        out: list[AttemptResult] = []

        def done(tag: int, result: CheckResult) -> None:
            assert tag == 7 and not out, "one outcome per attempt"
            out.append(http.result(result))

        fetches: HttpFetches[int] = HttpFetches(asyncio.get_running_loop(), done)
        try:
            fetches.start(http.check, 7, http.bound, url)
            await until(lambda: bool(out), http.bound + 5, "the fast outcome")
            assert len(fetches) == 0
        finally:
            fetches.close()
        return out[0]

    return asyncio.run(generic()), asyncio.run(fast())


def same(armed: Armed) -> AttemptResult:
    """Each url in turn, both ways, up to the first failing one: the last result."""
    assert armed.http is not None
    for url in range(max(1, len(armed.http.check.urls))):
        generic, fast = both_ways(armed, url)
        assert fast == generic
        if not fast.ok:
            break
    return fast


def respond(request: bytes) -> bytes:
    if b"/missing" in request:
        return ok_response(status="404 Not Found")
    if b"/bare" in request:
        return b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"
    if b"/garbage" in request:
        return b"garbage without a blank line"
    if b"/huge" in request:
        return b"HTTP/1.0 200 OK\r\nX-Filler: " + b"a" * 5000 + b"\r\n\r\nbody"
    if b"/empty" in request:
        return ok_response(b"")
    if b"/chunked" in request:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    if b"/big" in request:
        return ok_response(bytes(range(256)) * 400)
    return ok_response()


DIGEST = hashlib.md5(BODY).hexdigest()
CASES: dict[str, tuple[tuple[Url, ...], bool]] = {
    "pass": ((Url(path="/"),), True),
    "status": ((Url(path="/missing"),), False),
    "status list": ((Url(path="/missing", status_code=("404", "500-503")),), True),
    "no reason phrase": ((Url(path="/bare"),), False),
    "no header": ((Url(path="/garbage"),), False),
    "header too long": ((Url(path="/huge"),), False),
    "empty body": ((Url(path="/empty"),), True),
    "digest": ((Url(path="/", digest=DIGEST),), True),
    "digest mismatch": ((Url(path="/", digest="0" * 32),), False),
    "chunked digest": (
        (Url(path="/chunked", digest=hashlib.md5(b"5\r\nhello\r\n0\r\n\r\n").hexdigest()),),
        True,
    ),
    "big body digest": (
        (Url(path="/big", digest=hashlib.md5(bytes(range(256)) * 400).hexdigest()),),
        True,
    ),
    "regex": ((Url(path="/", regex=r"pool member \w+"),), True),
    "regex no match": ((Url(path="/", regex="error", regex_no_match=True),), True),
    "regex missing": ((Url(path="/", regex="error"),), False),
    "all urls": ((Url(path="/"), Url(path="/b")), True),
    "second url fails": ((Url(path="/"), Url(path="/missing"), Url(path="/never")), False),
    "no url": ((), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_response_gives_the_generic_verdict_reason_and_request(case: str) -> None:
    urls, ok = CASES[case]
    with http_server(respond) as (port, rec):
        result = same(armed_for(port, urls, http_protocol="1.1", virtualhost="www.example.test"))
    assert result.ok is ok, result.reason
    # every request the fast path sent is the generic path's, byte for byte (each url is
    # fetched the generic way, then the fast way)
    assert rec.requests[0::2] == rec.requests[1::2]
    if case == "second url fails":
        assert len(rec.requests) == 4 and result.reason.startswith("GET /missing")


def test_ipv6_and_a_source_address() -> None:
    with http_server(respond, host="::1") as (port, rec):
        assert same(armed_for(port, (Url(path="/"),), host="::1")).ok
    assert (
        rec.requests[0]
        == f"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:{port}\r\n\r\n".encode()
    )
    with http_server(respond) as (port, _):
        assert same(armed_for(port, (Url(path="/"),), bindto="127.0.0.2")).ok


def test_refused_unanswered_and_unusable_device() -> None:
    port = closed_port()
    refused = same(armed_for(port, (Url(path="/"),)))
    assert refused.reason == f"GET /: connect to 127.0.0.1:{port} failed: connection refused"
    with silent_tcp_server() as port:
        silent = same(armed_for(port, (Url(path="/"),)))
    assert silent.reason == f"GET /: HTTP read timeout after {TIMEOUT} s from 127.0.0.1:{port}"
    with http_server(respond) as (port, _):
        device = same(armed_for(port, (Url(path="/"),), bind_if="pk-no-such-if"))
    assert device.reason == "GET /: cannot set device pk-no-such-if: no such device"


@contextmanager
def trickling_server() -> Iterator[int]:
    """Answers a header line and then one byte every tenth of a second, never ending: each
    read is in time, the attempt as a whole is not."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\n")
                while not stop.wait(0.1):
                    conn.sendall(b"x")
            except OSError:
                pass  # the checker gave up and closed

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def test_a_trickling_server_runs_into_the_whole_attempt_bound() -> None:
    with trickling_server() as port:
        armed = armed_for(port, (Url(path="/"),))
        result = same(armed)
    assert not result.ok
    assert result.reason == f"no result within {armed.bound:g} s"


def test_http_gets_run_on_the_fetcher_not_in_tasks() -> None:
    async def coroutine() -> AttemptResult:
        raise AssertionError("an HTTP_GET ran as a coroutine in a Task of its own")

    with http_server(respond) as (port, _):
        plan, armed = armed_plan(port, (Url(path="/"),))
        # the generic attempt would fail the check: only the fetcher can make it pass
        armed = replace(armed, attempt=coroutine)
        runner = CountingRunner(FakePublisher(), FakeActions())

        async def scenario() -> None:
            runner.apply(plan, {armed.plan.id: armed})
            task = asyncio.create_task(runner.run())
            try:
                await until(lambda: runner.ran >= 3, 20, "three probes")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await runner.stop()

        asyncio.run(scenario())
    last = runner.last[armed.plan.id]
    assert last.ok and last.reason == f"GET / from 127.0.0.1:{port}: HTTP status 200"


class CountingRunner(PoolRunner):
    def __init__(self, publisher: FakePublisher, actions: FakeActions) -> None:
        super().__init__(publisher, actions)
        self.ran = 0

    def finished(self, armed: Armed, result: AttemptResult, now: float) -> None:
        self.ran += 1
        super().finished(armed, result, now)


class WalkRunner(PoolRunner):
    """Records each attempt as (url path, ok, whether the real server is alive after it)."""

    def __init__(self, publisher: FakePublisher, actions: FakeActions) -> None:
        super().__init__(publisher, actions)
        self.seen: list[tuple[str, bool, bool]] = []

    def finished(self, armed: Armed, result: AttemptResult, now: float) -> None:
        super().finished(armed, result, now)
        (member,) = self.pools[armed.vs_id].members
        self.seen.append((result.reason.split()[1], result.ok, member.alive))


def test_two_urls_against_a_real_server_one_url_per_attempt_as_keepalived() -> None:
    """keepalived's url walk (checkd.url_walk) on the fetcher, against a real server whose
    second url breaks and mends: one GET per attempt, the failing url retried and then polled
    alone, and the whole list passed again before the real server is back."""
    broken = threading.Event()

    def answer(request: bytes) -> bytes:
        if b"/second" in request and broken.is_set():
            return ok_response(status="503 Service Unavailable")
        return ok_response()

    urls = (Url(path="/first"), Url(path="/second"))
    with http_server(answer) as (port, rec):
        plan, armed = armed_plan(port, urls, retry=1, delay_loop=0.1, delay_before_retry=0.05)
        runner = WalkRunner(FakePublisher(), FakeActions())

        def count(pred: Callable[[tuple[str, bool, bool]], bool]) -> int:
            return sum(1 for s in runner.seen if pred(s))

        async def scenario() -> None:
            runner.apply(plan, {armed.plan.id: armed})
            task = asyncio.create_task(runner.run())
            try:
                await until(lambda: len(runner.seen) >= 4, 30, "both urls checked twice")
                broken.set()
                await until(lambda: count(lambda s: not s[2]) >= 3, 30, "the server down")
                broken.clear()
                await until(lambda: runner.seen[-1][2], 30, "the server back")
                mended = len(runner.seen)
                await until(lambda: len(runner.seen) >= mended + 2, 30, "two more checks")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await runner.stop()

        asyncio.run(scenario())
    seen = runner.seen
    # each attempt is one GET, of the url the walk is on: the server saw the same sequence
    assert [r.split()[1].decode() for r in rec.requests] == [path for path, _, _ in seen]
    fail = next(i for i, (_, ok, _) in enumerate(seen) if not ok)
    assert [path for path, _, _ in seen[:fail]] == [u.path for u in urls] * (fail // 2) + (
        ["/first"] if fail % 2 else []
    )
    assert all(ok and alive for _, ok, alive in seen[:fail])
    # the failing url is retried once (retry 1) while the server is up, then it is down and
    # only that url is polled until it passes
    back = next(i for i in range(fail, len(seen)) if seen[i][1])
    assert seen[fail] == ("/second", False, True)
    assert seen[fail + 1 : back] == [("/second", False, False)] * (back - fail - 1)
    assert back - fail >= 3
    # it passes: the whole list from the first url, and only then is the server back
    assert seen[back : back + 4] == [
        ("/second", True, False),
        ("/first", True, False),
        ("/second", True, True),
        ("/first", True, True),
    ]
