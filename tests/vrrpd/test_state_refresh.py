"""``vrrp.state.<instance>`` re-sends carry current receive counters."""

from __future__ import annotations

from ipaddress import IPv4Address

from tests.vrrpd.fakes import runner_for
from vrrpd.packet import MCAST_V4, Advert, encode
from vrrpd.sockets import Datagram
from vrrpd.validate import IpFacts

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
