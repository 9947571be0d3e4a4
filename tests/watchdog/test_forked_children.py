"""Children forked from the watchdog's preloaded image behave as exec'd ones (watchdog.spawn).

Each is its own process for ``ps``, signals and restarts, and holds none of the watchdog's
descriptors. ``python -m <component>`` alone and the Procfile are covered by
test_supervision.py and test_procfile.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import zmq.asyncio

from bus import Subscriber
from tests.daemon import DaemonGroup, daemon_group, next_event
from tests.lab import Lab, wait_until
from tests.watchdog.test_supervision import CONFIG

pytestmark = pytest.mark.netns

COMPONENTS = ("bus", "core", "netd", "checkd", "vrrpd")


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    with daemon_group(lab.node(0), CONFIG, "-l") as g:
        g.wait_started()
        yield g


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _open_files(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return found


def _blocked_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk for {pid}")


def _unblocked(pid: int) -> bool:
    return _blocked_signals(pid) == 0


def _log_lines(group: DaemonGroup, *words: str) -> list[str]:
    return [line for line in group.log_text().splitlines() if all(w in line for w in words)]


def test_each_forked_child_has_its_own_name_and_none_of_the_watchdogs_files(
    group: DaemonGroup,
) -> None:
    pids = group.pids()
    watchdog = pids.pop("watchdog")
    assert sorted(pids) == sorted(COMPONENTS)
    lock = str(group.runtime.lock_path("daemon"))
    assert lock in _open_files(watchdog)
    for name, pid in pids.items():
        assert _ppid(pid) == watchdog
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        assert title.startswith(f"pykeepalived: {name} --runtime-dir ")
        # The watchdog's lock must die with the watchdog, not live on in a child.
        assert lock not in _open_files(pid), name
        # Blocked across the fork and until the component's handlers exist (watchdog.spawn);
        # a child that kept them blocked would never see a signal.
        wait_until(partial(_unblocked, pid), 10, message=f"{name} to unblock its signals")


def test_a_forked_child_handles_signals_with_its_own_handlers(group: DaemonGroup) -> None:
    checkd = group.pids()["checkd"]
    os.kill(checkd, signal.SIGUSR2)  # checkd has no use for it: logged and ignored
    wait_until(
        lambda: _log_lines(group, " checkd: ", "component.signal.ignored"),
        10,
        message="checkd to log the signal it ignores",
    )
    assert group.pids()["checkd"] == checkd
    os.kill(checkd, signal.SIGTERM)  # its own orderly stop: exit 0, not death by signal
    wait_until(
        lambda: _log_lines(group, "watchdog.child.exited", "child=checkd"),
        10,
        message="the watchdog to see checkd exit",
    )
    (exited,) = _log_lines(group, "watchdog.child.exited", "child=checkd")
    assert "exit 0" in exited
    wait_until(lambda: group.pids().get("checkd") not in (None, checkd), 10, message="a new checkd")


def test_a_child_killed_by_sigkill_is_forked_again_and_heard_on_the_bus(
    group: DaemonGroup,
) -> None:
    old = group.pids()["vrrpd"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: group.pids().get("vrrpd") not in (None, old), 10, message="a new vrrpd")
    new = group.pids()["vrrpd"]

    async def heartbeat_from_new() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, group.runtime, ["hb.vrrpd"])
        sub.start()
        try:
            await next_event(sub, lambda e: e.env.pid == new, 10)
        finally:
            sub.close()
            ctx.term()

    asyncio.run(heartbeat_from_new())
    (exited,) = _log_lines(group, "watchdog.child.exited", "child=vrrpd")
    assert "SIGKILL" in exited
