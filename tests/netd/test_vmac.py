"""VMAC (macvlan) lifecycle against a real kernel."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from netd.devconf import ipv6_forwarding
from netd.errors import VmacError
from netd.kernel import KernelAdapter
from netd.vmac import VmacManager, vmac_mac, vmac_name
from tests.lab import Node, wait_until

pytestmark = pytest.mark.netns


def test_names_and_macs_follow_keepalived() -> None:
    assert vmac_name(51) == "vrrp.51"
    assert vmac_name(51, socket.AF_INET6) == "vrrp6.51"
    assert vmac_mac(51) == "00:00:5e:00:01:33"
    assert vmac_mac(255, socket.AF_INET6) == "00:00:5e:00:02:ff"
    with pytest.raises(VmacError):
        vmac_mac(0)


@pytest.fixture
def mgr(node: Node) -> Iterator[VmacManager]:
    with node.inside():
        ka = KernelAdapter()
    try:
        yield VmacManager(ka)
    finally:
        ka.close()


def test_create_v4_vmac_with_keepalived_defaults(node: Node, mgr: VmacManager) -> None:
    v = mgr.ensure("eth0", 51)
    link = node.links()["vrrp.51"]
    assert link["kind"] == "macvlan" and link["mode"] == "private"
    assert link["mac"] == "00:00:5e:00:01:33" == v.mac
    assert link["link"] == node.ifindex("eth0")
    assert link["flags"] & 1  # up
    assert v.base == "eth0"


def test_v6_vmac_has_no_eui64_link_local(node: Node, mgr: VmacManager) -> None:
    v = mgr.ensure("eth0", 7, socket.AF_INET6)
    assert v.ifname == "vrrp6.7" and v.mac == "00:00:5e:00:02:07"
    # addrgenmode none: the kernel must not derive fe80::200:5eff:fe00:207 from the VMAC.
    assert not [a for a in node.addresses("vrrp6.7") if a["address"].startswith("fe80")]
    assert node.sysctl("net/ipv6/conf/vrrp6.7/disable_ipv6") == "0"


def test_ensure_is_idempotent_and_finds_existing_after_restart(
    node: Node, mgr: VmacManager
) -> None:
    first = mgr.ensure("eth0", 51, ifname="vip51", mode="bridge")
    again = mgr.ensure("eth0", 51, ifname="vip51", mode="bridge")
    assert again.index == first.index  # reused, not recreated
    with node.inside():
        ka2 = KernelAdapter()
    try:
        fresh = VmacManager(ka2)  # a restarted netd
        assert [v.ifname for v in fresh.find()] == ["vip51"]
        assert fresh.ensure("eth0", 51, ifname="vip51", mode="bridge").index == first.index
    finally:
        ka2.close()


def test_mismatched_vmac_is_recreated(node: Node, mgr: VmacManager) -> None:
    first = mgr.ensure("eth0", 51, mode="bridge")
    second = mgr.ensure("eth0", 51)  # private wanted now
    assert second.mode == "private" and node.links()["vrrp.51"]["mode"] == "private"
    assert second.index != first.index


def test_foreign_interface_with_the_name_is_not_touched(node: Node, mgr: VmacManager) -> None:
    with pytest.raises(VmacError, match="exists"):
        mgr.ensure("eth0", 1, ifname="eth0")
    with pytest.raises(VmacError):
        mgr.remove("eth0")
    assert "eth0" in node.links()


def test_remove_is_idempotent(node: Node, mgr: VmacManager) -> None:
    mgr.ensure("eth0", 51)
    assert mgr.remove("vrrp.51") is True
    assert "vrrp.51" not in node.links()
    assert mgr.remove("vrrp.51") is False


def test_missing_base_reports_enodev(mgr: VmacManager) -> None:
    with pytest.raises(VmacError) as info:
        mgr.ensure("nosuch0", 51)
    assert info.value.errno_name == "ENODEV"


def test_vmac_and_base_get_keepalived_arp_settings_restored_on_remove(
    node: Node, mgr: VmacManager
) -> None:
    base_before = (node.sysctl("net.ipv4.conf.eth0.arp_ignore"),
                   node.sysctl("net.ipv4.conf.eth0.arp_filter"))  # fmt: skip
    assert base_before == ("0", "0")
    mgr.ensure("eth0", 51)
    mgr.ensure("eth0", 52)
    conf = "net/ipv4/conf/vrrp.51/"
    assert node.sysctl(conf + "arp_ignore") == "1" and node.sysctl(conf + "accept_local") == "1"
    assert node.sysctl(conf + "rp_filter") == "0"
    assert node.sysctl(conf + "promote_secondaries") == "1"
    assert node.sysctl("net.ipv4.conf.eth0.arp_ignore") == "1"
    assert node.sysctl("net.ipv4.conf.eth0.arp_filter") == "1"
    mgr.remove("vrrp.51")
    assert node.sysctl("net.ipv4.conf.eth0.arp_ignore") == "1"  # vrrp.52 still needs it
    mgr.remove("vrrp.52")
    assert node.sysctl("net.ipv4.conf.eth0.arp_ignore") == "0"
    assert node.sysctl("net.ipv4.conf.eth0.arp_filter") == "0"


def test_restore_interfaces_at_shutdown(node: Node, mgr: VmacManager) -> None:
    mgr.ensure("eth0", 51)
    mgr.restore_interfaces()
    assert node.sysctl("net.ipv4.conf.eth0.arp_ignore") == "0"


def test_ipv6_forwarding_is_read_per_interface(node: Node, mgr: VmacManager) -> None:
    kernel = mgr._k
    assert ipv6_forwarding(kernel, "eth0") is False
    node.sysctl("net.ipv6.conf.eth0.forwarding", "1")
    assert ipv6_forwarding(kernel, "eth0") is True


def test_originals_survive_a_crash_and_are_restored_by_the_next_run(
    node: Node, tmp_path: Path
) -> None:
    with node.inside():
        first = KernelAdapter(state_dir=tmp_path)
    VmacManager(first).ensure("eth0", 51)
    first.close()  # crash: nothing restored
    assert node.sysctl("net.ipv4.conf.eth0.arp_filter") == "1"
    with node.inside():
        second = KernelAdapter(state_dir=tmp_path)
    try:
        mgr = VmacManager(second)
        mgr.ensure("eth0", 51)  # adopt the existing VMAC
        mgr.restore_interfaces()
        assert node.sysctl("net.ipv4.conf.eth0.arp_filter") == "0"  # the true original
        assert node.sysctl("net.ipv4.conf.eth0.arp_ignore") == "0"
    finally:
        second.close()


def proto_down(node: Node, ifname: str) -> bool:
    with node.ipr() as ipr:
        msg = ipr.link("get", index=ipr.link_lookup(ifname=ifname)[0])[0]
        return bool(msg.get("IFLA_PROTO_DOWN"))


def test_protodown_from_creation_and_back(node: Node, mgr: VmacManager) -> None:
    v = mgr.ensure("eth0", 51, protodown=True)
    assert v.protodown and v.up and proto_down(node, "vrrp.51")
    # Going up may hand it its base's carrier a moment later; netd answers that link event
    # by setting protodown again, which takes the carrier away: up, but sending nothing.
    wait_until(
        lambda: (v := mgr.get("vrrp.51")) is not None and v.carrier, 5, 0.05, "the base's carrier"
    )
    mgr.set_protodown("vrrp.51", True)
    wait_until(lambda: node.links()["vrrp.51"]["state"] == "DOWN", 5, 0.05, "no carrier")
    # The kernel gives it the base's carrier back when the base comes up again; setting
    # protodown again (what netd does on that link event) takes it away.
    node.run(["ip", "link", "set", "eth0", "down"])
    node.run(["ip", "link", "set", "eth0", "up"])
    wait_until(lambda: node.links()["vrrp.51"]["state"] == "UP", 5, 0.05, "carrier back")
    assert proto_down(node, "vrrp.51")
    mgr.set_protodown("vrrp.51", True)
    wait_until(lambda: node.links()["vrrp.51"]["state"] == "DOWN", 5, 0.05, "no carrier again")
    mgr.set_protodown("vrrp.51", False)
    assert not proto_down(node, "vrrp.51")
    again = mgr.ensure("eth0", 51, protodown=True)  # an existing one is reused as it is
    assert not again.protodown
    with pytest.raises(VmacError):
        mgr.set_protodown("vrrp.99", True)
