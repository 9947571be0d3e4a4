"""TCP_CHECK connects in checkd's helper process (checkd.checkers.connect_helper) give the
verdicts and reasons of the in-process path against real sockets on loopback; a helper that
dies hands its attempts back and another takes over; it ends with checkd, however checkd ends;
and PoolRunner sends its TCP_CHECKs there once the load calls for it (docs/checkers.md,
"Scale")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus import RuntimeDir, Subscriber
from checkd.attempts import Armed, AttemptResult
from checkd.checkers import ConnectOptions, connect_helper
from checkd.checkers.connect_helper import ConnectHelper
from checkd.helper_policy import HelperPolicy
from checkd.lvs_runner import PoolRunner
from tests.checkd.checkers.servers import closed_port
from tests.checkd.support import FakePublisher, until
from tests.checkd.test_schedule import FakeActions
from tests.checkd.test_tcp_fast import (
    TIMEOUT,
    Target,
    armed_for,
    armed_plan,
    both_ways,
    full_queue,
    listening,
    recording,
    targets_up,
    without_coroutine,
)
from tests.daemon import python_module, running_bus, runtime_dir, stop
from tests.lab import wait_until

KINDS = ["open", "open6", "closed", "closed6", "full", "no_device", "bound"]


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (absent, or a zombie its new parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def through_helper(armed: list[Armed]) -> tuple[list[AttemptResult], int]:
    """Each checker's attempt through a helper process; the helper's pid."""
    results: dict[int, AttemptResult] = {}

    def lost(attempts: list[tuple[ConnectOptions, int]]) -> None:
        raise AssertionError(f"the helper died with {len(attempts)} attempts")

    helper: ConnectHelper[int] = ConnectHelper(
        asyncio.get_running_loop(), recording(armed, results), lost
    )
    pid = helper.pid
    assert pid is not None
    try:
        await until(lambda: helper.ready, 10, "the helper ready")
        for i, a in enumerate(armed):
            assert a.fast is not None
            helper.start(a.fast.opts, i)
        await until(lambda: len(results) == len(armed), TIMEOUT * 20, "every outcome")
        assert len(helper) == 0
    finally:
        helper.close()
    return [results[i] for i in range(len(armed))], pid


def test_the_helper_gives_the_in_process_verdicts_and_reasons() -> None:
    with targets_up(KINDS) as targets:
        armed = armed_for(targets)
        in_process = [fast for _, fast in asyncio.run(both_ways(armed))]
        helped, pid = asyncio.run(through_helper(armed))
    assert helped == in_process
    assert [r.ok for r in helped] == [True, True, False, False, False, False, True]
    assert gone(pid), "close() reaps the helper"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=12))
def test_any_mix_of_outcomes_in_the_helper_matches_the_in_process_path(kinds: list[str]) -> None:
    with targets_up(kinds) as targets:
        armed = armed_for(targets)
        in_process = [fast for _, fast in asyncio.run(both_ways(armed))]
        helped, _ = asyncio.run(through_helper(armed))
    assert helped == in_process


def test_the_helper_keeps_none_of_checkds_descriptors() -> None:
    """A connection checkd holds when it forks the helper ends when checkd closes it: the
    real server sees the close then, not when the helper exits days later."""

    async def scenario(server: socket.socket) -> None:
        probe = socket.create_connection(server.getsockname(), timeout=5)
        accepted, _ = server.accept()
        helper: ConnectHelper[str] = ConnectHelper(
            asyncio.get_running_loop(), lambda *_: None, lambda _: None
        )
        try:
            await until(lambda: helper.ready, 10, "the helper ready")
            probe.close()
            accepted.settimeout(5)
            assert accepted.recv(1) == b"", "the server saw the connection end"
        finally:
            accepted.close()
            helper.close()

    with socket.create_server(("127.0.0.1", 0)) as server:
        asyncio.run(scenario(server))


def test_a_killed_helper_hands_back_its_attempts_and_a_new_one_takes_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connect_helper, "RESPAWN_DELAY", 0.2)
    outcomes: list[tuple[str, bool]] = []
    handed_back: list[str] = []

    async def scenario(full_port: int, open_port: int) -> tuple[int, int]:
        helper: ConnectHelper[str] = ConnectHelper(
            asyncio.get_running_loop(),
            lambda tag, ok, reason: outcomes.append((tag, ok)),
            lambda attempts: handed_back.extend(tag for _, tag in attempts),
        )
        try:
            await until(lambda: helper.ready, 10, "the first helper ready")
            first = helper.pid
            assert first is not None
            # never answered within the test: still under way when the helper is killed
            stuck = ConnectOptions("127.0.0.1", full_port, connect_timeout=60)
            for tag in ("a", "b", "c"):
                helper.start(stuck, tag)
            await asyncio.sleep(0)  # the batch goes out
            os.kill(first, signal.SIGKILL)
            await until(lambda: len(handed_back) == 3, 10, "the attempts handed back")
            assert not helper.ready
            helper.start(stuck, "between")  # no helper until the next fork: straight back
            assert handed_back[-1] == "between"
            await until(lambda: helper.ready, 10, "a new helper ready")
            second = helper.pid
            assert second is not None and second != first
            helper.start(ConnectOptions("127.0.0.1", open_port, connect_timeout=5), "d")
            await until(lambda: bool(outcomes), 10, "the new helper's outcome")
            return first, second
        finally:
            helper.close()

    with full_queue() as full_port, listening() as open_port:
        first, second = asyncio.run(scenario(full_port, open_port))
    assert sorted(handed_back) == ["a", "b", "between", "c"]
    assert outcomes == [("d", True)], "nothing of the dead helper's came back twice"
    assert gone(first) and gone(second)


def test_the_helper_ignores_the_signals_checkd_acts_on() -> None:
    """A data dump or reload signal sent by name (``pkill -USR1 -f pykeepalived``) reaches the
    helper too: it must not end it. (A handler set like checkd's is inherited by the fork.)"""
    outcomes: list[tuple[str, bool]] = []
    lost: list[str] = []

    async def scenario(port: int) -> None:
        helper: ConnectHelper[str] = ConnectHelper(
            asyncio.get_running_loop(),
            lambda tag, ok, reason: outcomes.append((tag, ok)),
            lambda attempts: lost.extend(tag for _, tag in attempts),
        )
        try:
            await until(lambda: helper.ready, 10, "the helper ready")
            assert helper.pid is not None
            for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGINT):
                os.kill(helper.pid, sig)
            # a signal is handled before the helper reads what comes after it
            helper.start(ConnectOptions("127.0.0.1", port, connect_timeout=5), "after")
            await until(lambda: bool(outcomes or lost), 10, "the outcome")
        finally:
            helper.close()

    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGUSR1, signal.SIGHUP)}
    try:
        with listening() as port:
            asyncio.run(scenario(port))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert (outcomes, lost) == ([("after", True)], [])


HOST = textwrap.dedent(
    """
    import asyncio, sys
    from checkd.checkers.connect_helper import ConnectHelper

    async def main() -> None:
        helper = ConnectHelper(asyncio.get_running_loop(), print, print)
        while not helper.ready:
            await asyncio.sleep(0.01)
        print("helper", helper.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_the_helper_ends_when_checkd_is_killed() -> None:
    """No orphan: checkd's end of the socket closes with checkd, and the helper leaves."""
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", HOST],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    ) as host:
        try:
            assert host.stdout is not None
            # checkd's own log lines come first
            line = next(line for line in host.stdout if line.startswith(b"helper "))
            pid = int(line.split()[1])
            assert not gone(pid)
            host.kill()
            host.wait()
            asyncio.run(until(lambda: gone(pid), 10, "the helper gone"))
        finally:
            host.kill()


def test_the_runner_sends_its_tcp_checks_to_the_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the threshold at zero the helper starts with the configuration and, once ready,
    takes every TCP_CHECK: the verdicts are the listener's and the closed port's."""
    started: list[str] = []

    class Counted(ConnectHelper[Armed]):
        def start(self, opts: ConnectOptions, tag: Armed) -> None:
            started.append(tag.plan.id)
            super().start(opts, tag)

    monkeypatch.setattr("checkd.lvs_runner.ConnectHelper", Counted)

    with listening() as up_port:
        plan, armed = armed_plan([Target("open", up_port), Target("closed", closed_port())])
        armed = without_coroutine(armed)
        up_id, down_id = list(armed)
        runner = PoolRunner(FakePublisher(), FakeActions(), helper=HelperPolicy.always())

        async def scenario() -> int | None:
            runner.apply(plan, armed)
            task = asyncio.create_task(runner.run())
            try:
                await until(
                    lambda: min(started.count(up_id), started.count(down_id)) >= 3,
                    20,
                    "three attempts of each in the helper",
                )
                pid = runner.helper_pid
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await runner.stop()
            assert runner.helper_pid is None
            return pid

        pid = asyncio.run(scenario())
    assert {c: runner.last[c].ok for c in (up_id, down_id)} == {up_id: True, down_id: False}
    assert runner.last[up_id].reason == f"connected to 127.0.0.1:{up_port}"
    assert pid is not None and gone(pid)


DAEMON_CONF = """
virtual_server 192.0.2.1 80 {{
    protocol TCP
    lb_algo rr
    lb_kind NAT
    delay_loop 0.01
{real_servers}
}}
"""
REAL_SERVER = """    real_server 127.0.0.1 {port} {{
        TCP_CHECK {{
            connect_port {target}
            connect_timeout 1
        }}
    }}
"""


def helper_of(pid: int) -> int | None:
    """checkd's connect helper among its children, by the name it shows in ``ps``."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):
            if b"checkd connect helper" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    return None


def test_checkd_as_a_process_forks_the_helper_and_its_verdicts_follow_the_server(
    tmp_path: Path,
) -> None:
    """The real thing: core reads keepalived.conf, checkd (its bus sockets and their threads
    running; ``--connect-helper on``, as the schedule of 20 TCP_CHECKs every 10 ms would not
    slip) forks the helper, the verdicts on the bus follow the server, and checkd stops
    cleanly, the helper with it."""
    server = Acceptor()
    target = server.port
    conf = tmp_path / "keepalived.conf"
    servers = "".join(REAL_SERVER.format(port=10_000 + i, target=target) for i in range(20))
    conf.write_text(DAEMON_CONF.format(real_servers=servers))
    logs = tmp_path / "procs.log"
    try:
        with runtime_dir() as rt, running_bus(rt), logs.open("wb") as out:
            args = ("--runtime-dir", str(rt.path))
            kw: dict[str, Any] = {"stdout": out, "stderr": subprocess.STDOUT}
            checkd = python_module("checkd", *args, "--connect-helper", "on", **kw)
            core = python_module("core", "-f", str(conf), *args, **kw)
            try:
                helper = asyncio.run(_verdicts_follow(rt, checkd.pid, server))
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the processes said:\n{logs.read_text()}") from None
            finally:
                codes = stop(core), stop(checkd)
            assert codes == (0, 0), logs.read_text()
            wait_until(lambda: gone(helper), 10, message="the helper gone with checkd")
    finally:
        server.close()
    assert "checkd.connector.died" not in logs.read_text()


class Acceptor:
    """A TCP server on loopback that accepts and closes every connection (a listener nobody
    accepts on fills its queue in half a second at this rate) until ``close``."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            conn.close()

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._sock.close()


async def _verdicts_follow(rt: RuntimeDir, checkd: int, server: Acceptor) -> int:
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, rt, ["check.rs.*"])
    sub.start()
    alive: dict[str, bool] = {}

    async def pump() -> None:
        while True:
            alive.update((e.topic, e.body["alive"]) for e in await sub.recv_batch())

    async def all_alive(up: bool, what: str) -> None:
        await until(lambda: len(alive) == 20 and set(alive.values()) == {up}, 20, what)

    task = asyncio.create_task(pump())
    try:
        await all_alive(True, "20 real servers up")
        await until(lambda: helper_of(checkd) is not None, 10, "the helper among checkd's children")
        helper = helper_of(checkd)
        assert helper is not None
        server.close()
        await all_alive(False, "20 real servers down")
        return helper
    finally:
        task.cancel()
        sub.close()
        ctx.term()


def test_a_stopped_helper_is_replaced_and_its_attempts_run_in_checkd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A helper that stops answering (SIGSTOP here; a bug could spin it) would hold its
    checkers forever: once an attempt is well past its connect_timeout it is killed."""
    monkeypatch.setattr(connect_helper, "HUNG_GRACE", 0.4)
    monkeypatch.setattr(connect_helper, "RESPAWN_DELAY", 0.2)
    handed_back: list[str] = []

    async def scenario(port: int) -> tuple[int, int]:
        helper: ConnectHelper[str] = ConnectHelper(
            asyncio.get_running_loop(),
            lambda tag, ok, reason: None,
            lambda attempts: handed_back.extend(tag for _, tag in attempts),
        )
        try:
            await until(lambda: helper.ready, 10, "the helper ready")
            first = helper.pid
            assert first is not None
            os.kill(first, signal.SIGSTOP)
            helper.start(ConnectOptions("127.0.0.1", port, connect_timeout=0.2), "a")
            await until(lambda: handed_back == ["a"], 10, "the attempt handed back")
            await until(lambda: helper.ready, 10, "a new helper ready")
            second = helper.pid
            assert second is not None
            return first, second
        finally:
            helper.close()

    with listening() as port:
        first, second = asyncio.run(scenario(port))
    assert first != second
    assert gone(first) and gone(second)


def test_the_runner_forks_the_helper_when_its_schedule_slips() -> None:
    """checkd's own rule (checkd.helper_policy), with a short window: a loop held up (here by
    a callback that sleeps, as a long garbage collection or a busy host would) makes the
    starts late, and the helper is forked."""
    policy = HelperPolicy(min_rate=0.0, late=0.010, share=0.01, window=0.3)
    with listening() as port:
        plan, armed = armed_plan([Target("open", port), Target("open", port)])
        runner = PoolRunner(FakePublisher(), FakeActions(), helper=policy)

        async def scenario() -> int | None:
            loop = asyncio.get_running_loop()
            runner.apply(plan, armed)
            task = asyncio.create_task(runner.run())
            try:
                await until(lambda: all(c in runner.last for c in armed), 10, "a first round")
                for i in range(20):  # held 50 ms every 100 ms for two seconds
                    loop.call_later(i * 0.1, time.sleep, 0.05)
                await until(lambda: runner.helper_pid is not None, 10, "the helper forked")
                return runner.helper_pid
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await runner.stop()

        pid = asyncio.run(scenario())
    assert pid is not None and gone(pid)
