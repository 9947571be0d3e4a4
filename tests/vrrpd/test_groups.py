"""Sync group routing (vrrpd.groups): when a group forms, and that a member's event reaches
every member through it (pure: Runners on a fake host, no daemon)."""

from __future__ import annotations

from ipaddress import IPv4Address

from tests.vrrpd.fakes import FakeHost, Wire, plans_of
from vrrpd.links import Link
from vrrpd.machine import FaultChanged, Startup, State
from vrrpd.runner import Runner

ME = IPv4Address("192.0.2.11")
CONFIG = """
vrrp_sync_group G1 {
    group {
        VI_A
        VI_B
    }
    notify /x/group
}
""" + "".join(
    f"""
vrrp_instance VI_{name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    version 3
    virtual_ipaddress {{
        192.0.2.{vrid}/24
    }}
}}
"""
    for name, vrid in (("A", 71), ("B", 72))
)


def running(names: tuple[str, ...] = ("VI_A", "VI_B")) -> tuple[FakeHost, dict[str, Runner]]:
    host = FakeHost()
    plans = {p.name: p for p in plans_of(CONFIG)}
    link = Link("eth0", 2, True)
    for name in names:
        host.add(plans[name], link, ME, Wire())
    host.groups.form(plans)
    for runner in host.runners.values():
        runner.feed(Startup(), 0.0)
    return host, host.runners


def test_a_group_forms_only_once_every_member_runs() -> None:
    host, runners = running(("VI_A",))
    assert runners["VI_A"].group is None and "G1" not in host.groups
    host, runners = running()
    assert {r.group for r in runners.values()} == {"G1"} and "G1" in host.groups


def test_one_members_fault_takes_the_whole_group_to_fault_and_notifies_it_once() -> None:
    host, runners = running()
    assert {r.machine.state for r in runners.values()} == {State.BACKUP}
    host.group_notes.clear()
    runners["VI_A"].feed(FaultChanged("interface eth9", faulty=True), 1.0)
    assert {r.machine.state for r in runners.values()} == {State.FAULT}
    # Each member published its own new state, through its own runner.
    assert host.retained["vrrp.state.VI_B"]["state"] == "FAULT"
    ((note, resumed),) = host.group_notes
    assert (note.group, note.new, note.member, resumed) == ("G1", State.FAULT, "VI_A", False)


def test_a_stopping_member_breaks_the_group_up() -> None:
    host, runners = running()
    a = runners.pop("VI_A")
    host.groups.leave(a)
    assert a.group is None and runners["VI_B"].group is None and "G1" not in host.groups
    # VI_B now decides alone: its fault no longer reaches VI_A.
    runners["VI_B"].feed(FaultChanged("interface eth9", faulty=True), 1.0)
    assert runners["VI_B"].machine.state is State.FAULT
    assert a.machine.state is State.BACKUP
