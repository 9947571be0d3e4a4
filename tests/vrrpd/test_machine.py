"""State machine unit tests with a fake clock (plain floats passed as ``now``)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrrpd.machine import (
    Action,
    AdvertReceived,
    CancelTimer,
    CauseKind,
    Event,
    FaultChanged,
    InstanceParams,
    Log,
    Machine,
    Notify,
    PriorityChanged,
    Resume,
    RxLowerPriority,
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

ME = IPv4Address("192.0.2.11")
LOW = IPv4Address("192.0.2.5")
HIGH = IPv4Address("192.0.2.20")
P = InstanceParams(name="VI_1", vrid=51, primary_address=ME, priority=100, interval_cs=100)

A = TypeVar("A")

MDI_100 = 3 + 156 / 256  # 3 * 1 s + (256 - 100) / 256 s


def timer_set(actions: list[Action], name: TimerName) -> float:
    found = [a.deadline for a in actions if isinstance(a, SetTimer) and a.timer is name]
    assert found, (name, actions)
    return found[-1]


def of(actions: list[Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def state(m: Machine) -> State:
    # A function call stops mypy from narrowing m.state across handle() calls.
    return m.state


def started(params: InstanceParams = P, now: float = 0.0) -> Machine:
    m = Machine(params)
    m.handle(Startup(), now)
    return m


def master(params: InstanceParams = P, now: float = 0.0) -> Machine:
    m = started(params, now)
    if m.state is not State.MASTER:
        m.handle(TimerFired(TimerName.MASTER_DOWN), now + m.master_down_interval)
    assert m.state is State.MASTER
    return m


def adv(src: IPv4Address, prio: int, interval_cs: int = 100) -> AdvertReceived:
    return AdvertReceived(source=src, priority=prio, interval_cs=interval_cs)


# ---- timers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "prio", "interval_cs", "scales", "expected"),
    [
        (3, 100, 100, False, 3 + 156 / 256),
        (3, 254, 100, False, 3 + 2 / 256),
        (3, 1, 100, False, 3 + 255 / 256),
        (3, 200, 10, False, 0.3 + 0.1 * 56 / 256),
        (3, 100, 1, False, 0.03 + 0.01 * 156 / 256),
        (2, 100, 100, False, 3 + 156 / 256),
        (2, 100, 200, False, 6 + 156 / 256),  # RFC 3768: skew independent of the interval
        (2, 100, 200, True, 6 + 2 * 156 / 256),  # keepalived: scaled by the interval
    ],
)
def test_master_down_interval(
    version: int, prio: int, interval_cs: int, scales: bool, expected: float
) -> None:
    params = replace(
        P,
        version=version,
        priority=prio,
        interval_cs=interval_cs,
        v2_skew_scales_with_interval=scales,
    )
    m = Machine(params)
    actions = m.handle(Startup(), 10.0)
    assert m.state is State.BACKUP
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(10.0 + expected, abs=1e-6)
    assert m.master_down_interval == pytest.approx(expected, abs=1e-6)


def test_keepalived_verified_down_timer_prio_150() -> None:
    # keepalived 2.2.7 prio 150 -> 3 414 062 us
    assert Machine(replace(P, priority=150)).master_down_us == 3_414_062


# ---- start-up --------------------------------------------------------------------------------


def test_startup_non_owner_is_backup_and_releases_vips() -> None:
    m = Machine(P)
    actions = m.handle(Startup(), 0.0)
    assert SetVips(held=False, accept=True) in actions
    assert not of(actions, SendAdvert)
    (notify,) = of(actions, Notify)
    assert notify == Notify(State.INIT, State.BACKUP, notify.cause, 100)
    assert notify.cause.kind is CauseKind.STARTUP


def test_startup_owner_becomes_master_at_once_in_keepalived_order() -> None:
    m = Machine(replace(P, priority=255))
    actions = m.handle(Startup(), 0.0)
    assert m.state is State.MASTER
    kinds = [type(a) for a in actions]
    # advert first, then VIPs, then GARPs, timers, notify last
    assert kinds.index(SendAdvert) < kinds.index(SetVips) < kinds.index(SendGarp)
    assert kinds[-1] is Notify
    assert actions[0] == SendAdvert(255)
    assert SendGarp(5, "became master") in actions
    assert timer_set(actions, TimerName.GARP_DELAY) == 5.0
    assert timer_set(actions, TimerName.ADVER) == 1.0


def test_startup_state_master_waits_one_interval_plus_minimal_skew() -> None:
    m = Machine(replace(P, start_master=True))
    actions = m.handle(Startup(), 0.0)
    assert m.state is State.BACKUP
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(1 + 1 / 256)


def test_startup_with_fault_goes_fault() -> None:
    m = Machine(P)
    assert m.handle(FaultChanged("interface eth0", True), 0.0) == []
    actions = m.handle(Startup(), 0.0)
    assert m.state is State.FAULT
    (notify,) = of(actions, Notify)
    assert "interface eth0" in notify.cause.detail


# ---- BACKUP ----------------------------------------------------------------------------------


def test_master_down_expiry_takes_over_with_cause() -> None:
    m = started()
    actions = m.handle(TimerFired(TimerName.MASTER_DOWN), MDI_100)
    assert m.state is State.MASTER
    assert actions[0] == SendAdvert(100)
    (notify,) = of(actions, Notify)
    cause = notify.cause
    assert cause.kind is CauseKind.TIMER
    assert cause.timer is TimerName.MASTER_DOWN
    assert "start-up" in cause.detail


@pytest.mark.parametrize("prio", [100, 150, 255])
def test_backup_accepts_equal_or_higher_and_resets_timer(prio: int) -> None:
    m = started()
    actions = m.handle(adv(LOW, prio), 2.0)
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(2.0 + MDI_100)
    assert m.master_peer == LOW
    actions = m.handle(TimerFired(TimerName.MASTER_DOWN), 2.0 + MDI_100)
    assert m.state is State.MASTER
    assert str(LOW) in of(actions, Notify)[0].cause.detail


def test_backup_discards_lower_priority_when_preempting() -> None:
    m = started()
    actions = m.handle(adv(HIGH, 50), 2.0)
    assert not of(actions, SetTimer)
    assert any(isinstance(a, Log) and "discarding" in a.detail for a in actions)
    actions = m.handle(TimerFired(TimerName.MASTER_DOWN), MDI_100)
    assert m.state is State.MASTER
    assert "preempting lower-priority master" in of(actions, Notify)[0].cause.detail


def test_nopreempt_accepts_lower_priority() -> None:
    m = started(replace(P, preempt=False))
    actions = m.handle(adv(HIGH, 50), 2.0)
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(2.0 + MDI_100)


def test_backup_priority_zero_sets_skew_time() -> None:
    m = started()
    m.handle(adv(LOW, 150), 1.0)
    actions = m.handle(adv(LOW, 0), 2.0)
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(2.0 + 156 / 256)
    actions = m.handle(TimerFired(TimerName.MASTER_DOWN), 2.0 + 156 / 256)
    assert "resigned" in of(actions, Notify)[0].cause.detail


def test_backup_learns_v3_interval() -> None:
    m = started()
    actions = m.handle(adv(LOW, 150, interval_cs=50), 1.0)
    assert m.master_adver_int_cs == 50
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(1.0 + 1.5 + 0.5 * 156 / 256)


def test_v2_does_not_learn_interval() -> None:
    m = started(replace(P, version=2))
    m.handle(adv(LOW, 150, interval_cs=200), 1.0)
    assert m.master_adver_int_cs == 100


def test_priority_change_in_backup_shifts_down_timer_by_skew_difference() -> None:
    m = started()
    before = m.timers[TimerName.MASTER_DOWN]
    actions = m.handle(PriorityChanged(200, "track_script chk +100"), 1.0)
    after = timer_set(actions, TimerName.MASTER_DOWN)
    assert after - before == pytest.approx((56 - 156) / 256)
    assert m.priority == 200
    assert any(isinstance(a, Log) and "chk" in a.detail for a in actions)


def test_priority_is_clamped_and_owner_unchanged() -> None:
    m = started()
    m.handle(PriorityChanged(400), 0.0)
    assert m.priority == 254
    m.handle(PriorityChanged(-5), 0.0)
    assert m.priority == 1
    owner = started(replace(P, priority=255))
    assert owner.handle(PriorityChanged(100), 0.0) == []
    assert owner.priority == 255


def test_preempt_delay() -> None:
    m = Machine(replace(P, preempt_delay=10.0))
    m.handle(Startup(), 0.0)
    # As keepalived 2.2.7: the delay starts with the first lower-priority advert, not at start.
    assert TimerName.PREEMPT_DELAY not in m.timers
    actions = m.handle(adv(HIGH, 50), 1.0)
    assert timer_set(actions, TimerName.PREEMPT_DELAY) == 11.0
    # While the delay runs, a lower-priority master is accepted (timer reset).
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(1.0 + MDI_100)
    m.handle(TimerFired(TimerName.PREEMPT_DELAY), 11.0)
    actions = m.handle(adv(HIGH, 50), 11.5)
    assert not of(actions, SetTimer)
    m.handle(TimerFired(TimerName.MASTER_DOWN), m.timers[TimerName.MASTER_DOWN])
    assert m.state is State.MASTER


def test_preempt_delay_starts_on_first_lower_advert_after_master_stint() -> None:
    m = master(replace(P, preempt_delay=4.0))
    m.handle(adv(HIGH, 150), 5.0)  # a higher master takes over: we are BACKUP, delay idle
    assert TimerName.PREEMPT_DELAY not in m.timers
    actions = m.handle(adv(HIGH, 50), 6.0)  # it lowered its priority: delay starts now
    assert timer_set(actions, TimerName.PREEMPT_DELAY) == 10.0
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(6.0 + MDI_100)


# ---- MASTER ----------------------------------------------------------------------------------


def test_master_sends_adverts_on_timer() -> None:
    m = master()
    t = m.timers[TimerName.ADVER]
    actions = m.handle(TimerFired(TimerName.ADVER), t)
    assert actions == [SendAdvert(100), SetTimer(TimerName.ADVER, t + 1.0)]


def test_master_steps_down_for_higher_priority() -> None:
    m = master()
    actions = m.handle(adv(LOW, 150, interval_cs=200), 20.0)
    assert m.state is State.BACKUP
    assert CancelTimer(TimerName.ADVER) in actions
    assert SetVips(held=False, accept=True) in actions
    assert not of(actions, SendAdvert)  # no priority 0 when stepping down
    assert m.master_adver_int_cs == 200
    cause = of(actions, Notify)[0].cause
    assert cause.kind is CauseKind.ADVERT
    assert cause.peer == LOW
    assert cause.priority == 150


def test_higher_prio_send_advert() -> None:
    m = master(replace(P, higher_prio_send_advert=True))
    actions = m.handle(adv(LOW, 150), 20.0)
    assert actions[0] == SendAdvert(100)


def test_equal_priority_tie_break_by_address() -> None:
    m = master()
    actions = m.handle(adv(HIGH, 100), 20.0)
    assert m.state is State.BACKUP
    assert "higher address" in of(actions, Notify)[0].cause.detail
    m2 = master()
    actions = m2.handle(adv(LOW, 100), 20.0)
    assert m2.state is State.MASTER
    assert SendAdvert(100) in actions


def test_master_answers_lower_priority_at_once_and_regarps() -> None:
    m = master()
    actions = m.handle(adv(LOW, 50), 20.0)
    assert m.state is State.MASTER
    assert RxLowerPriority(LOW, 50) in actions
    assert SendAdvert(100) in actions
    assert timer_set(actions, TimerName.ADVER) == 21.0
    assert SendGarp(5, f"lower-priority advert from {LOW}") in actions
    assert timer_set(actions, TimerName.GARP_LOWER_PRIO) == 25.0
    assert any(isinstance(a, Log) and a.event == "vrrpd.split_brain" for a in actions)
    actions = m.handle(TimerFired(TimerName.GARP_LOWER_PRIO), 25.0)
    assert actions == [SendGarp(5, "garp_lower_prio_delay")]


def test_lower_prio_no_advert_and_no_garp() -> None:
    m = master(replace(P, lower_prio_no_advert=True, garp_lower_prio_repeat=0))
    actions = m.handle(adv(LOW, 50), 20.0)
    assert not of(actions, SendAdvert)
    assert not of(actions, SendGarp)
    assert RxLowerPriority(LOW, 50) in actions


def test_master_answers_priority_zero() -> None:
    m = master()
    actions = m.handle(adv(LOW, 0), 20.0)
    assert actions == [SendAdvert(100), SetTimer(TimerName.ADVER, 21.0)]


def test_owner_ignore_adverts() -> None:
    m = master(replace(P, priority=255, owner_ignore_adverts=True))
    assert m.handle(adv(HIGH, 255), 1.0) == []
    assert m.state is State.MASTER


def test_garp_delay_and_refresh() -> None:
    m = master(replace(P, garp_master_refresh=30.0, garp_master_refresh_repeat=2))
    t0 = m.timers[TimerName.GARP_DELAY]
    assert m.handle(TimerFired(TimerName.GARP_DELAY), t0) == [SendGarp(5, "garp_master_delay")]
    t1 = m.timers[TimerName.GARP_REFRESH]
    assert t1 == pytest.approx(t0 + 30.0)
    actions = m.handle(TimerFired(TimerName.GARP_REFRESH), t1)
    assert actions[0] == SendGarp(2, "garp_master_refresh")
    assert timer_set(actions, TimerName.GARP_REFRESH) == pytest.approx(t1 + 30.0)


def test_min_garp_profile_sends_one_burst_only() -> None:
    m = Machine(replace(P, priority=255, garp_master_repeat=1, garp_master_delay=0))
    actions = m.handle(Startup(), 0.0)
    assert of(actions, SendGarp) == [SendGarp(1, "became master")]
    assert TimerName.GARP_DELAY not in m.timers


@pytest.mark.parametrize(
    ("accept", "prio", "expected"), [(False, 100, False), (False, 255, True), (True, 100, True)]
)
def test_accept_mode_flag(accept: bool, prio: int, expected: bool) -> None:
    m = master(replace(P, accept=accept, priority=prio))
    assert m.accept is expected


# ---- shutdown and fault ----------------------------------------------------------------------


def test_shutdown_from_master_sends_priority_zero_then_releases() -> None:
    m = master()
    actions = m.handle(Shutdown(), 50.0)
    assert m.state is State.INIT
    assert actions.index(SendAdvert(0)) < actions.index(SetVips(held=False, accept=True))
    assert m.timers == {}
    assert of(actions, Notify)[0].cause.kind is CauseKind.SHUTDOWN


def test_shutdown_without_release_keeps_the_vips_and_is_silent() -> None:
    # keepalived's -V: no priority-0 advert, no VIP released; the STOP notification still runs.
    m = master()
    actions = m.handle(Shutdown(release=False), 50.0)
    assert m.state is State.INIT
    assert not of(actions, SendAdvert) and not of(actions, SetVips)
    assert of(actions, Notify)[0].cause.kind is CauseKind.SHUTDOWN
    assert m.timers == {}


def test_shutdown_from_backup_sends_nothing() -> None:
    m = started()
    actions = m.handle(Shutdown(), 1.0)
    assert not of(actions, SendAdvert)
    assert m.state is State.INIT
    assert m.timers == {}


def test_fault_from_master_sends_priority_zero_and_recovers_to_backup() -> None:
    m = master()
    actions = m.handle(FaultChanged("track_script chk", True), 30.0)
    assert m.state is State.FAULT
    assert actions[0] == SendAdvert(0)
    assert m.timers == {}
    assert m.handle(adv(LOW, 50), 31.0) == []  # FAULT ignores adverts
    m.handle(FaultChanged("interface eth0", True), 31.0)
    assert m.handle(FaultChanged("track_script chk", False), 32.0) == []  # eth0 still down
    actions = m.handle(FaultChanged("interface eth0", False), 33.0)
    assert state(m) is State.BACKUP
    assert timer_set(actions, TimerName.MASTER_DOWN) == pytest.approx(33.0 + MDI_100)
    assert of(actions, Notify)[0].cause.kind is CauseKind.FAULT_CLEARED


def test_owner_leaves_fault_straight_to_master() -> None:
    m = master(replace(P, priority=255))
    m.handle(FaultChanged("interface eth0", True), 1.0)
    m.handle(FaultChanged("interface eth0", False), 2.0)
    assert m.state is State.MASTER


def test_stale_timer_fire_is_ignored() -> None:
    m = started()
    m.handle(adv(LOW, 150), 2.0)
    m.handle(adv(LOW, 150), 3.0)
    m.handle(Shutdown(), 3.5)
    assert m.handle(TimerFired(TimerName.MASTER_DOWN), 10.0) == []
    assert m.state is State.INIT


# ---- property: any event sequence keeps the machine consistent ------------------------------

_events = st.one_of(
    st.builds(Startup),
    st.builds(Resume),
    st.builds(Shutdown),
    st.builds(
        AdvertReceived,
        source=st.sampled_from([LOW, ME, HIGH]),
        priority=st.integers(0, 255),
        interval_cs=st.sampled_from([50, 100, 200]),
    ),
    st.builds(TimerFired, st.sampled_from(list(TimerName))),
    st.builds(PriorityChanged, st.integers(1, 254)),
    st.builds(FaultChanged, st.sampled_from(["interface eth0", "track_script a"]), st.booleans()),
)


@given(
    st.sampled_from([1, 100, 254, 255]),
    st.booleans(),
    st.lists(st.tuples(_events, st.floats(0, 5)), max_size=40),
)
def test_random_event_sequences_keep_invariants(
    prio: int, preempt: bool, steps: list[tuple[Event, float]]
) -> None:
    m = Machine(replace(P, priority=prio, preempt=preempt))
    now = 0.0
    for event, dt in steps:
        now += dt
        before = m.state
        actions = m.handle(event, now)
        notes = [a for a in actions if isinstance(a, Notify)]
        assert len(notes) <= 1
        if notes:
            assert notes[0].old is before and notes[0].new is m.state
            assert notes[0].cause.detail
        else:
            assert m.state is before
        for action in actions:
            if isinstance(action, SetTimer):
                assert action.deadline >= now
        if m.state is State.MASTER:
            assert TimerName.ADVER in m.timers
            assert TimerName.MASTER_DOWN not in m.timers
        elif m.state is State.BACKUP:
            assert TimerName.MASTER_DOWN in m.timers
            assert TimerName.ADVER not in m.timers
        elif m.resuming:  # INIT, listening before a resume
            assert m.state is State.INIT and set(m.timers) == {TimerName.RESUME}
        else:
            assert m.timers == {}
        if prio == 255:
            assert m.priority == 255
        else:
            assert 1 <= m.priority <= 254


def test_interface_down_and_up() -> None:
    m = master()
    m.handle(FaultChanged.interface("eth0", up=False), 5.0)
    assert m.state is State.FAULT
    assert m.last_cause is not None
    assert m.last_cause.source == "interface eth0"
    m.handle(FaultChanged.interface("eth0", up=True), 6.0)
    assert state(m) is State.BACKUP
