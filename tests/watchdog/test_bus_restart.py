"""docs/design.md: when the bus dies, components keep their state and VRRP keeps flowing; the
watchdog restarts the bus and everything re-converges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.daemon import REPO, daemon_group
from tests.lab import Lab, wait_until
from tests.watchdog.test_supervision import CONFIG

pytestmark = pytest.mark.netns


def test_killed_bus_costs_no_vip_and_everything_reconverges(lab: Lab) -> None:
    node = lab.node(0)
    with daemon_group(node, CONFIG) as group:
        pids = group.wait_started()
        wait_until(
            lambda: "192.0.2.200/24" in node.address_set(),
            15,
            message="the instance to become master alone",
        )
        os.kill(pids["bus"], signal.SIGKILL)
        # Watch the VIP closely for longer than the intent lease (master-down ~3.6 s).
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert "192.0.2.200/24" in node.address_set(), "VIP lost while the bus restarted"
            time.sleep(0.05)
        after = group.pids()
        assert after["bus"] != pids["bus"]
        assert {k: v for k, v in after.items() if k != "bus"} == {
            k: v for k, v in pids.items() if k != "bus"
        }

        def status_shows_master() -> bool:
            out = subprocess.run(
                [sys.executable, "-m", "ctl", "--runtime-dir", str(group.runtime.path), "status"],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=20,
            )
            return "MASTER" in out.stdout and "vrrpd" in out.stdout

        wait_until(status_shows_master, 10, message="status to show the state again")
