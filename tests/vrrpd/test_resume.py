"""A quick vrrpd restart resumes what netd still holds: the machine's Resume event and the
pure decision (vrrpd.resume), with a fake clock."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

import core
from vrrpd.machine import (
    AdvertReceived,
    CauseKind,
    FaultChanged,
    InstanceParams,
    Log,
    Machine,
    Notify,
    Resume,
    SendAdvert,
    SendGarp,
    SetTimer,
    SetVips,
    Startup,
    State,
    TimerFired,
    TimerName,
)
from vrrpd.plan import InstancePlan, plan
from vrrpd.resume import Verdict, decide, fingerprint

ME = IPv4Address("192.0.2.11")
LOW = IPv4Address("192.0.2.5")
HIGH = IPv4Address("192.0.2.20")
P = InstanceParams(name="VI_1", vrid=51, primary_address=ME, priority=100, interval_cs=100)
MDI_100 = 3 + 156 / 256


def adv(src: IPv4Address, prio: int) -> AdvertReceived:
    return AdvertReceived(source=src, priority=prio, interval_cs=100)


def state(m: Machine) -> State:
    return m.state  # a call stops mypy from narrowing m.state across handle() calls


def resumed(params: InstanceParams = P, now: float = 0.0) -> Machine:
    m = Machine(params)
    m.handle(Resume(), now)
    assert m.state is State.MASTER
    return m


# ---- the machine -------------------------------------------------------------------------------


def test_resume_is_master_at_once_with_an_advert_and_no_garp() -> None:
    m = Machine(P)
    actions = m.handle(Resume("netd holds 1 item"), 10.0)
    assert m.state is State.MASTER
    # The advert goes first (the peer keeps waiting), then the VIPs are claimed under this
    # vrrpd's start so netd renews rather than withdraws them.
    assert actions[0] == SendAdvert(100)
    assert SetVips(held=True, accept=True) in actions
    assert not [a for a in actions if isinstance(a, SendGarp)], "the VIPs never moved"
    assert m.timers == {TimerName.ADVER: 11.0}
    (note,) = [a for a in actions if isinstance(a, Notify)]
    assert (note.old, note.new, note.cause.kind) == (State.INIT, State.MASTER, CauseKind.RESUMED)
    assert "netd holds 1 item" in note.cause.detail
    assert m.transitions == 1


def test_resume_keeps_the_garp_refresh_schedule() -> None:
    m = Machine(replace(P, garp_master_refresh=10.0, garp_master_delay=5.0))
    actions = m.handle(Resume(), 0.0)
    assert not [a for a in actions if isinstance(a, SendGarp)]
    assert m.timers[TimerName.GARP_REFRESH] == 15.0
    assert TimerName.GARP_DELAY not in m.timers


@pytest.mark.parametrize("prio", [1, 99, 100, 101, 255])
def test_an_advert_heard_before_resuming_means_a_normal_start(prio: int) -> None:
    m = Machine(P)
    assert m.handle(adv(HIGH if prio >= 100 else LOW, prio), 0.0) == []
    assert m.state is State.INIT
    actions = m.handle(Resume(), 0.2)
    assert state(m) is State.BACKUP
    assert SetVips(held=False, accept=True) in actions
    assert [a.event for a in actions if isinstance(a, Log)] == ["vrrpd.resume.declined"]
    assert m.last_cause is not None and m.last_cause.kind is CauseKind.STARTUP


def test_a_resigning_advert_heard_before_resuming_does_not_stop_it() -> None:
    m = Machine(P)
    m.handle(adv(HIGH, 0), 0.0)
    m.handle(Resume(), 0.1)
    assert m.state is State.MASTER


def test_resume_with_a_fault_goes_to_fault() -> None:
    m = Machine(P)
    m.handle(FaultChanged.interface("eth0", up=False), 0.0)
    assert m.state is State.INIT
    actions = m.handle(Resume(), 0.1)
    assert state(m) is State.FAULT
    assert SetVips(held=False, accept=True) in actions
    assert not [a for a in actions if isinstance(a, SendAdvert)]


def test_resume_after_start_is_ignored() -> None:
    m = Machine(P)
    m.handle(Startup(), 0.0)
    actions = m.handle(Resume(), 0.1)
    assert m.state is State.BACKUP
    assert [a.event for a in actions if isinstance(a, Log)] == ["vrrpd.resume.ignored"]


def test_the_owner_resumes_too() -> None:
    m = resumed(replace(P, priority=255))
    assert m.last_cause is not None and m.last_cause.kind is CauseKind.RESUMED


@pytest.mark.parametrize(
    ("peer", "prio", "preempt", "expected"),
    [
        (HIGH, 101, True, State.BACKUP),  # the protocol anyway
        (LOW, 100, True, State.BACKUP),  # equal priority: the one that took over keeps it
        (HIGH, 100, True, State.BACKUP),
        (LOW, 99, True, State.MASTER),  # lower with preemption: we take it back at once
        (LOW, 99, False, State.BACKUP),  # nopreempt: never steal from a peer that took over
    ],
)
def test_a_peer_that_took_over_meanwhile_wins_just_after_resuming(
    peer: IPv4Address, prio: int, preempt: bool, expected: State
) -> None:
    m = resumed(replace(P, preempt=preempt))
    actions = m.handle(adv(peer, prio), 1.0)
    assert state(m) is expected
    if expected is State.BACKUP:
        (note,) = [a for a in actions if isinstance(a, Notify)]
        assert note.cause.kind is CauseKind.ADVERT and note.cause.peer == peer
        assert SetVips(held=False, accept=True) in actions
        assert TimerName.MASTER_DOWN in m.timers


@pytest.mark.parametrize(("prio", "preempt"), [(100, True), (99, False)])
def test_after_one_master_down_interval_the_usual_rules_apply(prio: int, preempt: bool) -> None:
    m = resumed(replace(P, preempt=preempt))
    for k in range(1, 5):  # still master, sending adverts
        m.handle(TimerFired(TimerName.ADVER), float(k))
    m.handle(adv(LOW, prio), MDI_100 + 0.5)
    # Equal priority from a lower address, or lower priority: the master keeps the role.
    assert state(m) is State.MASTER


def test_leaving_master_ends_the_resume_grace() -> None:
    m = resumed()
    m.handle(adv(HIGH, 101), 0.5)
    assert state(m) is State.BACKUP
    m.handle(TimerFired(TimerName.MASTER_DOWN), 0.5 + MDI_100)
    assert state(m) is State.MASTER
    # A normal takeover: the equal-priority, lower-address advert loses as usual.
    m.handle(adv(LOW, 100), 0.6 + MDI_100)
    assert state(m) is State.MASTER


_before = st.lists(
    st.builds(
        AdvertReceived,
        source=st.sampled_from([LOW, HIGH]),
        priority=st.integers(0, 255),
        interval_cs=st.just(100),
    ),
    max_size=3,
)


@given(st.sampled_from([1, 100, 254, 255]), st.booleans(), _before, st.booleans())
def test_resume_is_silent_only_when_nothing_was_heard_and_nothing_is_faulty(
    prio: int, preempt: bool, heard: list[AdvertReceived], faulty: bool
) -> None:
    m = Machine(replace(P, priority=prio, preempt=preempt))
    for i, event in enumerate(heard):
        assert m.handle(event, i * 0.01) == []
    if faulty:
        m.handle(FaultChanged("track_script chk", faulty=True), 0.05)
    actions = m.handle(Resume(), 0.1)
    notes = [a for a in actions if isinstance(a, Notify)]
    assert len(notes) == 1 and notes[0].old is State.INIT
    interrupted = any(a.priority > 0 for a in heard)
    if faulty:
        assert m.state is State.FAULT
    elif interrupted:
        assert notes[0].cause.kind is not CauseKind.RESUMED
        # As a normal start: the owner takes over at once, anyone else waits as BACKUP.
        assert m.state is (State.MASTER if prio == 255 else State.BACKUP)
    else:
        assert notes[0].cause.kind is CauseKind.RESUMED
        assert m.state is State.MASTER
    if notes[0].cause.kind is CauseKind.RESUMED:
        assert not [a for a in actions if isinstance(a, SendGarp)]
    for action in actions:
        if isinstance(action, SetTimer):
            assert action.deadline >= 0.1


# ---- the decision ------------------------------------------------------------------------------

CONF = """
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def one_plan(vrid: int = 51, prio: int = 100, vip: str = "192.0.2.100/24") -> InstancePlan:
    result = core.loads(CONF.format(vrid=vrid, prio=prio, vip=vip), script_env=None)
    assert result.config is not None
    (p,) = plan(result.config)
    return p


def test_the_fingerprint_covers_what_netd_installs_and_the_identity_not_the_priority() -> None:
    base = fingerprint(one_plan())
    assert fingerprint(one_plan()) == base
    assert fingerprint(one_plan(prio=50)) == base  # handled by the protocol, as a reload is
    assert fingerprint(one_plan(vip="192.0.2.101/24")) != base
    assert fingerprint(one_plan(vrid=52)) != base


def applied(items: object, fp: str | None) -> dict[str, object]:
    body: dict[str, object] = {"owner": "vrrp:VI_1", "generation": 7, "failures": []}
    body["items"] = items
    if fp is not None:
        body["fingerprint"] = fp
    return body


@pytest.mark.parametrize(
    ("report", "waiting", "verdict"),
    [
        (None, True, Verdict.WAIT),
        (None, False, Verdict.START),  # netd never said: start as usual
        (applied(1, "F"), False, Verdict.RESUME),
        (applied(3, "F"), True, Verdict.RESUME),
        (applied(0, "F"), True, Verdict.START),  # it was BACKUP, or the lease ran out
        (applied(1, "G"), True, Verdict.START),  # config changed while vrrpd was down
        (applied(1, None), True, Verdict.START),  # an older vrrpd's intent
        (applied(True, "F"), True, Verdict.START),  # malformed
        (applied("1", "F"), True, Verdict.START),
        ({"owner": "vrrp:VI_1", "items": 0, "expired": True}, True, Verdict.START),
    ],
)
def test_decide(report: dict[str, object] | None, waiting: bool, verdict: Verdict) -> None:
    decision = decide(report, "F", waiting=waiting)
    assert decision.verdict is verdict
    assert decision.reason
