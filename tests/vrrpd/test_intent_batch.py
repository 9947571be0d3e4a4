"""A takeover asks netd for its addresses and its GARP burst in one ``vrrp.intent``."""

from __future__ import annotations

from ipaddress import IPv4Address

from bus.messages import Intent
from tests.vrrpd.fakes import runner_for
from vrrpd.machine import SendGarp, SetVips

CONFIG = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""
TOPIC = "vrrp.intent.VI_1"


def test_one_batch_of_actions_publishes_one_intent() -> None:
    runner, _, host = runner_for(CONFIG, IPv4Address("192.0.2.11"))
    runner.execute([SetVips(held=True, accept=False), SendGarp(5, "takeover")], 0.0)
    assert host.counts[TOPIC] == 1
    intent = Intent.decode(TOPIC, host.retained[TOPIC])
    # ... carrying both: the addresses to hold and the burst to send after them
    assert intent.held and intent.generation == 1
    assert intent.announce == 1 and intent.garp_count == 5
    assert [i.kind for i in intent.items] == ["vip"]
    assert intent.items[0].spec["address"] == "192.0.2.100/24"


def test_a_batch_without_intent_changes_publishes_none() -> None:
    runner, _, host = runner_for(CONFIG, IPv4Address("192.0.2.11"))
    runner.execute([], 0.0)
    assert host.counts[TOPIC] == 0
    runner.execute([SendGarp(2, "refresh")], 0.0)
    assert host.counts[TOPIC] == 1
