"""vrrp_sync_group: members move together (keepalived 2.2.7)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from vrrpd.machine import (
    Action,
    AdvertReceived,
    CauseKind,
    FaultChanged,
    InstanceParams,
    Machine,
    Notify,
    SendGarp,
    Startup,
    State,
    TimerFired,
    TimerName,
)
from vrrpd.syncgroup import GroupNotify, SyncGroup

ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.20")
BASE = InstanceParams(name="VI_1", vrid=1, primary_address=ME)


def group() -> SyncGroup:
    a = Machine(BASE)
    b = Machine(replace(BASE, name="VI_2", vrid=2))
    g = SyncGroup("G1", {"VI_1": a, "VI_2": b})
    g.handle("VI_1", Startup(), 0.0)
    g.handle("VI_2", Startup(), 0.0)
    return g


def states(g: SyncGroup) -> dict[str, State]:
    return {name: m.state for name, m in g.members.items()}


def group_notifies(out: list[tuple[str, Action | GroupNotify]]) -> list[GroupNotify]:
    return [a for _, a in out if isinstance(a, GroupNotify)]


def notifies(out: list[tuple[str, Action | GroupNotify]]) -> dict[str, Notify]:
    return {name: a for name, a in out if isinstance(a, Notify)}


def test_first_expiry_waits_for_the_others_then_all_go_master() -> None:
    g = group()
    out = g.handle("VI_1", TimerFired(TimerName.MASTER_DOWN), 3.7)
    assert states(g) == {"VI_1": State.BACKUP, "VI_2": State.BACKUP}
    assert g.members["VI_1"].wants_master
    assert g.members["VI_1"].timers[TimerName.MASTER_DOWN] > 3.7  # re-armed
    assert not notifies(out)
    out = g.handle("VI_2", TimerFired(TimerName.MASTER_DOWN), 3.8)
    assert states(g) == {"VI_1": State.MASTER, "VI_2": State.MASTER}
    assert g.state is State.MASTER
    n = notifies(out)
    assert n["VI_2"].cause.kind is CauseKind.TIMER
    assert n["VI_1"].cause.kind is CauseKind.SYNC_GROUP
    assert "VI_2" in n["VI_1"].cause.detail


def test_one_member_backup_pulls_the_others_back() -> None:
    g = group()
    g.handle("VI_1", TimerFired(TimerName.MASTER_DOWN), 3.7)
    g.handle("VI_2", TimerFired(TimerName.MASTER_DOWN), 3.8)
    out = g.handle("VI_2", AdvertReceived(PEER, 200, 100), 5.0)
    assert states(g) == {"VI_1": State.BACKUP, "VI_2": State.BACKUP}
    assert notifies(out)["VI_1"].cause.kind is CauseKind.SYNC_GROUP
    # VI_1 times out again but VI_2 keeps hearing its master: nobody goes MASTER.
    m1 = g.members["VI_1"]
    g.handle("VI_2", AdvertReceived(PEER, 200, 100), 6.0)
    g.handle("VI_1", TimerFired(TimerName.MASTER_DOWN), m1.timers[TimerName.MASTER_DOWN])
    assert states(g) == {"VI_1": State.BACKUP, "VI_2": State.BACKUP}


def test_one_member_fault_faults_the_group_until_it_recovers() -> None:
    g = group()
    g.handle("VI_1", TimerFired(TimerName.MASTER_DOWN), 3.7)
    g.handle("VI_2", TimerFired(TimerName.MASTER_DOWN), 3.8)
    out = g.handle("VI_1", FaultChanged("interface eth1", True), 10.0)
    assert states(g) == {"VI_1": State.FAULT, "VI_2": State.FAULT}
    assert "sync group G1: VI_1 in fault" in notifies(out)["VI_2"].cause.detail
    assert g.state is State.FAULT
    out = g.handle("VI_1", FaultChanged("interface eth1", False), 20.0)
    assert states(g) == {"VI_1": State.BACKUP, "VI_2": State.BACKUP}


def test_follower_fault_does_not_latch() -> None:
    g = group()
    g.handle("VI_1", FaultChanged("interface eth1", True), 1.0)
    g.handle("VI_2", FaultChanged("interface eth2", True), 2.0)
    g.handle("VI_1", FaultChanged("interface eth1", False), 3.0)
    assert states(g) == {"VI_1": State.FAULT, "VI_2": State.FAULT}
    g.handle("VI_2", FaultChanged("interface eth2", False), 4.0)
    assert states(g) == {"VI_1": State.BACKUP, "VI_2": State.BACKUP}


def test_lower_priority_advert_regarps_siblings() -> None:
    g = group()
    g.handle("VI_1", TimerFired(TimerName.MASTER_DOWN), 3.7)
    g.handle("VI_2", TimerFired(TimerName.MASTER_DOWN), 3.8)
    out = g.handle("VI_1", AdvertReceived(PEER, 50, 100), 5.0)
    garps = {name for name, a in out if isinstance(a, SendGarp)}
    assert garps == {"VI_1", "VI_2"}


def test_group_notify_on_group_state_changes() -> None:
    a = Machine(BASE)
    b = Machine(replace(BASE, name="VI_2", vrid=2))
    g = SyncGroup("G1", {"VI_1": a, "VI_2": b})
    out = g.handle("VI_1", Startup(), 0.0)
    assert group_notifies(out) == [GroupNotify("G1", State.INIT, State.BACKUP, "VI_1")]
    assert group_notifies(g.handle("VI_2", Startup(), 0.0)) == []
    g.handle("VI_1", TimerFired(TimerName.MASTER_DOWN), 3.7)
    out = g.handle("VI_2", TimerFired(TimerName.MASTER_DOWN), 3.8)
    assert group_notifies(out) == [GroupNotify("G1", State.BACKUP, State.MASTER, "VI_2")]
    out = g.handle("VI_1", FaultChanged("interface eth1", True), 5.0)
    assert group_notifies(out) == [GroupNotify("G1", State.MASTER, State.FAULT, "VI_1")]
