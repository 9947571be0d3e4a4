"""The network-fault scenarios of tests/netfaults.py with Debian's keepalived on all three
nodes: the same faults on the wire, the same checks where they can be observed (ARP holders
from the observer, the VIP in each kernel, transitions and split brains from keepalived's log,
take-overs against the master-down timer from the kernel's receive stamps).

The reference for tests/vrrpd/test_network_faults.py: what pykeepalived is held to there,
keepalived 2.2.7 does here too. bench/faults.py --daemon both prints the two side by side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import netfaults
from tests.netfaults import FaultLab
from tests.vrrpd.test_network_faults import fault_lab

pytestmark = [pytest.mark.netns, pytest.mark.interop]


@pytest.fixture(scope="module")
def keepalived_cluster() -> Iterator[FaultLab]:
    if os.geteuid() != 0:
        pytest.skip("network-namespace tests need root")
    lab = fault_lab("v3-1s", "keepalived")
    try:
        yield lab
    finally:
        lab.close()


def test_keepalived_one_way_partition_from_the_master_is_a_logged_split_brain(
    keepalived_cluster: FaultLab,
) -> None:
    out = netfaults.one_way_from_master(keepalived_cluster)
    assert out.dual_master
    assert out.split_brains_heard == 1
    assert [t.node for t in out.takeovers] == [1]


def test_keepalived_full_partition_then_heal(keepalived_cluster: FaultLab) -> None:
    out = netfaults.full_partition(keepalived_cluster)
    assert any(t.node == 1 and t.new == "MASTER" for t in out.transitions)
    assert [t.node for t in out.takeovers] == [1]
