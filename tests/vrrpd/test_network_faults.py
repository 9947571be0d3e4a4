"""Three nodes and an observer under network faults injected on the wire (tests/netfaults.py).

Priorities 150, 120 and 100: node 0 is the master whenever it can be heard. Every scenario
starts from that steady state, injects a fault with nftables on the lab's bridge (or pulls a
cable), checks what the protocol says must happen while it lasts, heals it, and then waits
for the steady state again: node 0 alone MASTER, alone holding the VIP in its kernel, and
alone answering the observer's ARP for it. Waits poll the condition; docs/reliability.md has
the measured times (bench/faults.py).

CI runs VRRPv3 at 1 s; VRRPv2 at 1 s and VRRPv3 at 0.1 s are marked ``slow``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.lab import Capture, wait_until
from tests.netfaults import FaultLab, cluster_config

pytestmark = pytest.mark.netns

PRIORITIES = (150, 120, 100)
#: (version, advert_int) per variant
VARIANTS = {"v3-1s": (3, "1"), "v2-1s": (2, "1"), "v3-0.1s": (3, "0.1")}


@pytest.fixture(
    scope="module",
    params=[
        "v3-1s",
        pytest.param("v2-1s", marks=pytest.mark.slow),
        pytest.param("v3-0.1s", marks=pytest.mark.slow),
    ],
)
def cluster(request: pytest.FixtureRequest) -> Iterator[FaultLab]:
    if os.geteuid() != 0:
        pytest.skip("network-namespace tests need root")
    version, interval = VARIANTS[request.param]
    configs = [
        cluster_config(i, prio, version=version, interval=interval)
        for i, prio in enumerate(PRIORITIES)
    ]
    lab = FaultLab(configs, float(interval))
    try:
        for group in lab.groups:
            group.wait_started(timeout=60)
        yield lab
    finally:
        lab.close()


@pytest.fixture
def steady(cluster: FaultLab) -> Iterator[FaultLab]:
    """Node 0 master before the test, and again after it (whatever the test left behind)."""
    settle(cluster)
    try:
        yield cluster
    finally:
        cluster.heal()
        for i in range(len(cluster.nodes)):
            cluster.set_link(i, up=True)
    settle(cluster)


def settle(cluster: FaultLab) -> None:
    # Generous bounds: the time it takes is a figure for bench/faults.py, not an assertion.
    wait_until(lambda: cluster.converged(0), 30 + 10 * cluster.interval, 0.2, "node 0 alone master")


def adverts_from(capture: Capture, src: str, count: int, cluster: FaultLab) -> None:
    """Wait until the observer saw ``count`` of ``src``'s adverts: the fault's duration."""
    packed = socket.inet_aton(src)

    def advert(frame: bytes) -> bool:
        return frame[12:14] == b"\x08\x00" and frame[23] == 112 and frame[26:30] == packed

    capture.wait_for(advert, count, timeout=count * cluster.interval * 4 + 10)


def test_advert_loss_then_one_master(steady: FaultLab) -> None:
    cluster = steady
    start = cluster.transitions()
    capture = cluster.observer.capture()
    try:
        cluster.fault(*cluster.advert_loss(30))
        adverts_from(capture, cluster.nodes[0].ip4, 15, cluster)
    finally:
        capture.close()
        cluster.heal()
    settle(cluster)
    # Whatever the loss did, nobody took over but on an expired master-down timer.
    for t in cluster.transitions()[len(start) :]:
        if t.new == "MASTER" and t.old == "BACKUP":
            assert t.cause_kind == "timer" and "master-down" in t.cause, t


def test_one_way_partition_from_the_master_is_a_logged_split_brain(steady: FaultLab) -> None:
    cluster = steady
    n1 = cluster.nodes[1]
    # Node 0's adverts no longer reach nodes 1 and 2; theirs still reach node 0.
    cluster.fault(*cluster.drop_between([0], [1, 2]))
    wait_until(lambda: cluster.masters() == {0, 1}, 30, 0.2, "node 1 to take over too")
    # Two masters on the wire: node 0 hears node 1's adverts and says so, naming it.
    wait_until(lambda: n1.ip4 in cluster.split_brains(0), 10, 0.2, "a split brain naming node 1")
    wait_until(lambda: cluster.holders() == {0, 1}, 10, 0.2, "both to hold the VIP")
    wait_until(lambda: cluster.arp_holders() == {0, 1}, 10, 0.2, "both to answer ARP")
    cluster.heal()
    settle(cluster)


def test_one_way_partition_towards_the_master_changes_nothing(steady: FaultLab) -> None:
    cluster = steady
    before = len(cluster.transitions())
    capture = cluster.observer.capture()
    try:
        # Node 0 no longer hears the backups, which still hear it: nothing to do for anyone.
        cluster.fault(*cluster.drop_between([1, 2], [0]))
        adverts_from(capture, cluster.nodes[0].ip4, 6, cluster)
    finally:
        capture.close()
    assert cluster.transitions()[before:] == []
    assert cluster.converged(0)


def test_full_partition_then_heal(steady: FaultLab) -> None:
    cluster = steady
    cluster.fault(*cluster.drop_between([0], [1, 2]), *cluster.drop_between([1, 2], [0]))
    wait_until(lambda: cluster.masters() == {0, 1}, 30, 0.2, "a master on each side")
    # The observer sees both sides: the VIP's holders on the wire are exactly the masters.
    wait_until(lambda: cluster.arp_holders() == {0, 1}, 10, 0.2, "both masters to answer ARP")
    assert cluster.holders() == {0, 1}
    cluster.heal()
    settle(cluster)


def test_flapping_link(steady: FaultLab) -> None:
    cluster = steady
    for _ in range(3):
        cluster.set_link(0, up=False)
        wait_until(lambda: cluster.masters() == {1}, 30, 0.2, "node 1 to take over")
        assert cluster.states()[0] != "MASTER"
        cluster.set_link(0, up=True)
        settle(cluster)
