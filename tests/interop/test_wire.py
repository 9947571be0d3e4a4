"""Issue #4 (4): our adverts decode with scapy exactly as configured, and keepalived takes them.

Frames are captured on keepalived's node (what it receives), so unicast adverts are seen too.
keepalived's own adverts, captured on our node while it was master, go through the same
decoder as a control: scapy and keepalived must agree on what a correct advert is.
"""

from __future__ import annotations

import ipaddress
import re

import pytest

from tests.interop.peers import VrrpFrame, decode_vrrp, vrrp_frames, wait_sole_holder
from tests.interop.variants import OURS, THEIRS, VARIANTS, Variant, keepalived, pykeepalived
from tests.lab import Lab, Node

pytestmark = [pytest.mark.netns, pytest.mark.interop]

HIGH, LOW = 150, 100
MCAST = {4: "224.0.0.18", 6: "ff02::12"}
MCAST_MAC = {4: "01:00:5e:00:00:12", 6: "33:33:00:00:00:12"}


def _source(variant: Variant, node: Node) -> str:
    """Where adverts come from: the node address (v4, unicast) or its link-local (v6)."""
    if variant.family == 4:
        return node.ip4
    lls = [
        a["address"]
        for a in node.addresses(node.ifname)
        if a["family"] == 10 and ipaddress.IPv6Address(a["address"]).is_link_local
    ]
    assert len(lls) == 1, lls
    return str(lls[0])


def _check(frame: VrrpFrame, variant: Variant, lab: Lab, sender: int, priority: int) -> None:
    me, peer = lab.node(sender), lab.node(1 - sender)
    assert frame.version == variant.version
    assert frame.vrid == 51
    assert frame.priority == priority
    assert frame.addresses == (str(ipaddress.ip_interface(variant.vip).ip),)
    assert frame.ttl == 255
    assert frame.checksum_ok, f"checksum {frame.checksum:#06x} is not what scapy computes"
    if variant.version == 2:
        assert frame.interval == variant.advert_int
        assert frame.authtype == 1
        assert frame.auth == (variant.auth_pass or "").encode().ljust(8, b"\0")
    else:
        assert frame.interval == round(variant.advert_int * 100)
    if variant.unicast:
        assert (frame.src, frame.dst) == (variant.address(me), variant.address(peer))
    else:
        assert (frame.src, frame.dst) == (_source(variant, me), MCAST[variant.family])


def _mac(raw: bytes, start: int) -> str:
    return ":".join(f"{b:02x}" for b in raw[start : start + 6])


@pytest.mark.parametrize("variant", VARIANTS)
def test_adverts_decode_with_scapy_and_keepalived_accepts_them(lab: Lab, variant: Variant) -> None:
    at_theirs, at_ours = lab.node(THEIRS).capture(), lab.node(OURS).capture()
    try:
        with keepalived(lab, variant, LOW) as ka:
            ka.wait_current("MASTER", timeout=3 * variant.master_down)
            with pykeepalived(lab, variant, HIGH) as ours:
                ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
                ka.wait_current("BACKUP", timeout=2 * variant.master_down)
                wait_sole_holder(lab, variant.vip, OURS, 5)
                mine_raw = vrrp_frames(at_theirs.wait_for(lambda f: bool(vrrp_frames([f])), 5))
                at_ours.poll(0.0)
                theirs_raw = vrrp_frames(at_ours.frames)
                src = re.escape(_source(variant, lab.node(OURS)))
                ka.wait_log(rf"Master received advert from {src} with higher priority {HIGH}", 1)
                assert ka.complaints() == []
                # And the other way round: we dropped none of keepalived's adverts.
                dropped = [ln for ln in ours.group.log_text().splitlines() if ".dropped" in ln]
                assert dropped == []
    finally:
        at_theirs.close()
        at_ours.close()

    mine = [decode_vrrp(f) for f in mine_raw]
    assert len(mine) >= 5
    for raw, frame in zip(mine_raw, mine, strict=True):
        _check(frame, variant, lab, OURS, HIGH)
        # No virtual MAC by default (keepalived's default too): the interface's own MAC.
        assert _mac(raw, 6) == lab.node(OURS).mac()
        if not variant.unicast:
            assert _mac(raw, 0) == MCAST_MAC[variant.family]
    # The control: keepalived's adverts, judged by the same rules, pass too.
    theirs = [decode_vrrp(f) for f in theirs_raw]
    assert theirs, "no advert from keepalived was captured while it was master"
    for frame in theirs:
        _check(frame, variant, lab, THEIRS, LOW)
