"""keepalived's dump files on USR1 / USR2 / SIGRTMIN+2, sent to the daemon as keepalived's."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until
from tests.watchdog.test_supervision import CONFIG


@pytest.mark.netns
def test_signals_write_keepalived_dump_files(lab: Lab, tmp_path: Path) -> None:
    node = lab.node(0)
    with daemon_group(node, CONFIG, env={"TMPDIR": str(tmp_path)}) as group:
        pids = group.wait_started()
        wait_until(lambda: "192.0.2.200/24" in node.address_set(), 15, message="master")
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2):
            os.kill(pids["watchdog"], sig)
        names = ("keepalived.data", "keepalived.stats", "keepalived.json")
        wait_until(
            lambda: all((tmp_path / n).exists() for n in names), 10, message="the three dump files"
        )
        data = (tmp_path / "keepalived.data").read_text()
        assert " VRRP Instance = VI_1" in data and "   State = MASTER" in data
        assert "     192.0.2.200 dev eth0 set" in data
        stats = (tmp_path / "keepalived.stats").read_text()
        assert stats.startswith("VRRP Instance: VI_1\n  Advertisements:\n")
        assert "  Became master: 1\n" in stats
        (record,) = json.loads((tmp_path / "keepalived.json").read_text())
        assert record["data"]["iname"] == "VI_1" and record["data"]["state"] == 2
        assert record["stats"]["advert_sent"] >= 1
        for name in names:
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
