"""use_vmac_addr, garp_extra_if and protodown end to end: two daemon groups on one segment,
the kernels read back with pyroute2 and the frames captured on the peer."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA
from scapy.layers.l2 import ARP, Ether

from tests.daemon import daemon_group
from tests.lab import Capture, Lab, Node, wait_until
from tests.netd.failover import VIP, VipWatch, config

pytestmark = pytest.mark.netns

OWN = "vrrp.51"  # use_vmac: the instance's own VMAC (IPv4)
ADDR6 = "vrrp6.51"  # use_vmac_addr: the IPv6 eVIP on eth0 (other family) gets its own VMAC
MAC4 = "00:00:5e:00:01:33"
MAC6 = "00:00:5e:00:02:33"
EVIP6 = "2001:db8::200"
EXTRA_EVERY = 1.0

EXTRA = f"""    use_vmac
    use_vmac_addr
    garp_extra_if {EXTRA_EVERY:g}
    garp_master_delay 0
    garp_master_repeat 1
    virtual_ipaddress_excluded {{
        {EVIP6}/64
    }}"""


def vmac_state(node: Node, ifname: str) -> dict[str, Any] | None:
    """name, kind, mode, MAC, parent and IFLA_PROTO_DOWN as the kernel reports them."""
    with node.ipr() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if not index:
            return None
        msg = ipr.link("get", index=index[0])[0]
        return {
            "kind": msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
            "mode": msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_MACVLAN_MODE"),
            "mac": msg.get("IFLA_ADDRESS"),
            "link": msg.get("IFLA_LINK"),
            "protodown": bool(msg.get("IFLA_PROTO_DOWN")),
            "up": bool(msg["flags"] & 1),
        }


def protodown(node: Node, ifname: str) -> bool:
    state = vmac_state(node, ifname)
    assert state is not None, f"{ifname} missing"
    return bool(state["protodown"])


def no_carrier(node: Node, *names: str) -> bool:
    links = node.links()
    return all(links[name]["state"] == "DOWN" for name in names)


def arrivals(
    cap: Capture, predicate: Callable[[bytes], bool], count: int, timeout: float
) -> list[float]:
    """When each of the next ``count`` matching frames arrived (to about 10 ms)."""
    deadline = time.monotonic() + timeout
    stamps: list[float] = []
    while len(stamps) < count:
        assert time.monotonic() < deadline, f"only {len(stamps)} of {count} frames arrived"
        stamps += [time.monotonic() for f in cap.poll(0.01) if predicate(f)]
    return stamps


def is_extra_na(frame: bytes) -> bool:
    pkt = Ether(frame)
    return bool(pkt.src == MAC6 and ICMPv6ND_NA in pkt and pkt[ICMPv6ND_NA].tgt == EVIP6)


def is_vip_garp(frame: bytes) -> bool:
    pkt = Ether(frame)
    return bool(pkt.type == 0x0806 and pkt.src == MAC4 and pkt[ARP].psrc == VIP)


def test_addr_vmac_extra_if_announcements_and_protodown_follow_the_master(lab: Lab) -> None:
    n0, n1 = lab.nodes
    watched = n1.capture()
    try:
        with (
            daemon_group(n0, config(150, "n0", EXTRA), "-l") as g0,
            daemon_group(n1, config(100, "n1", EXTRA), "-l") as g1,
        ):
            g0.wait_started()
            g1.wait_started()
            wait_until(lambda: f"{VIP}/24" in n0.address_set(OWN), 20, 0.05, "VIP on n0's VMAC")
            wait_until(lambda: f"{EVIP6}/64" in n0.address_set(ADDR6), 20, 0.05, "eVIP on n0")
            for node in (n0, n1):
                eth0 = node.ifindex("eth0")
                own = wait_until(functools.partial(vmac_state, node, OWN), 20, 0.05, OWN)
                addr = wait_until(functools.partial(vmac_state, node, ADDR6), 20, 0.05, ADDR6)
                assert (own["kind"], own["mode"], own["mac"], own["link"]) == (
                    "macvlan",
                    "private",
                    MAC4,
                    eth0,
                )
                assert (addr["kind"], addr["mode"], addr["mac"], addr["link"]) == (
                    "macvlan",
                    "private",
                    MAC6,
                    eth0,
                )
            # The master's VMACs carry traffic. The backup's use_vmac_addr VMAC is up but
            # protocol-down (no carrier); its own VMAC, which the adverts leave from, is not
            # (by default: see test_protodown_all_keeps_the_advert_vmac_down_too).
            wait_until(
                lambda: protodown(n1, ADDR6) and no_carrier(n1, ADDR6), 10, 0.05, "n1 protodown"
            )
            assert (vmac_state(n1, ADDR6) or {}).get("up")
            assert not protodown(n1, OWN)
            assert not protodown(n0, OWN)
            assert not protodown(n0, ADDR6)
            assert f"{VIP}/24" not in n1.address_set(OWN)
            with VipWatch(lab.nodes) as quiet:
                quiet.wait_sampled_until(quiet.samples[0].t + 3.0)
                assert not any(s.held[1] for s in quiet.samples), "n1 became master too"

            # garp_extra_if: one NA a second for the eVIP from the other VMAC; none extra for
            # the VIP on the instance's own VMAC (its adverts keep the switch's table fresh).
            watched.poll(0.0)  # what queued up meanwhile carries no useful arrival time
            first_garps = len(watched.matching(is_vip_garp))
            stamps = arrivals(watched, is_extra_na, count=5, timeout=10)
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            print(
                f"\ngarp_extra_if {EXTRA_EVERY:g}s: gaps between NAs {[f'{g:.3f}' for g in gaps]}"
            )
            assert all(EXTRA_EVERY * 0.8 <= g <= EXTRA_EVERY * 1.3 for g in gaps), gaps
            assert len(watched.matching(is_vip_garp)) == first_garps

            with VipWatch(lab.nodes) as watch:
                g0.close()
                watch.wait_held(1, True, 10)
                assert not protodown(n1, OWN)
                assert not protodown(n1, ADDR6)
                wait_until(lambda: vmac_state(n0, OWN) is None, 10, 0.05, "n0's VMACs removed")
                assert vmac_state(n0, ADDR6) is None
            wait_until(lambda: f"{EVIP6}/64" in n1.address_set(ADDR6), 10, 0.05, "eVIP on n1")
            assert g1.pids()
    finally:
        watched.close()


def test_protodown_all_keeps_the_advert_vmac_down_too(lab: Lab) -> None:
    """PYKEEPALIVED_VMAC_PROTODOWN=all: the backup's own VMAC (adverts, IGMP joins) sends
    nothing either, and still hears the master's adverts through it."""
    n0, n1 = lab.nodes
    env = {"PYKEEPALIVED_VMAC_PROTODOWN": "all"}
    with daemon_group(n0, config(150, "n0", "    use_vmac"), "-l", env=env) as g0:
        g0.wait_started()
        wait_until(lambda: f"{VIP}/24" in n0.address_set(OWN), 20, 0.05, "VIP on n0's VMAC")
        assert not protodown(n0, OWN)
        # n1 joins an established master. (A new MASTER's first advert may leave before
        # netd lifts protodown, which is why this is not the default: two nodes starting
        # together can both hold the VIP for a moment.)
        with daemon_group(n1, config(100, "n1", "    use_vmac"), "-l", env=env) as g1:
            g1.wait_started()
            wait_until(lambda: protodown(n1, OWN) and no_carrier(n1, OWN), 20, 0.05, "n1 protodown")
            with VipWatch(lab.nodes) as quiet:
                quiet.wait_sampled_until(quiet.samples[0].t + 3.0)
                assert all(s.held[0] for s in quiet.samples), "n0 lost the VIP"
                assert not any(s.held[1] for s in quiet.samples), "n1 became master too"
            assert "new=MASTER" not in g1.log_text()
            assert protodown(n1, OWN)
            with VipWatch(lab.nodes) as watch:
                g0.close()
                watch.wait_held(1, True, 10)
                assert not protodown(n1, OWN)
            assert g1.pids()
