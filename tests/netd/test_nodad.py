"""IPv6 addresses netd installs skip DAD (keepalived's ``nodad``), so a VIP is usable at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netd import Address, KernelAdapter
from tests.lab import Lab, Node

pytestmark = pytest.mark.netns


@pytest.fixture
def node(make_lab: Callable[..., Lab]) -> Node:
    node = make_lab(1).nodes[0]
    # The lab turns DAD off; this test needs it on to see that netd's addresses skip it.
    node.sysctl("net.ipv6.conf.eth0.accept_dad", "1")
    node.sysctl("net.ipv6.conf.eth0.dad_transmits", "3")
    return node


def test_ipv6_address_is_nodad_and_never_tentative_with_dad_on(
    node: Node, ka: KernelAdapter
) -> None:
    # Control: an address added without nodad goes through DAD (3 probes, about 3 s).
    node.run(["ip", "-6", "addr", "add", "2001:db8::76/64", "dev", "eth0"])
    assert ka.reconcile([Address("2001:db8::77", 64, "eth0")]).ok
    addrs = {a.ip: a for a in ka.interface_addresses()}
    assert addrs["2001:db8::76"].tentative
    assert not addrs["2001:db8::77"].tentative
    shown = node.run(["ip", "-6", "addr", "show", "dev", "eth0"]).stdout
    line = next(ln for ln in shown.splitlines() if "2001:db8::77/64" in ln)
    assert "nodad" in line and "tentative" not in line
