"""The Procfile runs the group without the watchdog (honcho), one process per line."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.asyncio

from bus import RuntimeDir, Subscriber
from tests.daemon import REPO, component_pids, next_event, short_tmpdir, stop
from tests.lab import Lab, wait_until
from tests.watchdog.test_supervision import CONFIG

pytestmark = pytest.mark.netns

HONCHO = Path(sys.executable).with_name("honcho")


def heard_all(runtime: RuntimeDir, names: set[str], timeout: float = 10) -> set[str]:
    async def listen() -> set[str]:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, runtime, ["hb.*"])
        sub.start()
        seen: set[str] = set()
        try:
            while not names <= seen:
                event = await next_event(sub, lambda e: True, timeout)
                seen.add(event.body["name"])
        finally:
            sub.close()
            ctx.term()
        return seen

    return asyncio.run(listen())


@pytest.mark.skipif(not HONCHO.exists(), reason="honcho is installed by the test extra")
def test_honcho_runs_the_lines_and_a_left_out_one_joins_by_hand(lab: Lab) -> None:
    runtime = RuntimeDir(short_tmpdir())
    config = runtime.path / "keepalived.conf"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYKEEPALIVED_RUNTIME_DIR": str(runtime.path),
        "CONFIG": str(config),
        "PATH": f"{HONCHO.parent}:{os.environ['PATH']}",
    }
    # Debugging checkd: run every other line under honcho, checkd by hand (as the README says).
    others = ["bus", "core", "netd", "vrrpd"]
    proc = lab.node(0).popen(
        [str(HONCHO), "start", "-f", str(REPO / "Procfile"), *others],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: set(others) <= set(component_pids(runtime)),
            20,
            message="the Procfile lines to start",
        )
        assert "watchdog" not in component_pids(runtime)
        assert heard_all(runtime, set(others)) >= set(others)
        before = component_pids(runtime)
        manual = lab.node(0).popen(
            [sys.executable, "-m", "checkd", "-l"], env=env, cwd=REPO, stderr=subprocess.DEVNULL
        )
        try:
            assert "checkd" in heard_all(runtime, {"checkd"})
        finally:
            assert stop(manual) == 0
        assert heard_all(runtime, set(others)) >= set(others)
        assert component_pids(runtime) == before
    finally:
        stop(proc, timeout=30)
        for pid in component_pids(runtime).values():
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime.path, ignore_errors=True)
