"""Issue #4: wire compatibility with FRRouting's vrrpd (Debian's frr 8.4), VRRPv3, 1 s adverts.

Node 0 runs pykeepalived (its keepalived.conf from :mod:`tests.interop.variants`), node 1 runs
FRR's zebra + vrrpd (:class:`tests.interop.frr.FrrPeer`) with the VIP on the macvlans FRR
needs. FRR "holds" the VIP when its macvlan is out of protodown.

* Whichever side has the higher priority wins, and the other side stays Backup past its own
  Master_Down_Interval (so it really takes the winner's adverts).
* Either master stopping moves the VIP: our orderly stop (priority 0) and FRR's SIGTERM
  (priority 0) within the skew time, FRR's vrrpd killed -9 after our Master_Down_Interval.
* Our adverts pass FRR's checks with ``debug vrrp`` on (no "Datagram invalid", counted in
  its adverRx); FRR's adverts decode with scapy as configured and none is dropped by us.

FRR 8.4 has no ``checksum-with-ipv4-pseudoheader`` command ("No such command"; PR #12390 added
it later): it always sums the IPv4 pseudo-header and refuses the RFC 9568 message-only form
("Bad VRRP checksum"), so an instance with ``v3_checksum_as_v2`` does not talk to it.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.interop.frr import FRR_VRRPD, FrrPeer, frr_vmac, frr_vmac_name
from tests.interop.peers import VrrpFrame, decode_vrrp, vrrp_frames
from tests.interop.variants import OURS, THEIRS, Ours, Variant, pykeepalived
from tests.lab import Capture, Lab, Node, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop]

# tests/interop/conftest.py skips this module on this binary, not on keepalived's.
PEER_BINARY = FRR_VRRPD
PEER_INSTALL = "apt-get install frr (make deps installs it without starting its services)"

HIGH, LOW = 150, 100
SLACK = 1.0  # Python start-up, vtysh round trips and log polling on a loaded CI box
MCAST = {4: "224.0.0.18", 6: "ff02::12"}
VMAC = {4: frr_vmac_name(51, 4), 6: frr_vmac_name(51, 6)}  # the macvlans FrrPeer makes

V4 = Variant("frr-v3-ipv4", 3, 4, "192.0.2.100/24", 1)
V6 = Variant("frr-v3-ipv6", 3, 6, "2001:db8::100/64", 1)
FAMILIES = [pytest.param(V4, id="v3-ipv4"), pytest.param(V6, id="v3-ipv6")]


def _skew(variant: Variant, priority: int) -> float:
    return (256 - priority) / 256 * variant.advert_int


def _mdi(variant: Variant, priority: int) -> float:
    return 3 * variant.advert_int + _skew(variant, priority)


def _frr(lab: Lab, variant: Variant, priority: int) -> FrrPeer:
    return FrrPeer(
        lab.node(THEIRS),
        vips=(variant.vip,),
        priority=priority,
        advert_ms=round(variant.advert_int * 1000),
    )


def _holders(lab: Lab, variant: Variant, frr: FrrPeer) -> set[int]:
    """Who serves the VIP: our node if its kernel has it, FRR's if its macvlan is up."""
    held = {OURS} if variant.vip in lab.node(OURS).address_set() else set()
    return held | ({THEIRS} if frr.holds_vip(variant.family) else set())


def _wait_holder(lab: Lab, variant: Variant, frr: FrrPeer, index: int, timeout: float) -> None:
    wait_until(
        lambda: _holders(lab, variant, frr) == {index},
        timeout,
        0.02,
        f"{variant.vip} served by node {index} alone (now {_holders(lab, variant, frr)})",
    )


def _stays(lab: Lab, variant: Variant, frr: FrrPeer, index: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert _holders(lab, variant, frr) == {index}
        time.sleep(0.1)


def _link_local(node: Node, ifname: str) -> str:
    lls = [
        str(a["address"])
        for a in node.addresses(ifname, family=10)
        if ipaddress.IPv6Address(a["address"]).is_link_local
    ]
    assert len(lls) == 1, lls
    return lls[0]


def _check(frame: VrrpFrame, variant: Variant, src: str, priority: int) -> None:
    assert frame.version == 3
    assert frame.vrid == 51
    assert frame.priority == priority
    assert frame.addresses == (str(ipaddress.ip_interface(variant.vip).ip),)
    assert frame.ttl == 255
    assert frame.interval == round(variant.advert_int * 100)
    assert frame.checksum_ok, f"checksum {frame.checksum:#06x} is not what scapy computes"
    assert (frame.src, frame.dst) == (src, MCAST[variant.family])


def _mac(raw: bytes, start: int) -> str:
    return ":".join(f"{b:02x}" for b in raw[start : start + 6])


def _dropped(log: str) -> list[str]:
    """Our log lines for a refused advert, or for one accepted with a remark. The one remark
    FRR earns is for IPv6: its first address is the global VIP, not a link-local (RFC 9568
    erratum 8300, which FRR and keepalived do not follow either), and it must not be a drop."""
    return [
        ln
        for ln in log.splitlines()
        if "vrrpd.advert.dropped" in ln
        or ("vrrpd.advert.mismatch" in ln and "reason=link_local" not in ln)
    ]


@pytest.fixture
def captures(lab: Lab) -> Iterator[tuple[Capture, Capture]]:
    """(at ours, at theirs): every frame each node's eth0 receives."""
    at_ours, at_theirs = lab.node(OURS).capture(), lab.node(THEIRS).capture()
    try:
        yield at_ours, at_theirs
    finally:
        at_ours.close()
        at_theirs.close()


@pytest.mark.parametrize("variant", FAMILIES)
def test_we_win_against_frr_our_adverts_pass_its_checks_and_theirs_ours(
    lab: Lab, variant: Variant, captures: tuple[Capture, Capture]
) -> None:
    at_ours, at_theirs = captures
    fam = variant.family
    with _frr(lab, variant, LOW) as frr:
        frr.wait_status("Master", fam, _mdi(variant, LOW) + 5)
        _wait_holder(lab, variant, frr, THEIRS, 5)
        with pykeepalived(lab, variant, HIGH) as ours:
            mark = frr.mark()
            ours.watch.wait_state("MASTER", 15 + _mdi(variant, HIGH))
            src = lab.node(OURS).ip4 if fam == 4 else _link_local(lab.node(OURS), "eth0")
            frr.wait_log(
                rf"Received advertisement from {src} w/ priority {HIGH}; switching to Backup",
                5,
                mark,
            )
            frr.wait_status("Backup", fam, 5)
            _wait_holder(lab, variant, frr, OURS, 5)
            rx = frr.stats(fam)["adverRx"]
            # Past FRR's Master_Down_Interval: it would have taken over had it ignored us.
            _stays(lab, variant, frr, OURS, _mdi(variant, LOW) + variant.advert_int)
            assert frr.status(fam) == "Backup"
            assert frr.stats(fam)["adverRx"] >= rx + 3
            assert frr.complaints() == []
            # We heard FRR's adverts (and preempted it as a lower priority), dropping none.
            frr_src = lab.node(THEIRS).ip4 if fam == 4 else _link_local(lab.node(THEIRS), VMAC[fam])
            log = ours.group.log_text()
            assert f"received lower priority ({LOW}) advert from {frr_src}" in log
            assert _dropped(log) == []

            # Our orderly stop sends priority 0: FRR takes over within its skew time.
            mark = frr.mark()
            t0 = time.monotonic()
            os.kill(ours.group.pids()["watchdog"], signal.SIGKILL)
            frr.wait_status("Master", fam, _skew(variant, LOW) + SLACK)
            assert time.monotonic() - t0 < _skew(variant, LOW) + SLACK
            _wait_holder(lab, variant, frr, THEIRS, 5)
        assert frr.complaints() == []

    at_theirs.poll(0.0)
    at_ours.poll(0.0)
    mine_raw, theirs_raw = vrrp_frames(at_theirs.frames), vrrp_frames(at_ours.frames)
    mine = [(raw, decode_vrrp(raw)) for raw in mine_raw]
    ours_src = lab.node(OURS).ip4 if fam == 4 else _link_local(lab.node(OURS), "eth0")
    mine_high = [(raw, f) for raw, f in mine if f.priority == HIGH]
    assert len(mine_high) >= 3
    for raw, frame in mine_high:
        _check(frame, variant, ours_src, HIGH)
        assert _mac(raw, 6) == lab.node(OURS).mac()
    assert any(f.priority == 0 for _, f in mine), "no priority-0 advert on our stop"
    # FRR's adverts: from the virtual MAC, and from the base's address (v4) or the macvlan's
    # link-local (v6), as the reference notes say.
    vmac = frr_vmac(51, fam)
    frr_frames = [(raw, decode_vrrp(raw)) for raw in theirs_raw]
    assert len(frr_frames) >= 3
    for raw, frame in frr_frames:
        _check(frame, variant, frr_src, LOW)
        assert _mac(raw, 6) == vmac


@pytest.mark.parametrize("variant", FAMILIES)
def test_frr_with_higher_priority_wins_and_its_kill_moves_the_vip(
    lab: Lab, variant: Variant
) -> None:
    fam = variant.family
    # FRR first: over IPv6 its first advert waits for its VMAC's link-local address (DAD), and
    # a pykeepalived started beside it may rightly time out first and take over meanwhile.
    with _frr(lab, variant, HIGH) as frr:
        frr.wait_status("Master", fam, _mdi(variant, HIGH) + 10)
        _wait_holder(lab, variant, frr, THEIRS, 5)
        with pykeepalived(lab, variant, LOW) as ours:
            _joins_as_backup_and_takes_over_when_frr_dies(lab, variant, frr, ours)


def _joins_as_backup_and_takes_over_when_frr_dies(
    lab: Lab, variant: Variant, frr: FrrPeer, ours: Ours
) -> None:
    ours.watch.wait_state("BACKUP", 15)
    # Past our Master_Down_Interval: we would have taken over had we ignored FRR.
    _stays(lab, variant, frr, THEIRS, _mdi(variant, LOW) + variant.advert_int)
    assert "MASTER" not in ours.watch.states()
    assert _dropped(ours.group.log_text()) == []

    t0 = time.time()
    frr.stop_vrrpd(signal.SIGKILL)  # silence: no priority 0, the macvlan stays up
    master = ours.watch.wait_state("MASTER", _mdi(variant, LOW) + SLACK + 2)
    took = master["_ts"] - t0
    assert _mdi(variant, LOW) - variant.advert_int <= took <= _mdi(variant, LOW) + SLACK
    wait_until(lambda: OURS in _holders(lab, variant, frr), 5, message="the VIP on our node")


def test_frr_sigterm_sends_priority_zero_and_we_take_over_within_skew(lab: Lab) -> None:
    variant = V4
    with _frr(lab, variant, HIGH) as frr, pykeepalived(lab, variant, LOW) as ours:
        frr.wait_status("Master", 4, _mdi(variant, HIGH) + 10)
        ours.watch.wait_state("BACKUP", 15)
        _wait_holder(lab, variant, frr, THEIRS, 5)
        t0 = time.time()
        frr.stop_vrrpd(signal.SIGTERM)
        master = ours.watch.wait_state("MASTER", _mdi(variant, LOW) + SLACK)
        took = master["_ts"] - t0
        assert took < _skew(variant, LOW) + SLACK, f"takeover took {took:.2f}s"
        # FRR put its macvlan in protodown on the way out: the VIP is ours alone.
        _wait_holder(lab, variant, frr, OURS, 5)
        assert "MASTER" not in ours.watch.states()[:-1]
