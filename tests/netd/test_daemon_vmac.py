"""use_vmac end to end: two daemon groups, the VMAC built by netd, adverts and GARPs from it."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, IPv6
from scapy.layers.l2 import ARP, Ether

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until
from tests.netd.failover import VIP, GroupAt, VipWatch, config, kill_group

pytestmark = pytest.mark.netns

VMAC = "vrrp.51"
VIRTUAL_MAC = "00:00:5e:00:01:33"  # RFC 5798 7.3, VRID 51


def is_garp_from_vmac(frame: bytes) -> bool:
    pkt = Ether(frame)
    return bool(
        pkt.type == 0x0806
        and pkt.src == VIRTUAL_MAC
        and pkt[ARP].hwsrc == VIRTUAL_MAC
        and pkt[ARP].psrc == pkt[ARP].pdst == VIP
    )


def is_advert(frame: bytes) -> bool:
    pkt = Ether(frame)
    return bool(pkt.type == 0x0800 and pkt[IP].proto == 112 and pkt[IP].dst == "224.0.0.18")


def vmac_link(lab: Lab, i: int) -> dict[str, Any] | None:
    return lab.node(i).links().get(VMAC)


def vmac_up(lab: Lab, i: int) -> dict[str, Any] | None:
    link = vmac_link(lab, i)
    return link if link is not None and link["flags"] & 1 else None


def test_use_vmac_creates_macvlan_carries_vip_garps_from_virtual_mac_and_fails_over(
    lab: Lab,
) -> None:
    n0, n1 = lab.nodes
    watched = n1.capture()
    try:
        with (
            daemon_group(n0, config(150, "n0", "    use_vmac"), "-l") as g0,
            daemon_group(n1, config(100, "n1", "    use_vmac"), "-l") as g1,
        ):
            g0.wait_started()
            g1.wait_started()
            # keepalived creates the VMAC at start on every node, whatever the state.
            for i in (0, 1):
                link = wait_until(functools.partial(vmac_up, lab, i), 20, 0.05, f"{VMAC} {i} up")
                assert link["kind"] == "macvlan" and link["mode"] == "private"
                assert link["mac"] == VIRTUAL_MAC
                assert link["link"] == lab.node(i).ifindex("eth0")
            wait_until(
                lambda: f"{VIP}/24" in n0.address_set(VMAC), 20, 0.05, "the VIP on node 0's VMAC"
            )
            assert f"{VIP}/24" not in n0.address_set("eth0")
            # Node 1 hears the adverts (which arrive with its own VMAC's source MAC): it stays
            # backup over several Master_Down_Intervals.
            with VipWatch(lab.nodes) as quiet:
                quiet.wait_sampled_until(quiet.samples[0].t + 4.0)
                assert all(s.held[0] for s in quiet.samples), "node 0 lost the VIP"
                assert not any(s.held[1] for s in quiet.samples), "node 1 became master too"
            # Node 1 hears the master's GARPs and adverts, both from the virtual MAC.
            watched.wait_for(is_garp_from_vmac, count=2, timeout=10)
            adverts = watched.wait_for(is_advert, count=2, timeout=10)
            assert {Ether(f).src for f in adverts} == {VIRTUAL_MAC}
            assert {Ether(f)[IP].src for f in adverts} == {n0.ip4}

            with VipWatch(lab.nodes) as watch:
                g0.close()  # TERM: priority 0, VIP withdrawn, VMAC deleted
                watch.wait_held(1, True, 10)
                assert f"{VIP}/24" in n1.address_set(VMAC)
                wait_until(lambda: vmac_link(lab, 0) is None, 10, 0.05, "node 0's VMAC removed")
                assert watch.longest_both() <= 0.25
            assert g1.pids()  # still running
        wait_until(lambda: vmac_link(lab, 1) is None, 10, 0.05, "node 1's VMAC removed at TERM")
        # Sysctls keepalived changes on the base interface are put back at exit.
        assert n1.sysctl("net.ipv4.conf.eth0.arp_ignore") == "0"
    finally:
        watched.close()


def test_vmac_xmit_base_sends_adverts_from_the_base_interface(lab: Lab) -> None:
    n0, n1 = lab.nodes
    watched = n1.capture()
    try:
        extra = "    use_vmac vip51\n    vmac_xmit_base"
        with daemon_group(n0, config(150, "n0", extra), "-l") as g0:
            g0.wait_started()
            wait_until(lambda: f"{VIP}/24" in n0.address_set("vip51"), 20, 0.05, "the VIP on vip51")
            adverts = watched.wait_for(is_advert, count=2, timeout=10)
            assert {Ether(f).src for f in adverts} == {n0.mac("eth0")}
            watched.wait_for(is_garp_from_vmac, count=1, timeout=10)
            assert n0.links()["vip51"]["mac"] == VIRTUAL_MAC
    finally:
        watched.close()


def test_ipv6_default_name_avoids_ipv4_vmac_of_same_vrid() -> None:
    from core import loads
    from vrrpd.plan import plan

    text = (
        config(100, "n0", "    use_vmac")
        + """
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 51
    priority 100
    use_vmac
    virtual_ipaddress {
        2001:db8::200/64
    }
}
"""
    )
    result = loads(text)
    plans = {p.name: p for p in plan(result.config)}
    assert plans["VI_1"].vmac is not None and plans["VI_6"].vmac is not None
    assert plans["VI_1"].vmac["name"] == "vrrp.51"
    assert plans["VI_6"].vmac["name"] == "vrrp6.51"
    assert plans["VI_6"].vmac["mac"] == "00:00:5e:00:02:33"
    assert plans["VI_1"].advert_interface == "vrrp.51"


def test_vmac_left_by_a_killed_group_is_reused_or_removed_at_restart(lab: Lab) -> None:
    n0 = lab.node(0)
    with daemon_group(n0, config(150, "n0", "    use_vmac"), "-l") as g0:
        g0.wait_started()
        wait_until(lambda: f"{VIP}/24" in n0.address_set(VMAC), 20, 0.05, "VIP on the VMAC")
        index = n0.links()[VMAC]["index"]
        kill_group(g0.runtime)
        assert n0.links()[VMAC]["index"] == index  # kill -9: nothing removed it
        # Same config: the VMAC is adopted as it is (same interface), the VIP stays on it.
        with GroupAt(n0, g0.runtime, config(150, "n0", "    use_vmac")) as again:
            again.wait_started()
            wait_until(lambda: "netd.leftover.grace_ended" in again.log_text(), 20, 0.05, "grace")
            wait_until(lambda: f"{VIP}/24" in n0.address_set(VMAC), 20, 0.05, "VIP on the VMAC")
            assert n0.links()[VMAC]["index"] == index
            kill_group(g0.runtime)
        # Without use_vmac: the leftover VMAC goes once the grace ends; the VIP is on eth0.
        with GroupAt(n0, g0.runtime, config(150, "n0")) as plain:
            plain.wait_started()
            wait_until(lambda: vmac_link(lab, 0) is None, 20, 0.05, "the leftover VMAC removed")
            wait_until(lambda: f"{VIP}/24" in n0.address_set("eth0"), 20, 0.05, "VIP on eth0")


VIP6 = "2001:db8::200"
VIRTUAL_MAC6 = "00:00:5e:00:02:33"


def is_na_from_vmac(frame: bytes) -> bool:
    pkt = Ether(frame)
    return bool(
        pkt.src == VIRTUAL_MAC6
        and ICMPv6ND_NA in pkt
        and pkt[ICMPv6ND_NA].tgt == VIP6
        and pkt[ICMPv6ND_NA].O == 1
    )


def is_advert6(frame: bytes) -> bool:
    pkt = Ether(frame)
    return bool(IPv6 in pkt and pkt[IPv6].nh == 112 and pkt[IPv6].dst == "ff02::12")


def test_ipv6_vmac_gets_base_link_local_vip_and_unsolicited_na(lab: Lab) -> None:
    n0, n1 = lab.nodes
    vip = f"{VIP6}/64"
    watched = n1.capture()
    try:
        with (
            daemon_group(n0, config(150, "n0", "    use_vmac", vip), "-l") as g0,
            daemon_group(n1, config(100, "n1", "    use_vmac", vip), "-l") as g1,
        ):
            g0.wait_started()
            g1.wait_started()
            for i in (0, 1):
                link = wait_until(functools.partial(vmac_up, lab, i), 20, 0.05, f"{VMAC} {i} up")
                assert link["mac"] == VIRTUAL_MAC6
            wait_until(lambda: vip in n0.address_set(VMAC), 20, 0.05, "the VIP on the VMAC")
            base_ll = {a for a in n0.address_set("eth0") if a.startswith("fe80:")}
            # The base's link-local (the adverts' source), none derived from the virtual MAC.
            assert {a for a in n0.address_set(VMAC) if a.startswith("fe80:")} == base_ll
            with VipWatch(lab.nodes, ip=VIP6) as quiet:
                quiet.wait_sampled_until(quiet.samples[0].t + 4.0)
                assert all(s.held[0] for s in quiet.samples), "node 0 lost the VIP"
                assert not any(s.held[1] for s in quiet.samples), "node 1 became master too"
            watched.wait_for(is_na_from_vmac, count=1, timeout=10)
            adverts = watched.wait_for(is_advert6, count=2, timeout=10)
            assert {Ether(f).src for f in adverts} == {VIRTUAL_MAC6}
            with VipWatch(lab.nodes, ip=VIP6) as watch:
                g0.close()
                watch.wait_held(1, True, 10)
                assert vip in n1.address_set(VMAC)
            assert g1.pids()
    finally:
        watched.close()
