"""A quick vrrpd restart resumes what netd still holds: the machine's Resume event and the
pure decision (vrrpd.resume), with a fake clock."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import core
from bus import MessageRejected
from bus.messages import Applied
from tests.vrrpd.sim import Segment
from vrrpd.machine import (
    AdvertReceived,
    CancelTimer,
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
    Shutdown,
    Startup,
    State,
    TimerFired,
    TimerName,
)
from vrrpd.plan import InstancePlan, plan
from vrrpd.resume import Verdict, decide, fingerprint
from vrrpd.syncgroup import GroupNotify, SyncGroup

ME = IPv4Address("192.0.2.11")
LOW = IPv4Address("192.0.2.5")
HIGH = IPv4Address("192.0.2.20")
P = InstanceParams(name="VI_1", vrid=51, primary_address=ME, priority=100, interval_cs=100)
MDI_100 = 3 + 156 / 256


def adv(src: IPv4Address, prio: int) -> AdvertReceived:
    return AdvertReceived(source=src, priority=prio, interval_cs=100)


def state(m: Machine) -> State:
    return m.state  # a call stops mypy from narrowing m.state across handle() calls


LISTEN = 1.25  # the resume timer: a little over one advert interval


def resumed(params: InstanceParams = P, now: float = 0.0) -> Machine:
    """A machine that resumed at ``now`` (Resume fed one listening period earlier)."""
    m = Machine(params)
    m.handle(Resume(), now - LISTEN)
    m.handle(TimerFired(TimerName.RESUME), now)
    assert m.state is State.MASTER
    return m


# ---- the machine -------------------------------------------------------------------------------


def test_resume_listens_one_interval_then_is_master_with_an_advert_and_no_garp() -> None:
    m = Machine(P)
    actions = m.handle(Resume("netd holds 1 item"), 10.0)
    assert m.state is State.INIT and m.resuming
    assert m.timers == {TimerName.RESUME: 10.0 + LISTEN}
    assert not [a for a in actions if isinstance(a, SendAdvert | SetVips | Notify)]
    actions = m.handle(TimerFired(TimerName.RESUME), 10.0 + LISTEN)
    assert state(m) is State.MASTER and TimerName.RESUME not in m.timers
    # The advert goes first (the peer keeps waiting), then the VIPs are claimed under this
    # vrrpd's start so netd renews rather than withdraws them.
    assert actions[0] == SendAdvert(100)
    assert SetVips(held=True, accept=True) in actions
    assert not [a for a in actions if isinstance(a, SendGarp)], "the VIPs never moved"
    assert m.timers == {TimerName.ADVER: 11.0 + LISTEN}
    (note,) = [a for a in actions if isinstance(a, Notify)]
    assert (note.old, note.new, note.cause.kind) == (State.INIT, State.MASTER, CauseKind.RESUMED)
    assert "netd holds 1 item" in note.cause.detail
    assert m.transitions == 1


def test_resume_keeps_the_garp_refresh_schedule() -> None:
    m = resumed(replace(P, garp_master_refresh=10.0, garp_master_delay=5.0))
    assert m.timers[TimerName.GARP_REFRESH] == 15.0
    assert TimerName.GARP_DELAY not in m.timers


@pytest.mark.parametrize("prio", [1, 99, 100, 101, 254])
@pytest.mark.parametrize("heard_before", [True, False])
def test_an_advert_heard_before_resuming_means_a_normal_start(
    prio: int, heard_before: bool
) -> None:
    """Heard before the Resume event (while the engine waited for netd) or while listening:
    a normal start at once, following the advert just heard."""
    peer = HIGH if prio >= 100 else LOW
    m = Machine(P)
    if heard_before:
        assert m.handle(adv(peer, prio), 0.0) == []
        actions = m.handle(Resume(), 0.2)
    else:
        m.handle(Resume(), 0.0)
        actions = m.handle(adv(peer, prio), 0.2)
    assert state(m) is State.BACKUP and not m.resuming
    assert TimerName.RESUME not in m.timers
    assert SetVips(held=False, accept=True) in actions
    assert "vrrpd.resume.declined" in [a.event for a in actions if isinstance(a, Log)]
    assert m.last_cause is not None and m.last_cause.kind is CauseKind.STARTUP
    if prio >= 100 and not heard_before:  # follow the master just heard: its down timer
        assert m.master_peer == peer
        assert m.timers[TimerName.MASTER_DOWN] == pytest.approx(0.2 + MDI_100)
    # A stale resume timer changes nothing.
    assert m.handle(TimerFired(TimerName.RESUME), 0.2 + LISTEN) == []


def test_startup_while_listening_is_a_normal_start() -> None:
    """The engine feeds Startup when netd reports the lease ran out meanwhile."""
    m = Machine(P)
    m.handle(Resume(), 0.0)
    actions = m.handle(Startup(), 0.5)
    assert state(m) is State.BACKUP and not m.resuming
    assert CancelTimer(TimerName.RESUME) in actions
    assert TimerName.RESUME not in m.timers


def test_a_resigning_advert_does_not_stop_a_resume() -> None:
    m = Machine(P)
    m.handle(adv(HIGH, 0), 0.0)
    m.handle(Resume(), 0.1)
    m.handle(adv(HIGH, 0), 0.2)
    m.handle(TimerFired(TimerName.RESUME), 0.1 + LISTEN)
    assert state(m) is State.MASTER


def test_a_fault_while_listening_goes_to_fault() -> None:
    m = Machine(P)
    m.handle(Resume(), 0.0)
    m.handle(FaultChanged.interface("eth0", up=False), 0.5)
    assert m.state is State.INIT
    actions = m.handle(TimerFired(TimerName.RESUME), LISTEN)
    assert state(m) is State.FAULT
    assert SetVips(held=False, accept=True) in actions
    assert not [a for a in actions if isinstance(a, SendAdvert)]


def test_shutdown_while_listening_disarms_the_resume_timer() -> None:
    m = Machine(P)
    m.handle(Resume(), 0.0)
    m.handle(Shutdown(), 0.5)
    assert m.timers == {} and not m.resuming


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
        (HIGH, 101, True, State.BACKUP),
        (HIGH, 100, True, State.BACKUP),  # equal priority, higher address
        (LOW, 100, True, State.MASTER),  # equal priority, lower address: it yields to us
        (LOW, 99, True, State.MASTER),
        (LOW, 99, False, State.MASTER),  # it yields to our higher priority: so must we not
    ],
)
def test_just_after_resuming_the_usual_rules_apply(
    peer: IPv4Address, prio: int, preempt: bool, expected: State
) -> None:
    """A peer that took over just as we resumed (its advert was in flight) applies the usual
    rules to our advert; applying other ones here could leave both sides BACKUP."""
    m = resumed(replace(P, preempt=preempt))
    actions = m.handle(adv(peer, prio), 0.01)
    assert state(m) is expected
    if expected is State.BACKUP:
        (note,) = [a for a in actions if isinstance(a, Notify)]
        assert note.cause.kind is CauseKind.ADVERT and note.cause.peer == peer
        assert SetVips(held=False, accept=True) in actions
        assert TimerName.MASTER_DOWN in m.timers
    else:
        assert SendAdvert(100) in actions  # answered at once: the peer steps down


_before = st.lists(
    st.builds(
        AdvertReceived,
        source=st.sampled_from([LOW, HIGH]),
        priority=st.integers(0, 255),
        interval_cs=st.just(100),
    ),
    max_size=3,
)


@given(st.sampled_from([1, 100, 254, 255]), st.booleans(), _before, _before, st.booleans())
def test_resume_is_silent_only_when_nothing_was_heard_and_nothing_is_faulty(
    prio: int,
    preempt: bool,
    before: list[AdvertReceived],
    listening: list[AdvertReceived],
    faulty: bool,
) -> None:
    m = Machine(replace(P, priority=prio, preempt=preempt))
    for i, event in enumerate(before):
        assert m.handle(event, i * 0.01) == []
    actions = m.handle(Resume(), 0.1)
    for i, event in enumerate(listening):
        actions += m.handle(event, 0.2 + i * 0.01)
    if faulty:
        actions += m.handle(FaultChanged("track_script chk", faulty=True), 0.3)
    actions += m.handle(TimerFired(TimerName.RESUME), 0.1 + LISTEN)
    notes = [a for a in actions if isinstance(a, Notify)]
    assert notes and notes[0].old is State.INIT
    interrupted = any(a.priority > 0 for a in before + listening)
    owner_ignores = False  # owner_ignore_adverts is off here: the owner hears adverts too
    if interrupted and not owner_ignores:
        assert notes[0].cause.kind is CauseKind.STARTUP
    elif faulty:
        assert m.state is State.FAULT
    else:
        assert [n.cause.kind for n in notes] == [CauseKind.RESUMED]
        assert m.state is State.MASTER
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


def applied(items: int | None, fp: str | None) -> dict[str, object]:
    body: dict[str, object] = {"owner": "vrrp:VI_1", "generation": 7, "failures": []}
    if items is not None:
        body["items"] = items
    if fp is not None:
        body["fingerprint"] = fp
    return body


def test_malformed_reports_are_refused_at_the_boundary() -> None:
    for items in (True, "1"):
        with pytest.raises(MessageRejected, match="'items'"):
            Applied.decode("net.applied.vrrp:VI_1", {**applied(1, "F"), "items": items})


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
        (applied(None, "F"), True, Verdict.START),  # an older netd's report
        (
            {"owner": "vrrp:VI_1", "generation": -1, "failures": [], "items": 0, "expired": True},
            True,
            Verdict.START,
        ),
    ],
)
def test_decide(report: dict[str, object] | None, waiting: bool, verdict: Verdict) -> None:
    msg = None if report is None else Applied.decode("net.applied.vrrp:VI_1", report)
    decision = decide(msg, "F", waiting=waiting)
    assert decision.verdict is verdict
    assert decision.reason


# ---- the race in virtual time: the peer may have taken over before we resume -----------------


@given(
    pa=st.integers(101, 254),
    gap=st.integers(1, 100),
    preempt=st.booleans(),
    crash_phase=st.floats(0.0, 0.99),
    away=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
@example(pa=115, gap=1, preempt=False, crash_phase=0.41015625, away=0.41015625, seed=0)
def test_resume_in_a_simulation_never_steals_and_never_leaves_two_masters(
    pa: int, gap: int, preempt: bool, crash_phase: float, away: float, seed: int
) -> None:
    """A (higher priority, master) is killed and restarted; it gets Resume while netd's lease
    still runs (within its own Master_Down_Interval of the crash). B may time out before,
    while or after A listens. A resumes only if B did not take over before it listened its
    interval (up to the delay of an advert in flight); if A heard B, it starts as usual and
    the protocol decides (A preempts back, or B keeps the role when A does not preempt)."""
    pb = max(1, pa - gap)
    seg = Segment(seed=seed, delay=(0.0, 0.005))
    a = seg.add(replace(P, name="a", primary_address=ME, priority=pa, preempt=preempt))
    b = seg.add(replace(P, name="b", primary_address=HIGH, priority=pb))
    seg.at(0.0, "a", Startup())
    seg.at(0.0, "b", Startup())
    seg.run_until(10.0)
    assert seg.masters() == [a]
    garps = a.garps
    crash = 10.0 + crash_phase
    seg.at(crash, "a", "crash")
    restart = crash + away * a.machine.master_down_interval
    seg.at(restart, "a", "resume")
    two_since: list[float] = []
    longest = [0.0]

    def check(s: Segment) -> None:
        if len(s.masters()) > 1:
            two_since.append(s.now)
            longest[0] = max(longest[0], s.now - two_since[0])
        else:
            two_since.clear()

    seg.run_until(restart + 20.0, check)
    assert longest[0] <= 1.0 + 0.01  # one advert interval (plus delay) at the very most
    after = [t for t in seg.transitions if t.time >= crash]
    b_took_over = [t.time for t in after if t.router == "b" and t.new is State.MASTER]
    first = next(t for t in after if t.router == "a")
    if first.notify.cause.kind is CauseKind.RESUMED:
        assert not b_took_over or b_took_over[0] >= first.time - 0.005 - 1e-9, "stolen"
        assert seg.masters() == [a]
        if not b_took_over:
            assert a.garps == garps, "a resumed master sent GARPs"
            assert [(t.router, t.new) for t in after] == [("a", State.MASTER)]
        # Otherwise B timed out just as A resumed (its advert in flight): A, hearing B's
        # lower-priority advert as master, re-announces as keepalived does, since B's GARPs
        # may have moved the switch's and hosts' ARP entries.
    else:
        assert first.new is State.BACKUP and b_took_over and b_took_over[0] < first.time
        assert seg.masters() == ([a] if preempt else [b])


def test_sync_group_members_resume_each_by_itself_and_the_group_ends_master() -> None:
    a = Machine(P)
    b = Machine(replace(P, name="VI_2", vrid=52))
    group = SyncGroup("G", {"VI_1": a, "VI_2": b})
    for name in ("VI_1", "VI_2"):
        group.handle(name, Resume(), 0.0)
    out = []
    for name in ("VI_1", "VI_2"):
        out += group.handle(name, TimerFired(TimerName.RESUME), LISTEN)
    notes = [(m, act.cause.kind) for m, act in out if isinstance(act, Notify)]
    # No member is forced anywhere by the group: each resumes by its own timer.
    assert notes == [("VI_1", CauseKind.RESUMED), ("VI_2", CauseKind.RESUMED)]
    assert (a.state, b.state, group.state) == (State.MASTER, State.MASTER, State.MASTER)
    # The engine runs no group notify script for these (the member's cause is "resumed").
    assert [g.new for _, g in out if isinstance(g, GroupNotify)] == [State.BACKUP, State.MASTER]


def _group() -> tuple[Machine, Machine, SyncGroup]:
    a = Machine(P)
    b = Machine(replace(P, name="VI_2", vrid=52))
    group = SyncGroup("G", {"VI_1": a, "VI_2": b})
    for name in ("VI_1", "VI_2"):
        group.handle(name, Resume(), 0.0)
    return a, b, group


def test_a_member_hearing_a_master_stops_its_siblings_resume() -> None:
    a, b, group = _group()
    # VI_2's peer took over while vrrpd was away: VI_2 hears it and starts as usual.
    group.handle("VI_2", adv(HIGH, 200), 0.5)
    assert (state(a), state(b)) == (State.BACKUP, State.BACKUP)
    assert not a.resuming and TimerName.RESUME not in a.timers
    # Without this, VI_1's resume would make the group MASTER and force VI_2 to MASTER
    # against a master of higher priority.
    out = group.handle("VI_1", TimerFired(TimerName.RESUME), LISTEN)
    assert (state(a), state(b), group.state) == (State.BACKUP, State.BACKUP, State.BACKUP)
    assert not [act for _, act in out if isinstance(act, SendAdvert)]


def test_a_resumed_member_falls_back_with_a_sibling_that_hears_a_master() -> None:
    a, b, group = _group()
    group.handle("VI_1", TimerFired(TimerName.RESUME), LISTEN)
    assert state(a) is State.MASTER and b.resuming
    out = group.handle("VI_2", adv(HIGH, 200), LISTEN + 0.1)
    assert (state(a), state(b), group.state) == (State.BACKUP, State.BACKUP, State.BACKUP)
    (note,) = [act for m, act in out if m == "VI_1" and isinstance(act, Notify)]
    assert note.cause.kind is CauseKind.SYNC_GROUP and "heard a master" in note.cause.detail


def test_a_normal_group_start_is_not_touched_by_the_resume_rule() -> None:
    a = Machine(P)
    b = Machine(replace(P, name="VI_2", vrid=52, priority=255))
    group = SyncGroup("G", {"VI_1": a, "VI_2": b})
    group.handle("VI_1", Startup(), 0.0)
    out = group.handle("VI_2", Startup(), 0.0)  # the owner goes MASTER, the group follows
    assert (state(a), state(b)) == (State.MASTER, State.MASTER)
    assert any(m == "VI_1" and isinstance(act, Notify) for m, act in out)
