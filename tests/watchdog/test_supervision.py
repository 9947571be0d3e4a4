"""The watchdog as operators see it: a whole group in a namespace, real processes, real kills."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import zmq.asyncio

from bus import Event, Subscriber
from tests.daemon import REPO, DaemonGroup, daemon_group, next_event, stop
from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns

# The track_file gives checkd work, so the watchdog runs all five components.
CONFIG = """
global_defs {
    router_id sup1
}
track_file TF_SUP {
    file /nonexistent/pk-sup-track
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"""


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    with daemon_group(lab.node(0), CONFIG, "-l") as g:
        g.wait_started()
        yield g


def test_killed_child_is_back_within_two_seconds_and_tail_shows_it(group: DaemonGroup) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        # The watchdog's own heartbeat, subscribed after its log, proves that the log
        # subscription has reached the watchdog (not only the broker): its report of the
        # kill cannot be sent to nobody.
        sub = Subscriber(ctx, group.runtime, ["log.watchdog", "hb.watchdog"])
        sub.start()
        await next_event(sub, lambda e: e.topic == "hb.watchdog", 10)
        old = group.pids()["checkd"]
        killed_at = time.time()
        os.kill(old, signal.SIGKILL)

        def logged(event: str) -> Callable[[Event], bool]:
            return lambda e: e.topic == "log.watchdog" and e.body["event"] == event

        exited = await next_event(sub, logged("watchdog.child.exited"), 10)
        started = await next_event(sub, logged("watchdog.child.started"), 10)
        assert exited.body["child"] == "checkd" and "SIGKILL" in exited.body["cause"]
        assert started.body["child"] == "checkd"
        # Judged by the watchdog's own timestamp, not by how late a loaded test machine
        # delivered the event to us.
        assert started.env.ts - killed_at < 2.0
        sub.close()
        ctx.term()

    asyncio.run(scenario())
    wait_until(lambda: group.pids().get("checkd"), 5, message="checkd to be back")


def test_killed_watchdog_leaves_no_child(group: DaemonGroup) -> None:
    children = group.pids()
    assert len(children) == 6  # watchdog + five components
    group.proc.kill()  # `ip netns exec` execs, so this is the watchdog itself
    wait_until(lambda: not group.pids(), 10, message="every child to exit with its watchdog")


def test_hung_child_is_detected_by_heartbeat_and_restarted(group: DaemonGroup) -> None:
    old = group.pids()["netd"]
    os.kill(old, signal.SIGSTOP)  # alive, sockets open, but its event loop cannot run
    try:
        wait_until(
            lambda: group.pids().get("netd") not in (None, old),
            15,
            message="a new netd after the old one stopped heart-beating",
        )
    finally:
        try:
            os.kill(old, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert "watchdog.child.hung" in group.log_text()


def test_component_run_by_hand_joins_and_leaves_without_disturbing_others(lab: Lab) -> None:
    with daemon_group(lab.node(0), CONFIG, "-l", "-P") as g:  # -P: no checkd child
        pids = g.wait_started(("bus", "core", "netd", "vrrpd"))
        assert "checkd" not in pids

        async def heard(component: str) -> None:
            ctx = zmq.asyncio.Context()
            sub = Subscriber(ctx, g.runtime, [f"hb.{component}"])
            sub.start()
            await next_event(sub, lambda e: True, 10)
            sub.close()
            ctx.term()

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        manual = lab.node(0).popen(
            [sys.executable, "-m", "checkd", "--runtime-dir", str(g.runtime.path)],
            env=env,
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(heard("checkd"))
        finally:
            assert stop(manual) == 0
        asyncio.run(heard("vrrpd"))
        assert {k: v for k, v in g.pids().items() if k != "checkd"} == pids
        assert "watchdog.child.exited" not in g.log_text()


def test_second_daemon_on_same_runtime_dir_is_refused(group: DaemonGroup) -> None:
    proc = group.node.run(
        [
            sys.executable,
            "-m",
            "watchdog",
            "-f",
            str(group.config),
            "--runtime-dir",
            str(group.runtime.path),
        ],
        check=False,
    )
    assert proc.returncode == 1
    assert "in use by another daemon" in proc.stderr


def test_pid_files_are_written_and_removed(lab: Lab) -> None:
    with daemon_group(lab.node(0), CONFIG) as g:
        pids = g.wait_started()
        pidfile = g.runtime.path / "keepalived.pid"
        vrrp_pidfile = g.runtime.path / "vrrp.pid"
        wait_until(vrrp_pidfile.exists, 5, message="vrrp.pid")
        assert int(pidfile.read_text()) == pids["watchdog"]
        assert int(vrrp_pidfile.read_text()) == pids["vrrpd"]
        assert int((g.runtime.path / "checkers.pid").read_text()) == pids["checkd"]
        assert stop(g.proc, timeout=40) == 0
        assert not pidfile.exists() and not vrrp_pidfile.exists()
