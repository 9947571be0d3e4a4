"""docs/design.md "Failure semantics": vrrpd restarted quickly resumes without needless transitions.

Two real daemon groups on one segment (node 0 priority 150, node 1 priority 100, VRRPv3; the
config of tests/netd/failover.py with advert_int 1, as a resume listens 1.25 intervals first
and a shorter interval leaves little room for the restart itself on a loaded test machine).
vrrpd on the master is killed with SIGKILL and the watchdog restarts it; both kernels are
sampled every few milliseconds and the transitions are read from the bus (``log.vrrpd``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import REPO, DaemonGroup, daemon_group, stop
from tests.lab import Lab, wait_until
from tests.netd import failover
from tests.netd.failover import VIP, VipWatch

pytestmark = pytest.mark.netns


class Transitions:
    """Every ``vrrp.state`` transition vrrpd logs, read from the group's bus (``log.vrrpd``,
    whose envelope names the vrrpd process that logged it)."""

    def __init__(self, group: DaemonGroup, path: Path) -> None:
        self.path = path
        self._out = path.open("wb")
        argv = [sys.executable, "-m", "ctl", "--runtime-dir", str(group.runtime.path)]
        argv += ["tail", "--json", "log.vrrpd", "hb.vrrpd"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(argv, stdout=self._out, env=env, cwd=REPO)
        wait_until(lambda: "hb.vrrpd" in path.read_text(), 15, 0.05, "the bus tail to connect")

    def __call__(self, pid: int | None = None) -> list[dict[str, Any]]:
        """The transitions so far (of the vrrpd process ``pid`` if given), oldest first."""
        out = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written
            if record.get("topic") != "log.vrrpd" or record.get("event") != "vrrp.state":
                continue
            if pid is None or record.get("pid") == pid:
                out.append(record)
        return out

    def close(self) -> None:
        stop(self.proc)
        self._out.close()


@contextlib.contextmanager
def watching(group: DaemonGroup, path: Path) -> Iterator[Transitions]:
    tail = Transitions(group, path)
    try:
        yield tail
    finally:
        tail.close()


def config(priority: int, router_id: str, extra: str = "") -> str:
    return failover.config(priority, router_id, extra).replace("advert_int 0.5", "advert_int 1")


def master_down(priority: int) -> float:
    return 3 + (256 - priority) / 256


def notify_config(priority: int, router_id: str, marker: Path) -> str:
    script = marker.with_suffix(".sh")
    script.write_text(f'#!/bin/sh\necho "$$" >> {marker}\n')
    script.chmod(0o755)
    return config(priority, router_id, extra=f"    notify_master {script}")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "notify_master.n0"


@pytest.fixture
def pair(lab: Lab, marker: Path) -> Iterator[tuple[DaemonGroup, DaemonGroup]]:
    with (
        daemon_group(lab.node(0), notify_config(150, "n0", marker), "-l") as g0,
        daemon_group(lab.node(1), config(100, "n1"), "-l") as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        yield g0, g1


def wait_master_on_0(lab: Lab, marker: Path) -> None:
    def settled() -> bool:
        return VIP in str(lab.node(0).address_set()) and VIP not in str(lab.node(1).address_set())

    wait_until(settled, 20, 0.05, "node 0 to be master with the VIP")
    wait_until(marker.exists, 10, 0.05, "node 0's notify_master")


def restart_vrrpd(group: DaemonGroup) -> tuple[float, int]:
    old = group.pids()["vrrpd"]
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: group.pids().get("vrrpd") not in (None, old), 10, 0.02, "vrrpd restarted")
    return t0, group.pids()["vrrpd"]


def test_quick_vrrpd_restart_on_the_master_resumes_without_a_transition(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup], marker: Path, tmp_path: Path
) -> None:
    g0, g1 = pair
    wait_master_on_0(lab, marker)
    notified = marker.read_text()
    with (
        watching(g0, tmp_path / "t0") as t0s,
        watching(g1, tmp_path / "t1") as t1s,
        VipWatch(lab.nodes, monitor_node=0) as watch,
    ):
        t0, new = restart_vrrpd(g0)
        wait_until(lambda: t0s(new), 10, 0.02, "the restarted vrrpd's first transition")
        resumed_at = time.monotonic()
        # Longer than node 1's Master_Down_Interval: had the adverts stopped for that long,
        # node 1 would be master by then.
        watch.wait_sampled_until(resumed_at + 2 * master_down(100))
        print(f"\nkill -9 vrrpd on the master: resumed within {resumed_at - t0:.3f}s")
        assert not watch.gaps(0, since=t0), "the VIP left node 0"
        assert not watch.removals, f"the VIP was deleted on node 0: {watch.removals}"
        assert not any(s.held[1] for s in watch.samples), "node 1 took the VIP"
        (first, *later) = t0s(new)
        assert (first["old"], first["new"], first["cause_kind"]) == ("INIT", "MASTER", "resumed")
        assert later == [], f"needless transitions after resuming: {later}"
        assert t1s() == [], "node 1 changed state"
    # The resumed mastership is the one notify_master already ran for.
    assert marker.read_text() == notified
    text = g0.log_text()
    assert "netd.lease.expired" not in text
    assert "vrrpd.instance.resuming" in text


def test_slow_vrrpd_restart_after_the_lease_ran_out_starts_as_usual(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup], marker: Path, tmp_path: Path
) -> None:
    """vrrpd hangs (SIGSTOP) past its lease, so netd withdraws and node 1 takes over; then it
    is killed and restarted: netd holds nothing for it any more, it starts as BACKUP and
    preempts back as usual (priority 150 over 100)."""
    g0, g1 = pair
    wait_master_on_0(lab, marker)
    vrrpd = g0.pids()["vrrpd"]
    with (
        watching(g0, tmp_path / "t0") as t0s,
        watching(g1, tmp_path / "t1") as t1s,
        VipWatch(lab.nodes) as watch,
    ):
        t0 = time.monotonic()
        os.kill(vrrpd, signal.SIGSTOP)
        try:
            watch.wait_held(0, False, 10, after=t0)
            taken = watch.wait_held(1, True, 10, after=t0)
        finally:
            # Frozen past 3.5 s, the watchdog may have killed and restarted it already.
            with contextlib.suppress(ProcessLookupError):
                os.kill(vrrpd, signal.SIGKILL)
        wait_until(lambda: g0.pids().get("vrrpd") not in (None, vrrpd), 10, 0.02, "restart")
        new = g0.pids()["vrrpd"]
        back = watch.wait_held(0, True, 15, after=taken)
        watch.wait_held(1, False, 10, after=back)
        wait_until(lambda: len(t0s(new)) >= 2, 10, 0.02, "node 0's transitions")
        states = [(r["old"], r["new"], r["cause_kind"]) for r in t0s(new)]
        assert states == [("INIT", "BACKUP", "startup"), ("BACKUP", "MASTER", "timer")], states
        peer = [(r["old"], r["new"]) for r in t1s()]
        assert peer == [("BACKUP", "MASTER"), ("MASTER", "BACKUP")], peer
    text = g0.log_text()
    assert "vrrpd.instance.not_resumed" in text
    assert "netd.lease.expired" in text


def reconfigure_and_restart_vrrpd(group: DaemonGroup, text: str) -> tuple[float, int]:
    """The configuration changes while vrrpd is down: vrrpd is frozen (so it cannot take the
    reload itself), core reloads, then vrrpd is killed and restarted on the new config."""
    vrrpd = group.pids()["vrrpd"]
    t0 = time.monotonic()
    os.kill(vrrpd, signal.SIGSTOP)
    try:
        group.config.write_text(text)
        os.kill(group.pids()["core"], signal.SIGHUP)
    finally:
        os.kill(vrrpd, signal.SIGKILL)
    wait_until(lambda: group.pids().get("vrrpd") not in (None, vrrpd), 10, 0.02, "restart")
    return t0, group.pids()["vrrpd"]


def test_restart_with_a_lowered_priority_resumes_and_lets_the_protocol_hand_over(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup], marker: Path, tmp_path: Path
) -> None:
    """Priority is not part of what must match: as after a reload, the resumed master
    advertises its new priority 50 and node 1 (100, preempting) takes over by the protocol,
    without the VIP going missing in between."""
    g0, g1 = pair
    wait_master_on_0(lab, marker)
    with (
        watching(g0, tmp_path / "t0") as t0s,
        watching(g1, tmp_path / "t1") as t1s,
        VipWatch(lab.nodes) as watch,
    ):
        t0, new = reconfigure_and_restart_vrrpd(g0, notify_config(50, "n0", marker))
        taken = watch.wait_held(1, True, 15, after=t0)
        watch.wait_held(0, False, 10, after=taken)
        watch.wait_sampled_until(time.monotonic() + 0.5)
        wait_until(lambda: len(t0s(new)) >= 2, 10, 0.02, "node 0's transitions")
        states = [(r["old"], r["new"], r["cause_kind"]) for r in t0s(new)]
        assert states == [("INIT", "MASTER", "resumed"), ("MASTER", "BACKUP", "advert")], states
        assert [(r["old"], r["new"]) for r in t1s()] == [("BACKUP", "MASTER")]
        nobody = [s.t for s in watch.samples if s.t >= t0 and not any(s.held)]
        assert not nobody or max(nobody) - min(nobody) < 0.25, "the VIP was missing"


def test_restart_with_changed_vips_does_not_resume_them(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup], marker: Path, tmp_path: Path
) -> None:
    """netd holds items of another configuration: the instance starts as usual (BACKUP, the
    old VIP withdrawn) instead of resuming them."""
    g0, _ = pair
    wait_master_on_0(lab, marker)
    other = "192.0.2.201"
    text = notify_config(150, "n0", marker).replace(f"{VIP}/24", f"{other}/24")
    with watching(g0, tmp_path / "t0") as t0s, VipWatch(lab.nodes) as watch:
        t0, new = reconfigure_and_restart_vrrpd(g0, text)
        watch.wait_held(0, False, 10, after=t0)
        wait_until(lambda: t0s(new), 10, 0.02, "node 0's first transition")
        first = t0s(new)[0]
        assert (first["old"], first["new"], first["cause_kind"]) == ("INIT", "BACKUP", "startup")
    text = g0.log_text()
    assert "vrrpd.instance.not_resumed" in text and "a different configuration" in text


def test_restart_without_the_instance_leaves_its_vip_to_the_lease(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup], marker: Path
) -> None:
    """Nobody resumes an instance the configuration no longer has: netd withdraws its VIP when
    the lease runs out, and node 1 takes over."""
    g0, _ = pair
    wait_master_on_0(lab, marker)
    with VipWatch(lab.nodes) as watch:
        t0, _new = reconfigure_and_restart_vrrpd(g0, "global_defs {\n    router_id n0\n}\n")
        gone = watch.wait_held(0, False, 10, after=t0)
        watch.wait_held(1, True, 10, after=t0)
    assert gone - t0 <= master_down(150) + 0.2  # the lease, from the last renewal before t0
    assert "netd.lease.expired" in g0.log_text()
