"""``old_unicast_checksum``: receive, auto-switch and send, against packets scapy builds.

scapy puts the IP destination it is given into the VRRPv3 pseudo-header, so a keepalived
<= 1.3.6 unicast advert is scapy's bytes for destination 224.0.0.18 sent to the peer instead.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
import structlog
from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRPv3

from tests.vrrpd.fakes import Wire
from tests.vrrpd.fakes import runner_for as fake_runner
from vrrpd.packet import MCAST_V4, Advert, ChecksumForm, encode
from vrrpd.runner import Runner
from vrrpd.sockets import Datagram
from vrrpd.unicast_checksum import UnicastChecksum
from vrrpd.validate import Accepted, Drop, DropReason, Expectations, IpFacts, validate

PEER = IPv4Address("192.0.2.12")
ME = IPv4Address("192.0.2.11")
VIP = IPv4Address("192.0.2.100")
EXPECT = Expectations(vrid=51, addresses=(VIP,), unicast=True, unicast_peers=frozenset({PEER}))
FROM_PEER = IpFacts(src=PEER, dst=ME, ttl=255)


def scapy_v3(src: IPv4Address, pseudo_dst: IPv4Address, priority: int = 100) -> bytes:
    """A v3 advert whose checksum scapy computed over a pseudo-header naming ``pseudo_dst``."""
    layer = VRRPv3(vrid=51, priority=priority, adv=100, addrlist=[str(VIP)])
    return bytes(IP(src=str(src), dst=str(pseudo_dst)) / layer)[20:]


def receive(policy: UnicastChecksum, payload: bytes) -> Accepted | Drop:
    return validate(payload, FROM_PEER, replace(EXPECT, checksum_forms=policy.rx_forms))


def test_auto_accepts_an_old_peer_and_switches_once_to_its_form() -> None:
    policy = UnicastChecksum("auto", unicast=True)
    before = policy.tx_form
    assert before is ChecksumForm.PSEUDO
    current = receive(policy, scapy_v3(PEER, ME))
    assert isinstance(current, Accepted) and current.checksum_form is ChecksumForm.PSEUDO
    assert not policy.observe(current.checksum_form)  # a current peer changes nothing
    old = receive(policy, scapy_v3(PEER, MCAST_V4))
    assert isinstance(old, Accepted) and old.checksum_form is ChecksumForm.OLD_UNICAST
    assert policy.observe(old.checksum_form)
    assert not policy.observe(old.checksum_form)  # switched once: logged once
    assert policy.tx_form is ChecksumForm.OLD_UNICAST
    # What we now send to the peer is what an old keepalived would have sent us.
    ours = encode(Advert(3, 51, 100, (VIP,), 100), src=ME, dst=PEER, form=policy.tx_form)
    assert ours == scapy_v3(ME, MCAST_V4)
    assert ours != scapy_v3(ME, PEER)


def test_never_drops_the_old_form_and_never_switches() -> None:
    policy = UnicastChecksum("never", unicast=True)
    result = receive(policy, scapy_v3(PEER, MCAST_V4))
    assert isinstance(result, Drop) and result.reason is DropReason.CHECKSUM
    assert not policy.observe(ChecksumForm.OLD_UNICAST)
    assert policy.tx_form is ChecksumForm.PSEUDO
    assert isinstance(receive(policy, scapy_v3(PEER, ME)), Accepted)


def test_bare_keyword_sends_the_old_form_from_the_start_and_accepts_both() -> None:
    policy = UnicastChecksum("always", unicast=True)
    assert policy.tx_form is ChecksumForm.OLD_UNICAST
    assert not policy.observe(ChecksumForm.OLD_UNICAST)
    for pseudo_dst in (ME, MCAST_V4):
        assert isinstance(receive(policy, scapy_v3(PEER, pseudo_dst)), Accepted)


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
def test_multicast_instances_are_unaffected(mode: str) -> None:
    policy = UnicastChecksum(mode, unicast=False)
    assert policy.tx_form is ChecksumForm.PSEUDO
    assert ChecksumForm.OLD_UNICAST not in policy.rx_forms
    assert not policy.observe(ChecksumForm.OLD_UNICAST)


def test_v3_checksum_as_v2_keeps_the_message_only_form() -> None:
    policy = UnicastChecksum("always", unicast=True, as_v2=True)
    assert policy.tx_form is ChecksumForm.MESSAGE
    assert not policy.observe(ChecksumForm.OLD_UNICAST)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        UnicastChecksum("sometimes", unicast=True)


# ---- through the runner: config keyword -> plan -> receive -> what goes on the wire ---------

CONFIG = """
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    version 3
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    {option}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


def runner_for(option: str) -> tuple[Runner, Wire]:
    runner, wire, _ = fake_runner(CONFIG.format(me=ME, peer=PEER, vip=VIP, option=option), ME)
    return runner, wire


@pytest.mark.parametrize(
    ("option", "sends_old_after"), [("", True), ("old_unicast_checksum never", False)]
)
def test_runner_switches_its_adverts_after_an_old_form_advert(
    option: str, sends_old_after: bool
) -> None:
    runner, wire = runner_for(option)
    runner.send_advert(100)
    assert wire.sent[-1] == (scapy_v3(ME, PEER), PEER)
    with structlog.testing.capture_logs() as logs:
        for prio in (90, 91):
            old = scapy_v3(PEER, MCAST_V4, priority=prio)
            runner.receive(Datagram(old, FROM_PEER, "eth0"), 0.0)
    runner.send_advert(100)
    assert wire.sent[-1][0] == scapy_v3(ME, MCAST_V4 if sends_old_after else PEER)
    assert runner.counters.drops[DropReason.CHECKSUM] == (0 if sends_old_after else 2)
    switched = [e for e in logs if e["event"] == "vrrpd.checksum.old_unicast"]
    assert len(switched) == (1 if sends_old_after else 0)
    if switched:
        assert switched[0]["peer"] == str(PEER)


def test_runner_sends_the_old_form_with_the_bare_keyword() -> None:
    runner, wire = runner_for("old_unicast_checksum")
    runner.send_advert(100)
    assert wire.sent[-1] == (scapy_v3(ME, MCAST_V4), PEER)
