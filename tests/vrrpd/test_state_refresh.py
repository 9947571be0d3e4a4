"""``vrrp.state.<instance>`` re-sends carry current receive counters."""

from __future__ import annotations

from ipaddress import IPv4Address

from tests.vrrpd.fakes import runner_for
from vrrpd.packet import MCAST_V4, Advert, encode
from vrrpd.sockets import Datagram
from vrrpd.validate import DropReason, IpFacts

ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
CONFIG = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def test_the_retained_state_body_is_rebuilt_with_the_counters_of_the_moment() -> None:
    runner, _, host = runner_for(CONFIG, ME)
    topic = "vrrp.state.VI_1"
    runner.publish_state()
    published = host.retained[topic]
    refresh = host.refresh[topic]
    bad_ttl = IpFacts(src=PEER, dst=MCAST_V4, ttl=64)  # multicast adverts need TTL 255
    wire = encode(Advert(3, 51, 120, (IPv4Address("192.0.2.100"),), 100), src=PEER)
    for _ in range(3):
        runner.receive(Datagram(wire, bad_ttl, "eth0"), 0.0)
    # Drops change nothing the state is published for (no new publication) ...
    assert host.retained[topic] is published
    assert "drop.ttl" not in published["drops"]
    # ... but the body a re-send rebuilds has them.
    assert refresh()["drops"]["drop.ttl"] == 3
    assert refresh()["state"] == published["state"]


def test_datagrams_no_instance_took_are_counted_under_every_instance_of_the_socket() -> None:
    runner, _, host = runner_for(CONFIG, ME)
    host.unclaimed_counts[(4, "eth0")] = {DropReason.VRID: 5, DropReason.TOO_SHORT: 2}
    bad_ttl = IpFacts(src=PEER, dst=MCAST_V4, ttl=64)
    wire = encode(Advert(3, 51, 120, (IPv4Address("192.0.2.100"),), 100), src=PEER)
    runner.receive(Datagram(wire[:6], bad_ttl, "eth0"), 0.0)  # too short, for VRID 51
    runner.publish_state()
    drops = host.retained["vrrp.state.VI_1"]["drops"]
    assert drops["drop.vrid"] == 5
    assert drops["drop.too_short"] == 3
