"""docs/design.md "Failure semantics" for netd, with two real daemon groups on one segment.

Node 0 runs priority 150 and node 1 priority 100 on VRID 51 (VRRPv3, advert_int 0.5); the
VIP is watched in both kernels every few milliseconds while processes are killed with
SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.daemon import DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from tests.netd.failover import (
    VIP,
    GroupAt,
    VipWatch,
    add_operator_address,
    config,
    kill_group,
    master_down,
)

pytestmark = pytest.mark.netns

LEASE_SLACK = 0.0  # netd.leases.LEASE_SLACK
RENEW_EVERY = 0.5  # vrrpd re-sends held intents this often
SAMPLING = 0.1  # allowance for sampling and process scheduling in a busy test run
BOTH_HELD_MAX = 0.25  # half an advert interval


@pytest.fixture
def pair(lab: Lab) -> Iterator[tuple[DaemonGroup, DaemonGroup]]:
    with (
        daemon_group(lab.node(0), config(150, "n0"), "-l") as g0,
        daemon_group(lab.node(1), config(100, "n1"), "-l") as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        yield g0, g1


def wait_master_on_0(lab: Lab) -> None:
    def settled() -> bool:
        return VIP in str(lab.node(0).address_set()) and VIP not in str(lab.node(1).address_set())

    wait_until(settled, 20, 0.05, "node 0 to be master with the VIP")


def test_netd_killed_while_master_leaves_vips_and_reconciles_without_flap(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup]
) -> None:
    g0, _ = pair
    wait_master_on_0(lab)
    with VipWatch(lab.nodes, monitor_node=0) as watch:
        old = g0.pids()["netd"]
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: g0.pids().get("netd") not in (None, old), 10, 0.02, "netd restarted")
        restarted = time.monotonic()
        # The restarted netd reconciles at once, again when its restart grace ends (2 s)
        # and again on its periodic pass (5 s): watch through all of them.
        watch.wait_sampled_until(restarted + 6.0)
        assert not watch.gaps(0, since=t0), "the VIP vanished from node 0 at some point"
        assert not watch.removals, f"the VIP was deleted and re-added: {watch.removals}"
        assert not watch.additions, f"the VIP was re-added: {watch.additions}"
        assert not any(s.held[1] for s in watch.samples), "node 1 took the VIP"
        # The netlink monitor sees every removal; the sampling only has to have kept going.
        assert watch.max_interval(t0) < 0.5
    assert "netd.lease.expired" not in g0.log_text()
    # The restarted netd knows the VIP is its own: a TERM withdraws it.
    g0.close()
    wait_until(lambda: VIP not in str(lab.node(0).address_set()), 10, 0.05, "VIP withdrawn")


def test_vrrpd_killed_while_master_vip_withdrawn_within_lease_and_peer_takes_it(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup]
) -> None:
    """A vrrpd restarted within its lease resumes (tests/vrrpd/test_resume_daemon.py): here it
    is frozen first, so it stays away past the lease, and killed only once node 1 took over."""
    g0, _ = pair
    wait_master_on_0(lab)
    lease = max(1.0, master_down(150))
    vrrpd = g0.pids()["vrrpd"]
    with VipWatch(lab.nodes) as watch:
        t0 = time.monotonic()
        os.kill(vrrpd, signal.SIGSTOP)
        try:
            gone = watch.wait_held(0, False, 10, after=t0)
            taken = watch.wait_held(1, True, 10, after=t0)
        finally:
            os.kill(vrrpd, signal.SIGKILL)
        # The restarted vrrpd (priority 150, preempt) takes the VIP back: wait for that
        # too, so the overlap measure covers both hand-overs.
        back = watch.wait_held(0, True, 15, after=gone)
        watch.wait_held(1, False, 10, after=back)
        watch.wait_sampled_until(time.monotonic() + 0.5)
        both = watch.longest_both(since=t0 - 1)
        print(
            f"\nkill -9 vrrpd: VIP off node 0 after {gone - t0:.3f}s, on node 1 after "
            f"{taken - t0:.3f}s, back on node 0 after {back - t0:.3f}s; "
            f"longest time both held it {both:.3f}s (lease {lease:.3f}s)"
        )
    # Withdrawn at the latest one lease (+ slack) after the last renewal before the kill.
    assert gone - t0 <= lease + LEASE_SLACK + SAMPLING
    assert both <= BOTH_HELD_MAX
    # Node 1 takes over only after its own Master_Down_Interval without adverts.
    assert taken - t0 >= 3 * 0.5 * 0.9


def test_vrrpd_hung_while_master_loses_vip_at_lease_end(
    lab: Lab, pair: tuple[DaemonGroup, DaemonGroup]
) -> None:
    """A vrrpd that stops renewing (SIGSTOP: no restart for a while) cannot keep the VIP."""
    g0, _ = pair
    wait_master_on_0(lab)
    lease = max(1.0, master_down(150))
    vrrpd = g0.pids()["vrrpd"]
    with VipWatch(lab.nodes) as watch:
        t0 = time.monotonic()
        os.kill(vrrpd, signal.SIGSTOP)
        try:
            gone = watch.wait_held(0, False, 10, after=t0)
            taken = watch.wait_held(1, True, 10, after=t0)
            watch.wait_sampled_until(taken + 0.5)
        finally:
            os.kill(vrrpd, signal.SIGCONT)
        both = watch.longest_both(since=t0 - 1)
        print(
            f"\nSIGSTOP vrrpd: VIP off node 0 after {gone - t0:.3f}s, on node 1 after "
            f"{taken - t0:.3f}s; longest time both held it {both:.3f}s (lease {lease:.3f}s)"
        )
    # The last renewal came at most RENEW_EVERY before the stop.
    assert lease - RENEW_EVERY - SAMPLING <= gone - t0 <= lease + LEASE_SLACK + SAMPLING
    # vrrpd leases for its own Master_Down_Interval, shorter than the lower-priority peer's,
    # so the VIP leaves node 0 about when node 1 takes it: allow scheduling jitter only.
    assert both <= BOTH_HELD_MAX
    assert "netd.lease.expired" in g0.log_text()


def test_whole_group_killed_then_restarted_as_backup_cleans_leftovers(lab: Lab) -> None:
    n0, n1 = lab.nodes
    operator = "198.51.100.7/24"
    with (
        daemon_group(n0, config(150, "n0"), "-l") as g0,
        daemon_group(n1, config(100, "n1"), "-l") as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        wait_master_on_0(lab)
        add_operator_address(n0, operator)
        kill_group(g0.runtime)
        # kill -9 leaves the VIP behind (nothing in the group could remove it)...
        assert f"{VIP}/24" in n0.address_set()
        wait_until(lambda: f"{VIP}/24" in n1.address_set(), 10, 0.05, "node 1 to take over")
        # ...and a restart (now configured below the peer) must find and remove it.
        with VipWatch(lab.nodes) as watch, GroupAt(n0, g0.runtime, config(50, "n0")) as again:
            t_start = time.monotonic()
            again.wait_started()
            cleaned = watch.wait_held(0, False, 15, after=t_start)
            netd_up = time.monotonic()
            watch.wait_sampled_until(time.monotonic() + 3.0)
            print(
                f"\nwhole-group restart: leftover VIP removed {cleaned - t_start:.3f}s after start"
            )
            assert not any(s.held[0] for s in watch.samples if s.t > cleaned), "VIP came back"
            assert all(s.held[1] for s in watch.samples), "the master lost its VIP"
            assert netd_up > t_start
            # netd logs each deletion after the kernel has acknowledged it (and after the
            # firewall pass that follows): the VIP can be seen gone before the line is written.
            wait_until(
                lambda: (
                    "netd.leftover.found" in (text := again.log_text()) and "netd.delete" in text
                ),
                10,
                0.05,
                "the leftover's finding and deletion logged",
            )
        assert operator in n0.address_set(), "the operator's own address was removed"


def test_whole_group_killed_then_restarted_as_master_reclaims_vip(lab: Lab) -> None:
    n0, n1 = lab.nodes
    operator = "198.51.100.7/24"
    with (
        daemon_group(n0, config(150, "n0"), "-l") as g0,
        daemon_group(n1, config(100, "n1"), "-l") as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        wait_master_on_0(lab)
        add_operator_address(n0, operator)
        kill_group(g0.runtime)
        wait_until(lambda: f"{VIP}/24" in n1.address_set(), 10, 0.05, "node 1 to take over")
        with VipWatch(lab.nodes) as watch, GroupAt(n0, g0.runtime, config(150, "n0")) as again:
            again.wait_started()
            # Preempting back: node 0 master, node 1 releases the VIP.
            watch.wait_held(1, False, 20)
            watch.wait_sampled_until(time.monotonic() + 1.0)
            assert watch.now_held(0)
        # Stopping the restarted group withdraws the reclaimed VIP: it is known as ours.
        assert f"{VIP}/24" not in n0.address_set()
        assert operator in n0.address_set(), "the operator's own address was removed"


def test_bus_killed_while_master_vips_stay(lab: Lab, pair: tuple[DaemonGroup, DaemonGroup]) -> None:
    """Intents cannot reach netd while the bus is down: that must not read as a dead vrrpd."""
    g0, _ = pair
    wait_master_on_0(lab)
    with VipWatch(lab.nodes, monitor_node=0) as watch:
        old = g0.pids()["bus"]
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: g0.pids().get("bus") not in (None, old), 10, 0.02, "bus restarted")
        watch.wait_sampled_until(time.monotonic() + 4.0)
        assert not watch.gaps(0, since=t0), "the VIP vanished from node 0"
        assert not watch.removals, f"the VIP was removed: {watch.removals}"
        assert not any(s.held[1] for s in watch.samples), "node 1 took the VIP"


def test_bus_hung_while_master_vips_stay(lab: Lab, pair: tuple[DaemonGroup, DaemonGroup]) -> None:
    """A bus that stalls for longer than the lease (SIGSTOP) must not cost the VIP either:
    vrrpd is alive and advertising, so the peer stays backup and nobody would hold it.

    The stall stays below the watchdog's hang limit (3.5 s): beyond it the watchdog, which
    hears heartbeats through the bus, takes every child for hung and restarts vrrpd too.
    """
    g0, _ = pair
    wait_master_on_0(lab)
    bus = g0.pids()["bus"]
    with VipWatch(lab.nodes, monitor_node=0) as watch:
        t0 = time.monotonic()
        os.kill(bus, signal.SIGSTOP)
        try:
            watch.wait_sampled_until(t0 + 1.5 * master_down(150))
        finally:
            with contextlib.suppress(ProcessLookupError):  # the watchdog may have replaced it
                os.kill(bus, signal.SIGCONT)
        watch.wait_sampled_until(time.monotonic() + 2.0)
        assert not watch.removals, f"the VIP was removed: {watch.removals}"
        assert not any(s.held[1] for s in watch.samples), "node 1 took the VIP"
