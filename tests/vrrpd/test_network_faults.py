"""Three nodes and an observer under network faults injected on the wire (tests/netfaults.py).

Priorities 150, 120 and 100: node 0 is the master whenever it can be heard. Every scenario
(tests/netfaults.py: ``SCENARIOS``) starts from that steady state, injects a fault with
nftables on the lab's bridge (or pulls a cable), checks what the protocol says must happen
while it lasts, ends it, and waits for the steady state again: node 0 alone MASTER, alone
holding the VIP in its kernel, and alone answering the observer's ARP for it. Every scenario
also checks the protocol's timing (tests/netfaults.py, ``disturb``): no take-over before its
master-down timer expired, measured from the kernel's receive stamps of the adverts that
re-arm it, and a split brain logged for every dual-master stretch in which the higher master
heard the other. Waits poll the condition; bench/faults.py prints the times and the
dual-master windows.

CI runs VRRPv3 at 1 s; VRRPv2 at 1 s and VRRPv3 at 0.1 s are marked ``slow``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import netfaults
from tests.netfaults import FaultLab, cluster_config

pytestmark = pytest.mark.netns

PRIORITIES = (150, 120, 100)
#: (version, advert_int) per variant
VARIANTS = {"v3-1s": (3, "1"), "v2-1s": (2, "1"), "v3-0.1s": (3, "0.1")}


def fault_lab(variant: str, daemon: str = "pykeepalived") -> FaultLab:
    """A started lab of ``daemon`` nodes (tests/fault_daemons.py: ``DAEMONS``)."""
    version, interval = VARIANTS[variant]
    configs = [
        cluster_config(i, prio, version=version, interval=interval)
        for i, prio in enumerate(PRIORITIES)
    ]
    lab = FaultLab(configs, float(interval), daemon)
    try:
        for node in lab.daemons:
            node.wait_started(timeout=60)
    except BaseException:
        lab.close()
        raise
    return lab


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
    lab = fault_lab(request.param)
    try:
        yield lab
    finally:
        lab.close()


@pytest.mark.parametrize(
    "percent",
    [pytest.param(10, marks=pytest.mark.slow), 30, pytest.param(60, marks=pytest.mark.slow)],
)
def test_advert_loss_then_one_master(cluster: FaultLab, percent: int) -> None:
    netfaults.advert_loss(cluster, percent)


def test_a_burst_of_duplicated_adverts_changes_nothing(cluster: FaultLab) -> None:
    netfaults.duplicated_adverts(cluster)


def test_one_way_partition_from_the_master_is_a_logged_split_brain(cluster: FaultLab) -> None:
    out = netfaults.one_way_from_master(cluster)
    assert out.dual_master  # the split brain the logs named
    assert out.split_brains_heard == 1


def test_one_way_partition_towards_the_master_changes_nothing(cluster: FaultLab) -> None:
    netfaults.one_way_to_master(cluster)


def test_full_partition_then_heal(cluster: FaultLab) -> None:
    out = netfaults.full_partition(cluster)
    assert any(t.node == 1 and t.new == "MASTER" for t in out.transitions)


def test_flapping_link(cluster: FaultLab) -> None:
    out = netfaults.flapping_link(cluster)
    assert sum(t.node == 1 and t.new == "MASTER" for t in out.transitions) == 3
