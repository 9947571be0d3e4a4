"""The scripts the running service runs: a MISC_CHECK slower than its ``delay_loop`` but within
its ``misc_timeout`` counts by its exit code; ``notify_up``/``notify_down`` and
``quorum_up``/``quorum_down`` run on each transition, and at shutdown only with ``omega``, only
for real servers still alive (keepalived's ipwrapper.c ``clear_service_rs`` and
``update_vs_notifies``; docs/checkers.md, "Notifications")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import core
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from checkd.pool_topics import LastResult
from tests.checkd.checkers.servers import closed_port, silent_tcp_server
from tests.checkd.support import FakePublisher, Served, Switched, open_dir, until, write_script

PATIENCE = 15.0  # bounds a hung test; every wait ends long before on a quiet machine


def _service(conf: str) -> LvsService:
    service = LvsService(FakePublisher(), actions=ActionRunner())
    assert service.apply_model(core.to_wire(core.loads(conf, script_env=None).config), 1)
    service.start()
    return service


# -- a slow MISC_CHECK ---------------------------------------------------------------------

MISC = """
virtual_server 192.0.2.10 80 {{
    protocol TCP
    delay_loop 0.3
    real_server 127.0.0.1 80 {{
        MISC_CHECK {{
            misc_path "{script}"
            misc_timeout {timeout}
        }}
    }}
}}
"""


@pytest.mark.parametrize(
    ("rc", "timeout", "ok", "reason"),
    [
        (0, 3, True, "exited with status 0"),
        (1, 3, False, "exited with status 1"),
        (0, 0.2, False, "timed out"),  # the contrast: killed before it finished
    ],
    ids=["exit-0", "exit-1", "killed"],
)
def test_a_slow_misc_check_counts_by_its_exit_code(
    tmp_path: Path, rc: int, timeout: float, ok: bool, reason: str
) -> None:
    """The script takes 0.5 s, longer than the virtual server's delay_loop (0.3 s, which
    would be misc_timeout's default): within misc_timeout its exit code is the result."""
    finished = tmp_path / "finished"
    script = write_script(tmp_path, "slow.sh", f"sleep 0.5\ntouch {finished}\nexit {rc}")

    async def scenario() -> tuple[LastResult, bool]:
        service = _service(MISC.format(script=script, timeout=timeout))
        try:
            (cid,) = service.runner.armed
            await until(lambda: cid in service.runner.last, PATIENCE, "the first attempt")
            (member,) = next(iter(service.runner.pools.values())).members
            return service.runner.last[cid], member.alive
        finally:
            await service.stop()

    last, alive = asyncio.run(scenario())
    assert (last.ok, last.reason, alive) == (ok, reason, ok)
    assert last.rc == (None if reason == "timed out" else rc)
    assert finished.exists() is (reason != "timed out")


# -- notify scripts and omega --------------------------------------------------------------

CHECK = """
        TCP_CHECK {
            connect_timeout 0.5
            delay_loop 0.3
            retry 0
        }"""


def _notifies(notify: Path, tag: str) -> str:
    return f'notify_up "{notify} {tag} up"\n        notify_down "{notify} {tag} down"'


def _quorum(notify: Path, vs: str) -> str:
    return f'quorum_up "{notify} {vs} quorum-up"\n    quorum_down "{notify} {vs} quorum-down"'


def _notify_config(notify: Path, port: int, dead: int) -> str:
    """Two virtual servers on one real server (``port``), one of them with ``omega`` and a
    second real server nothing listens for (``dead``)."""
    return f"""
virtual_server 192.0.2.10 80 {{
    protocol TCP
    omega
    {_quorum(notify, "omega")}
    real_server 127.0.0.1 {port} {{
        {_notifies(notify, "omega rs")}{CHECK}
    }}
    real_server 127.0.0.1 {dead} {{
        {_notifies(notify, "omega dead")}{CHECK}
    }}
}}
virtual_server 192.0.2.11 80 {{
    protocol TCP
    {_quorum(notify, "plain")}
    real_server 127.0.0.1 {port} {{
        {_notifies(notify, "plain rs")}{CHECK}
    }}
}}
"""


@contextmanager
def _tcp(port: int) -> Iterator[Served]:
    with silent_tcp_server(port=port) as bound:
        yield bound, lambda: 0


def test_notify_scripts_on_each_transition_and_omega_at_shutdown() -> None:
    with open_dir() as d:
        log = d / "notified"
        notify = write_script(d, "notify.sh", f'echo "$*" >> {log}')
        server = Switched(_tcp)
        phases: list[list[str]] = []

        def lines() -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

        async def phase(what: str, expected: list[str]) -> None:
            """The scripts of one transition (run concurrently, so in any order)."""
            done = sum(len(p) for p in phases)
            await until(lambda: len(lines()) >= done + len(expected), PATIENCE, what)
            phases.append(expected)
            assert sorted(lines()[done:]) == sorted(expected), what

        async def scenario() -> None:
            service = _service(_notify_config(notify, server.port, closed_port()))
            try:
                # Both pools start with their quorum; the dead server's first failure takes
                # it down at once (its retries start spent); the pool keeps its quorum.
                await phase("start", ["omega quorum-up", "plain quorum-up", "omega dead down"])
                server.off()
                await phase(
                    "the server down",
                    ["omega rs down", "omega quorum-down", "plain rs down", "plain quorum-down"],
                )
                server.on()
                await phase(
                    "the server up",
                    ["omega rs up", "omega quorum-up", "plain rs up", "plain quorum-up"],
                )
            finally:
                await service.stop()
            # omega: the down notifiers of the servers still alive and the quorum's, for the
            # virtual server with omega only (stop waits for them, up to 1 s, as keepalived)
            await phase("the shutdown", ["omega rs down", "omega quorum-down"])

        try:
            asyncio.run(scenario())
        finally:
            server.off()
        assert len(lines()) == sum(len(p) for p in phases)  # and nothing more came
