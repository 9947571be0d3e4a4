"""``PYKEEPALIVED_KSM=1``: the watchdog marks itself mergeable before its first fork, so every
forked child is too (watchdog.ksm); without it, none is. Whether the kernel then merges
anything depends on its scanner (/sys/kernel/mm/ksm/run), which a test does not switch on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab
from tests.watchdog.test_supervision import CONFIG
from watchdog.ksm import KSM_ENV

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(
        not Path("/proc/self/ksm_stat").exists(), reason="kernel without per-process KSM"
    ),
]


def _merge_any(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/ksm_stat").read_text().splitlines():
        if line.startswith("ksm_merge_any:"):
            return line.split()[1] == "yes"
    raise AssertionError(f"no ksm_merge_any for {pid}")


@pytest.mark.parametrize("opted_in", [True, False])
def test_children_inherit_the_merge_mark(lab: Lab, opted_in: bool) -> None:
    env = {KSM_ENV: "1"} if opted_in else {KSM_ENV: ""}
    with daemon_group(lab.node(0), CONFIG, "-l", env=env) as group:
        pids = group.wait_started()
        assert {name: _merge_any(pid) for name, pid in pids.items()} == dict.fromkeys(
            pids, opted_in
        )
        assert ("watchdog.ksm.merge" in group.log_text()) is opted_in
