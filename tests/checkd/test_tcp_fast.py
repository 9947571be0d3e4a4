"""TCP_CHECK's fast path (checkd.checkers.tcp_connects, checkd.attempts.TcpFast) gives the
verdicts the generic coroutine gives, against real sockets on loopback: a listener, a closed
port, a listener whose accept queue is full (the SYN is dropped: a connect timeout), a device
that does not exist, a source address; and PoolRunner runs TCP_CHECKs on it, publishing only
when a verdict moves (docs/checkers.md, "Scheduling")."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkd.attempts import Armed, AttemptResult, arm
from checkd.checkers import ConnectOptions, Pinger, connection, tcp_connects
from checkd.checkers.tcp_connects import TcpConnects
from checkd.checkplan import CheckPlan, build_plan
from checkd.lvs_runner import PoolRunner
from core.model import Checker, Config, RealServer, VirtualServer
from tests.checkd.checkers.servers import closed_port
from tests.checkd.support import FakePublisher, until
from tests.checkd.test_schedule import FakeActions
from tests.lab import Lab

TIMEOUT = 0.3  # connect_timeout of the checkers here: the full-queue listener never answers


@contextmanager
def listening(host: str = "127.0.0.1", backlog: int = 1024) -> Iterator[int]:
    """A port whose kernel completes connections (nobody accepts; closed at exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(backlog)
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextmanager
def full_queue() -> Iterator[int]:
    """A listener with ``listen(0)`` and one connection waiting in its accept queue: the
    kernel drops every further SYN, so a connect neither completes nor fails in time."""
    with listening(backlog=0) as port:
        filler = socket.create_connection(("127.0.0.1", port), timeout=2)
        try:
            yield port
        finally:
            filler.close()


@dataclass(frozen=True)
class Target:
    kind: str  # open, open6, closed, closed6, full, no_device, bound
    port: int


def checker_for(target: Target) -> tuple[str, Checker]:
    """The real server address and the TCP_CHECK that reaches ``target``."""
    ip = "::1" if target.kind.endswith("6") else "127.0.0.1"
    extra: dict[str, str] = {}
    if target.kind == "no_device":
        extra["bind_if"] = "pk-no-such-if"
    if target.kind == "bound":
        extra["bindto"] = "127.0.0.2"
    # extra holds Checker's own str keywords; a dict[str, str] cannot say which fields they are
    checker = Checker(
        kind="TCP_CHECK",
        connect_port=target.port,
        connect_timeout=TIMEOUT,
        retry=0,
        delay_loop=0.2,
        **extra,  # type: ignore[arg-type]
    )
    return ip, checker


def armed_for(targets: list[Target]) -> list[Armed]:
    plan, armed = armed_plan(targets)
    return [armed[c.id] for rs in plan.virtual_servers[0].real_servers for c in rs.checkers]


def armed_plan(targets: list[Target]) -> tuple[CheckPlan, dict[str, Armed]]:
    rss = []
    for i, target in enumerate(targets):
        ip, checker = checker_for(target)
        # one real server per target (distinct ports keep the ids apart)
        rss.append(RealServer(ip=ip, port=10_000 + i, checkers=(checker,)))
    vs = VirtualServer(
        name="192.0.2.1 80", ip="192.0.2.1", port=80, protocol="TCP", real_servers=tuple(rss)
    )
    config = Config(virtual_servers=(vs,))
    plan = build_plan(config, hostname="lb1")
    return plan, arm(config, plan, Pinger())


def recording(
    armed: list[Armed], into: dict[int, AttemptResult]
) -> Callable[[int, bool, str], None]:
    """A connector's ``done`` that keeps attempt ``i``'s result as ``armed[i]`` makes it."""

    def done(i: int, ok: bool, reason: str) -> None:
        assert i not in into, "one outcome per attempt"
        tcp = armed[i].fast
        assert tcp is not None
        into[i] = tcp.result(ok, reason)

    return done


async def both_ways(armed: list[Armed]) -> list[tuple[AttemptResult, AttemptResult]]:
    """Each checker's attempt through the generic coroutine and through the connector, at
    the same time."""
    fast: dict[int, AttemptResult] = {}
    connects: TcpConnects[int] = TcpConnects(asyncio.get_running_loop(), recording(armed, fast))
    try:
        for i, a in enumerate(armed):
            assert a.fast is not None
            connects.start(a.fast.opts, i)
        generic = await asyncio.gather(*(a.attempt() for a in armed))
        await until(lambda: len(fast) == len(armed), TIMEOUT * 10, "every fast outcome")
        assert len(connects) == 0
    finally:
        connects.close()
    return [(g, fast[i]) for i, g in enumerate(generic)]


@contextmanager
def targets_up(kinds: list[str]) -> Iterator[list[Target]]:
    with ExitStack() as stack:
        ports = {
            "open": stack.enter_context(listening()),
            "open6": stack.enter_context(listening("::1")),
            "full": stack.enter_context(full_queue()),
        }
        ports["bound"] = ports["no_device"] = ports["open"]
        ports["closed"] = closed_port()
        ports["closed6"] = closed_port("::1")
        yield [Target(kind, ports[kind]) for kind in kinds]


def test_each_outcome_gives_the_generic_verdict_and_reason() -> None:
    kinds = ["open", "open6", "closed", "closed6", "full", "no_device", "bound"]
    with targets_up(kinds) as targets:
        pairs = asyncio.run(both_ways(armed_for(targets)))
    for kind, (generic, fast) in zip(kinds, pairs, strict=True):
        assert fast == generic, kind
    verdicts = {kind: fast.ok for kind, (_, fast) in zip(kinds, pairs, strict=True)}
    assert verdicts == {
        "open": True,
        "open6": True,
        "closed": False,
        "closed6": False,
        "full": False,
        "no_device": False,
        "bound": True,
    }
    reasons = {kind: fast.reason for kind, (_, fast) in zip(kinds, pairs, strict=True)}
    assert reasons["closed"].endswith("failed: connection refused")
    assert reasons["full"].startswith(f"connect timeout after {TIMEOUT} s to 127.0.0.1:")
    assert reasons["no_device"] == "cannot set device pk-no-such-if: no such device"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(["open", "open6", "closed", "closed6", "full", "no_device", "bound"]),
        min_size=1,
        max_size=12,
    )
)
def test_any_mix_of_outcomes_on_one_connector_matches_the_generic_path(kinds: list[str]) -> None:
    """Many attempts at once on one epoll, finishing in any order, with timeouts among them:
    each still gets its own checker's verdict, reason and pool events."""
    with targets_up(kinds) as targets:
        pairs = asyncio.run(both_ways(armed_for(targets)))
    assert [fast for _, fast in pairs] == [generic for generic, _ in pairs]


class CountingRunner(PoolRunner):
    """Counts the results each checker had."""

    def __init__(self, publisher: FakePublisher, actions: FakeActions) -> None:
        super().__init__(publisher, actions)
        self.ran: dict[str, int] = {}

    def finished(self, armed: Armed, result: AttemptResult, now: float) -> None:
        self.ran[armed.plan.id] = self.ran.get(armed.plan.id, 0) + 1
        super().finished(armed, result, now)


def without_coroutine(armed: dict[str, Armed]) -> dict[str, Armed]:
    """The checkers with a generic attempt that fails the check ("checker crashed"): only the
    fast path can make a listening server pass."""

    async def coroutine() -> AttemptResult:
        raise AssertionError("a TCP_CHECK ran as a coroutine in a Task of its own")

    return {cid: replace(a, attempt=coroutine) for cid, a in armed.items()}


def test_tcp_checks_run_on_the_connector_and_a_steady_verdict_is_not_republished() -> None:
    with listening() as up_port:
        plan, armed = armed_plan([Target("open", up_port), Target("closed", closed_port())])
        armed = without_coroutine(armed)
        up_id, down_id = list(armed)
        publisher = FakePublisher()
        runner = CountingRunner(publisher, FakeActions())
        ran = runner.ran

        async def scenario() -> None:
            runner.apply(plan, armed)
            task = asyncio.create_task(runner.run())
            try:
                await until(lambda: min(ran.values(), default=0) >= 5, 20, "five probes each")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await runner.stop()

        asyncio.run(scenario())
    assert {c: runner.last[c].ok for c in (up_id, down_id)} == {up_id: True, down_id: False}
    assert runner.last[up_id].reason == f"connected to 127.0.0.1:{up_port}"
    alive = {b["rs"]: b["alive"] for t, b in publisher.sent if t.startswith("check.rs.")}
    assert sorted(alive.values()) == [False, True]
    # After its first result (the first verdict) each real server's topic stays quiet however
    # many probes follow: two messages per topic (start-up, first verdict) and no more.
    per_topic: dict[str, int] = {}
    for topic, _ in publisher.sent:
        if topic.startswith("check.rs."):
            per_topic[topic] = per_topic.get(topic, 0) + 1
    assert sorted(per_topic.values()) == [2, 2], per_topic


@pytest.mark.netns
def test_unreachable_and_unanswered_peers_in_a_namespace(lab: Lab) -> None:
    """No route (connect fails at once: the path that never reaches the epoll) and an on-link
    address nobody answers ARP for (a timeout), as the generic path sees them."""
    rss = tuple(
        RealServer(ip=ip, port=80, checkers=(Checker(kind="TCP_CHECK", connect_timeout=0.5),))
        for ip in ("203.0.113.9", "192.0.2.99")
    )
    vs = VirtualServer(
        name="192.0.2.1 80", ip="192.0.2.1", port=80, protocol="TCP", real_servers=rss
    )
    config = Config(virtual_servers=(vs,))
    plan = build_plan(config, hostname="lb1")
    armed = arm(config, plan, Pinger())
    ordered = [armed[c.id] for rs in plan.virtual_servers[0].real_servers for c in rs.checkers]
    with lab.node(0).inside():
        pairs = asyncio.run(both_ways(ordered))
    assert [fast for _, fast in pairs] == [generic for generic, _ in pairs]
    assert [fast.reason for _, fast in pairs] == [
        "connect to 203.0.113.9:80 failed: network is unreachable",
        "connect timeout after 0.5 s to 192.0.2.99:80",
    ]


def test_a_host_error_fails_the_attempt_as_the_generic_path_words_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No descriptor left: not the peer's fault, but the attempt fails (it does not take the
    schedule down with it) with the generic path's reason."""

    def no_socket(opts: ConnectOptions, kind: int, proto: int = 0) -> socket.socket:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(connection, "make_socket", no_socket)
    monkeypatch.setattr(tcp_connects, "make_socket", no_socket)
    with listening() as port:
        pairs = asyncio.run(both_ways(armed_for([Target("open", port)])))
    ((generic, fast),) = pairs
    assert fast == generic
    assert fast.reason == "probe failed: [Errno 24] Too many open files"
