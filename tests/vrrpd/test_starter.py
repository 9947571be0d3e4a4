"""vrrpd.starter without a daemon: which instances may start, and what one that cannot start
yet reports (issue #9), on the fake host (no loop, sockets or bus)."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address

from bus.messages import Intent, StateReport
from tests.vrrpd.fakes import ONE_INSTANCE, FakeHost, Wire, plans_of
from vrrpd.links import Link
from vrrpd.plan import InstancePlan
from vrrpd.starter import Starter

ME = IPv4Address("192.0.2.11")
TOPIC = "vrrp.state.VI_1"


def setup(options: str = "") -> tuple[Starter, FakeHost, dict[str, InstancePlan]]:
    host = FakeHost()
    plans = {p.name: p for p in plans_of(ONE_INSTANCE.format(options=options))}
    return Starter(host.runners, host, lambda now: None), host, plans


def link(*addresses: str, up: bool = True, name: str = "eth0", ifindex: int = 2) -> Link:
    ifaces = tuple(ipaddress.ip_interface(a) for a in addresses)
    return Link(name, ifindex, up, ifaces, primaries=ifaces)


def reported(host: FakeHost) -> StateReport:
    return StateReport.decode(TOPIC, host.retained[TOPIC])


def test_nothing_is_missing_before_netd_has_reported_any_link() -> None:
    starter, host, plans = setup()
    assert starter.ready(0.0, plans, {}) == []
    assert TOPIC not in host.retained and not starter.waiting


def test_an_instance_waits_in_fault_saying_why_until_its_interface_is_usable() -> None:
    starter, host, plans = setup()
    other = {"eth1": link(name="eth1", ifindex=3)}
    assert starter.ready(0.0, plans, other) == []
    state = reported(host)
    assert (state.state, state.faults) == ("FAULT", ("interface eth0 not found",))
    assert starter.waiting and starter.pending.next_retry() == 0.5
    # The same reason again is not re-published; the back-off grows.
    starter.ready(0.5, plans, other)
    assert host.counts[TOPIC] == 1 and starter.pending.next_retry() == 1.5

    assert starter.ready(1.0, plans, {"eth0": link(up=False)}) == []
    assert reported(host).faults == ("interface eth0 is down",)
    assert starter.ready(1.0, plans, {"eth0": link()}) == []
    assert reported(host).faults == ("no IPv4 address on eth0",)

    usable = link("192.0.2.11/24")
    ((p, on, primary),) = starter.ready(2.0, plans, {"eth0": usable})
    assert (p.name, on, primary) == ("VI_1", usable, ME)
    starter.started(host.add(p, on, primary, Wire()), 2.0)
    # The running instance's own state replaces the FAULT it reported while it waited.
    assert reported(host).state == "BACKUP" and not reported(host).faults
    assert starter.pending.names() == [] and starter.pending.next_retry() is None


def test_the_source_is_never_a_vip_of_any_instance() -> None:
    starter, host, plans = setup()
    only_vip = {"eth0": link("192.0.2.100/24")}
    assert starter.ready(0.0, plans, only_vip) == []
    assert reported(host).faults == ("no IPv4 address on eth0",)


def test_a_waiting_instance_gone_from_the_config_reports_nothing() -> None:
    starter, host, plans = setup()
    starter.ready(0.0, plans, {"eth0": link()})
    starter.configured(plans)
    assert TOPIC in host.retained
    starter.configured({})
    assert TOPIC not in host.retained and not starter.waiting


def test_a_missing_vmac_is_asked_of_netd_with_an_intent_holding_nothing() -> None:
    starter, host, plans = setup("    use_vmac")
    assert starter.ready(0.0, plans, {"eth0": link("192.0.2.11/24")}) == []
    intent = Intent.decode("vrrp.intent.VI_1", host.retained["vrrp.intent.VI_1"])
    assert not intent.held and intent.items == () and intent.generation == 0
    assert intent.vmac is not None and intent.vmac.name == plans["VI_1"].advert_interface
    assert TOPIC not in host.retained  # waiting for netd is no fault
