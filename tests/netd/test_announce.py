"""GARP / NA: frame format, the pure pacing scheduler, and real frames on a lab segment."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from netd.announce import (
    AnnounceScheduler,
    FrameCache,
    FrameSender,
    GarpTiming,
    Target,
    build_garp,
    build_unsolicited_na,
)
from netd.errors import AnnounceError
from netd.kernel import KernelAdapter
from netd.vmac import VmacManager
from tests.lab import Lab

MAC = "02:00:00:00:00:01"


def test_garp_matches_keepalived_format() -> None:
    pkt = Ether(build_garp("192.0.2.100", MAC))
    assert pkt.dst == "ff:ff:ff:ff:ff:ff" and pkt.src == MAC and pkt.type == 0x0806
    arp = pkt[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)
    assert arp.hwsrc == MAC and arp.hwdst == "ff:ff:ff:ff:ff:ff"
    assert arp.psrc == arp.pdst == "192.0.2.100"


@pytest.mark.parametrize("router", [False, True])
def test_unsolicited_na_matches_keepalived_format(router: bool) -> None:
    raw = build_unsolicited_na("2001:db8::100", MAC, router=router)
    pkt = Ether(raw)
    assert pkt.dst == "33:33:00:00:00:01" and pkt.src == MAC
    ip6 = pkt[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim) == ("2001:db8::100", "ff02::1", 255)
    na = pkt[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O) == (136, 0, int(router), 0, 1)
    assert na.tgt == "2001:db8::100"
    opt = pkt[ICMPv6NDOptDstLLAddr]
    assert (opt.type, opt.len, opt.lladdr) == (2, 1, MAC)
    # The checksum on the wire is the one a receiver recomputes (pseudo-header included).
    sent_cksum = na.cksum
    del na.cksum
    assert Ether(bytes(pkt))[ICMPv6ND_NA].cksum == sent_cksum


_macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@given(vip=st.ip_addresses(v=4).map(str), mac=_macs)
def test_garp_is_byte_for_byte_scapys(vip: str, mac: str) -> None:
    # scapy is the reference codec: netd packs the frame itself to keep scapy out of memory.
    reference = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac, type=0x0806) / ARP(
        op=1, hwsrc=mac, psrc=vip, hwdst="ff:ff:ff:ff:ff:ff", pdst=vip
    )
    assert build_garp(vip, mac) == bytes(reference)


@given(vip=st.ip_addresses(v=6).map(str), mac=_macs, router=st.booleans())
def test_unsolicited_na_is_byte_for_byte_scapys(vip: str, mac: str, router: bool) -> None:
    reference = (
        Ether(dst="33:33:00:00:00:01", src=mac)
        / IPv6(src=vip, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(R=int(router), S=0, O=1, tgt=vip)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )
    assert build_unsolicited_na(vip, mac, router) == bytes(reference)


@pytest.mark.parametrize(
    ("build", "vip", "mac"),
    [
        (build_garp, "2001:db8::1", MAC),
        (build_garp, "192.0.2.1", "02:00:00:00:01"),
        (build_unsolicited_na, "192.0.2.1", MAC),
        (build_unsolicited_na, "2001:db8::1", "zz:00:00:00:00:01"),
    ],
)
def test_a_frame_that_cannot_be_built_is_an_announce_error(
    build: Callable[[str, str], bytes], vip: str, mac: str
) -> None:
    with pytest.raises(AnnounceError):
        build(vip, mac)


def _targets(n: int, ifname: str = "eth0") -> list[Target]:
    return [Target(ifname, f"192.0.2.{100 + i}", MAC) for i in range(n)]


def test_default_timing_is_five_now_and_five_after_five_seconds() -> None:
    sched = AnnounceScheduler()
    vips = _targets(2)
    sched.become_master("VI_1", 100.0, vips)
    first = sched.due(100.0)
    assert len(first) == 10 and {p.at for p in first} == {100.0}
    # Interleaved: every VIP's first copy before any second copy.
    assert [p.target.ip for p in first[:2]] == ["192.0.2.100", "192.0.2.101"]
    assert sched.next_due() == 105.0
    assert sched.due(104.999) == []
    second = sched.due(105.0)
    assert len(second) == 10
    assert sched.next_due() is None


def test_frames_are_built_once_per_vip() -> None:
    cache = FrameCache()
    sched = AnnounceScheduler(frames=cache)
    sched.become_master("VI_1", 0.0, _targets(3))
    frames = sched.due(0.0) + sched.due(5.0)
    assert len(frames) == 30 and len(cache) == 3
    assert {id(p.frame) for p in frames if p.target.ip == "192.0.2.100"}.__len__() == 1


def test_interval_paces_per_interface_and_family() -> None:
    timing = GarpTiming(master_repeat=2, master_delay=0, garp_interval=0.01, gna_interval=0.5)
    sched = AnnounceScheduler(timing)
    v4 = _targets(3)
    v6 = [Target("eth0", "2001:db8::100", MAC)]
    other_if = [Target("eth1", "192.0.2.200", MAC)]
    sched.become_master("VI_1", 0.0, v4 + v6 + other_if)
    sent = []
    now = 0.0
    while (t := sched.next_due()) is not None:
        now = t
        sent += sched.due(now)
    eth0_v4 = [p.at for p in sent if p.target.ifname == "eth0" and ":" not in p.target.ip]
    assert eth0_v4 == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    assert [p.at for p in sent if ":" in p.target.ip] == pytest.approx([0.0, 0.5])
    # eth1 is paced on its own: its first frame does not wait for eth0's.
    assert [p.at for p in sent if p.target.ifname == "eth1"] == pytest.approx([0.0, 0.01])


def test_refresh_every_period_after_delay_plus_refresh() -> None:
    timing = GarpTiming(master_repeat=1, master_delay=2.0, master_refresh=10.0)
    sched = AnnounceScheduler(timing)
    sched.become_master("VI_1", 0.0, _targets(1))
    times = []
    while (t := sched.next_due()) is not None and t < 40:
        times += [p.at for p in sched.due(t)]
    assert times == [0.0, 2.0, 12.0, 22.0, 32.0]


def test_stop_cancels_pending_and_refresh() -> None:
    sched = AnnounceScheduler(GarpTiming(master_refresh=3.0))
    sched.become_master("VI_1", 0.0, _targets(2))
    sched.become_master("VI_2", 0.0, _targets(1, "eth1"))
    sched.due(0.0)
    sched.stop("VI_1")
    assert sched.pending("VI_1") == 0 and sched.pending("VI_2") == 5
    assert all(p.owner == "VI_2" for p in sched.due(100.0))


def test_min_garp_sends_one_per_vip() -> None:
    sched = AnnounceScheduler(GarpTiming.min_garp())
    sched.become_master("VI_1", 0.0, _targets(4))
    assert len(sched.due(0.0)) == 4 and sched.next_due() is None


def test_lower_priority_advert_repeats_the_bursts() -> None:
    sched = AnnounceScheduler(GarpTiming(lower_prio_repeat=1, lower_prio_delay=0))
    sched.lower_priority_advert("VI_1", 7.0, _targets(3))
    assert len(sched.due(7.0)) == 3 and sched.next_due() is None


@given(
    n=st.integers(1, 60),
    repeat=st.integers(1, 5),
    interval=st.sampled_from([0.0, 0.001, 0.02]),
)
def test_paced_burst_never_violates_the_gap(n: int, repeat: int, interval: float) -> None:
    sched = AnnounceScheduler(
        GarpTiming(master_repeat=repeat, master_delay=0, garp_interval=interval)
    )
    sched.become_master("VI_1", 0.0, _targets(n))
    sent = []
    while (t := sched.next_due()) is not None:
        sent += sched.due(t)
    assert len(sent) == n * repeat
    times = [p.at for p in sent]
    assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(times))
    firsts = [i for i, p in enumerate(sent) if p.target.ip == _targets(n)[-1].ip]
    assert firsts[0] == n - 1  # each VIP's first copy precedes every repeat


def _is_garp_for(ip: str) -> Callable[[bytes], bool]:
    def pred(frame: bytes) -> bool:
        pkt = Ether(frame)
        return ARP in pkt and pkt[ARP].op == 1 and pkt[ARP].psrc == ip and pkt[ARP].pdst == ip

    return pred


def _is_na_for(ip: str) -> Callable[[bytes], bool]:
    def pred(frame: bytes) -> bool:
        pkt = Ether(frame)
        return ICMPv6ND_NA in pkt and pkt[ICMPv6ND_NA].tgt == ip and pkt[IPv6].src == ip

    return pred


@pytest.mark.netns
def test_burst_is_captured_on_the_segment_with_right_count_and_format(lab: Lab) -> None:
    sender_node, listener = lab.nodes
    mac = sender_node.mac()
    targets = [
        Target("eth0", "192.0.2.100", mac),
        Target("eth0", "192.0.2.101", mac),
        Target("eth0", "2001:db8::100", mac),
    ]
    sched = AnnounceScheduler(GarpTiming(master_repeat=3, master_delay=0.2, garp_interval=0.001))
    cap = listener.capture()
    with sender_node.inside():
        # Opened inside the node's namespace: the frames can only leave on the lab segment.
        sender = FrameSender(["eth0"])
    try:
        sched.become_master("VI_1", 0.0, targets)
        now = 0.0
        while (t := sched.next_due()) is not None:
            now = t
            sender.send_planned(sched.due(now))
        assert sender.sent == 18
        garps = cap.wait_for(_is_garp_for("192.0.2.100"), count=6)
        cap.wait_for(_is_garp_for("192.0.2.101"), count=6)
        nas = cap.wait_for(_is_na_for("2001:db8::100"), count=6)
        cap.poll(0.2)  # anything extra would show up now
        assert len(cap.matching(_is_garp_for("192.0.2.100"))) == 6
        assert len(cap.matching(_is_na_for("2001:db8::100"))) == 6
        assert Ether(garps[0]).src == mac and Ether(garps[0])[ARP].hwsrc == mac
        assert Ether(nas[0])[ICMPv6NDOptDstLLAddr].lladdr == mac
    finally:
        sender.close()
        cap.close()


@pytest.mark.netns
def test_garp_from_vmac_carries_the_virtual_mac(lab: Lab) -> None:
    sender_node, listener = lab.nodes
    with sender_node.inside():
        ka = KernelAdapter()
        vmac = VmacManager(ka).ensure("eth0", 51)
        sender = FrameSender([vmac.ifname])
    cap = listener.capture()
    try:
        assert vmac.mac == "00:00:5e:00:01:33"
        sender.send(vmac.ifname, build_garp("192.0.2.100", vmac.mac))
        (frame,) = cap.wait_for(_is_garp_for("192.0.2.100"))
        pkt = Ether(frame)
        assert pkt.src == "00:00:5e:00:01:33" and pkt[ARP].hwsrc == "00:00:5e:00:01:33"
    finally:
        sender.close()
        ka.close()
        cap.close()


def test_target_family() -> None:
    assert Target("eth0", "2001:db8::1", MAC).family == socket.AF_INET6
    assert Target("eth0", "192.0.2.1", MAC).family == socket.AF_INET


def test_garp_group_interval_overrides_the_global_one_on_its_interfaces() -> None:
    sched = AnnounceScheduler(GarpTiming(garp_interval=0.0))
    sched.per_interface = {"eth1": (0.5, None)}
    eth0 = [Target("eth0", f"192.0.2.{i}", "02:00:00:00:00:01") for i in (1, 2)]
    eth1 = [Target("eth1", f"198.51.100.{i}", "02:00:00:00:00:02") for i in (1, 2)]
    sched.burst("VI_1", 10.0, [*eth0, *eth1], 1)
    due = sched.due(10.0)
    # eth0 is unpaced (global 0): both now; eth1 paced by its group: one now, one 0.5 s later.
    assert sorted(p.target.ip for p in due) == ["192.0.2.1", "192.0.2.2", "198.51.100.1"]
    assert sched.next_due() == 10.5
    assert [p.target.ip for p in sched.due(10.5)] == ["198.51.100.2"]
