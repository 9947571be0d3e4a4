"""netd.links without a kernel: the monitor's events built by hand, what goes on the bus
(``net.link.*`` retained, ``net.addr``) and what the daemon is told changed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bus.messages import AddrChange, LinkReport
from netd.links import Links
from netd.monitor import IFA_F_TENTATIVE, AddrEvent, LinkEvent

MAC = "02:00:00:00:00:01"


@dataclass
class Publisher:
    retained: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def retain(self, topic: str, body: Mapping[str, Any]) -> None:
        self.retained.append((topic, dict(body)))

    def publish(self, topic: str, body: Mapping[str, Any]) -> None:
        self.published.append((topic, dict(body)))

    def links(self) -> list[LinkReport]:
        return [LinkReport.decode(topic, body) for topic, body in self.retained]


def link(ifindex: int = 2, name: str | None = "eth0", running: bool = True, **kw: Any) -> LinkEvent:
    return LinkEvent(ifindex, name, "UP" if running else "DOWN", True, running, MAC, **kw)


def addr(ip: str, added: bool = True, flags: int = 0, ifindex: int = 2) -> AddrEvent:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return AddrEvent(
        added, ifindex, family, ip, 24 if family == socket.AF_INET else 64, None, None, flags
    )


def test_reset_publishes_every_link_with_its_addresses() -> None:
    pub = Publisher()
    links = Links(pub)
    links.reset(
        [link(), link(3, "eth1", running=False)], [addr("192.0.2.1"), addr("192.0.2.9", ifindex=9)]
    )
    reports = {r.name: r for r in pub.links()}
    assert reports["eth0"].up and reports["eth0"].addresses == ("192.0.2.1/24",)
    assert not reports["eth1"].up and reports["eth1"].addresses == ()
    assert links.carrier("eth0") and not links.carrier("eth1") and not links.carrier("eth9")
    assert links.macs() == {"eth0": MAC, "eth1": MAC}


def test_a_link_change_is_published_once_and_reported_to_the_daemon() -> None:
    pub = Publisher()
    links = Links(pub)
    assert links.link_event(link()) == (True, None)  # new
    assert links.link_event(link()) == (False, None)  # the same again: nothing to do
    assert links.link_event(link(running=False)) == (True, None)  # carrier lost
    assert [r.up for r in pub.links()] == [True, False]
    # A notification without a name keeps the name known.
    assert links.link_event(link(name=None)) == (True, None)
    assert pub.links()[-1].name == "eth0"


def test_a_removed_link_is_published_down_and_named() -> None:
    pub = Publisher()
    links = Links(pub)
    links.link_event(link(3, "vrrp.51"))
    assert links.link_event(link(3, "vrrp.51", removed=True)) == (False, "vrrp.51")
    assert pub.retained[-1][0] == "net.link.vrrp.51" and not pub.links()[-1].up
    assert links.named("vrrp.51") is None
    assert links.link_event(link(3, "vrrp.51", removed=True)) == (False, None)  # unknown now


def test_address_changes_go_out_one_by_one_and_their_link_once_per_loop_turn() -> None:
    async def scenario() -> tuple[Publisher, list[bool]]:
        pub = Publisher()
        links = Links(pub)
        links.reset([link()], [])
        pub.retained.clear()
        went = [links.addr_event(addr(f"192.0.2.{i}")) for i in range(1, 4)]
        went.append(links.addr_event(addr("192.0.2.2", added=False)))
        went.append(links.addr_event(addr("192.0.2.2", added=False)))  # gone already
        went.append(links.addr_event(addr("192.0.2.7", ifindex=9)))  # a link not known
        assert pub.retained == []  # not yet: at the end of this turn
        await asyncio.sleep(0)
        return pub, went

    pub, went = asyncio.run(scenario())
    assert went == [False, False, False, True, False, False]
    changes = [AddrChange.decode(topic, body) for topic, body in pub.published]
    assert [(c.address, c.present) for c in changes] == [
        ("192.0.2.1/24", True),
        ("192.0.2.2/24", True),
        ("192.0.2.3/24", True),
        ("192.0.2.2/24", False),
    ]
    (report,) = pub.links()
    assert report.addresses == ("192.0.2.1/24", "192.0.2.3/24")


def test_only_a_flag_change_republishes_the_link_without_net_addr() -> None:
    async def scenario() -> Publisher:
        pub = Publisher()
        links = Links(pub)
        links.reset([link()], [addr("2001:db8::1", flags=IFA_F_TENTATIVE)])
        assert pub.links()[0].tentative == ("2001:db8::1/64",)
        pub.retained.clear()
        assert not links.addr_event(addr("2001:db8::1"))  # DAD over
        await asyncio.sleep(0)
        return pub

    pub = asyncio.run(scenario())
    assert pub.published == []
    (report,) = pub.links()
    assert report.tentative == ()


def test_a_link_netd_made_is_known_before_its_notification() -> None:
    pub = Publisher()
    links = Links(pub)
    links.learn(7, "vrrp.51", True, "00:00:5e:00:01:33")
    assert links.macs() == {"vrrp.51": "00:00:5e:00:01:33"}
    links.learn(7, "vrrp.51", True, "00:00:5e:00:01:33")  # known: not published again
    assert [r.name for r in pub.links()] == ["vrrp.51"]
