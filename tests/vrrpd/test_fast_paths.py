"""The per-advert shortcuts (Machine.renew_master, Machine.renew_adver) against handle(), and
the timer heap that stops queueing a deadline that only moves later, against a plain model."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vrrpd.test_machine import HIGH, LOW, ME, P
from vrrpd.machine import (
    AdvertReceived,
    Event,
    FaultChanged,
    Machine,
    PriorityChanged,
    SendAdvert,
    SetTimer,
    Shutdown,
    Startup,
    State,
    TimerFired,
    TimerName,
)
from vrrpd.timers import TimerHeap


def snapshot(m: Machine) -> dict[str, Any]:
    return {k: v for k, v in vars(m).items() if k not in ("params", "sync_gate")}


# Mostly adverts, from few sources with few priorities, so the same master's advert repeats.
_advert = st.one_of(
    st.just(AdvertReceived(HIGH, 150, 100)),
    st.just(AdvertReceived(LOW, 50, 100)),
    st.builds(
        AdvertReceived,
        source=st.sampled_from([LOW, ME, HIGH]),
        priority=st.sampled_from([0, 50, 100, 150, 255]),
        interval_cs=st.sampled_from([100, 200]),
    ),
)
_events = st.one_of(
    _advert,
    _advert,
    _advert,
    st.builds(Startup),
    st.builds(Shutdown),
    st.builds(TimerFired, st.sampled_from(list(TimerName))),
    st.builds(PriorityChanged, st.sampled_from([50, 100, 150])),
    st.builds(FaultChanged, st.just("interface eth0"), st.booleans()),
)


@settings(max_examples=300)
@given(
    st.sampled_from([50, 100, 150, 255]),
    st.booleans(),
    st.sampled_from([0.0, 2.0]),
    st.booleans(),
    st.sampled_from([2, 3]),
    st.lists(st.tuples(_events, st.floats(0, 2)), max_size=60),
)
def test_the_shortcuts_do_exactly_what_handle_does_or_nothing(
    prio: int,
    preempt: bool,
    preempt_delay: float,
    owner_ignores: bool,
    version: int,
    steps: list[tuple[Event, float]],
) -> None:
    params = replace(
        P,
        priority=prio,
        preempt=preempt,
        preempt_delay=preempt_delay,
        owner_ignore_adverts=owner_ignores,
        version=version,
    )
    m = Machine(params)
    now = 0.0
    for event, dt in [(Startup(), 0.0), *steps]:
        now += dt
        shortcut = copy.deepcopy(m)
        before = snapshot(shortcut)
        if isinstance(event, AdvertReceived):
            deadline = shortcut.renew_master(event, now)
            expected: list[Any] = [SetTimer(TimerName.MASTER_DOWN, deadline or 0.0)]
        elif isinstance(event, TimerFired) and event.timer is TimerName.ADVER:
            deadline = shortcut.renew_adver(now)
            expected = [SendAdvert(m.priority), SetTimer(TimerName.ADVER, deadline or 0.0)]
        else:
            deadline = None
        actions = m.handle(event, now)
        if deadline is None:
            assert snapshot(shortcut) == before  # declined: nothing changed
        else:
            assert actions == expected
            assert snapshot(shortcut) == snapshot(m)


def test_a_backup_takes_the_shortcut_for_its_masters_repeated_advert_only() -> None:
    m = Machine(P)
    m.handle(Startup(), 0.0)
    first = AdvertReceived(HIGH, 150, 100)
    assert m.renew_master(first, 1.0) is None  # a new master: logged, so handle() it
    m.handle(first, 1.0)
    assert m.renew_master(AdvertReceived(HIGH, 150, 100), 1.1) == m.timers[TimerName.MASTER_DOWN]
    assert m.renew_master(AdvertReceived(HIGH, 140, 100), 1.2) is None  # priority changed
    assert m.renew_master(AdvertReceived(HIGH, 150, 200), 1.2) is None  # interval changed
    assert m.renew_master(AdvertReceived(LOW, 150, 100), 1.2) is None  # another router
    assert m.renew_master(AdvertReceived(HIGH, 0, 100), 1.2) is None  # it resigns
    assert m.state is State.BACKUP


def test_no_shortcut_once_our_priority_rises_above_the_masters() -> None:
    m = Machine(P)
    m.handle(Startup(), 0.0)
    m.handle(AdvertReceived(HIGH, 150, 100), 1.0)
    m.handle(PriorityChanged(200), 1.05)  # a tracker: now we should preempt HIGH
    down = m.timers[TimerName.MASTER_DOWN]
    assert m.renew_master(AdvertReceived(HIGH, 150, 100), 1.1) is None
    assert m.handle(AdvertReceived(HIGH, 150, 100), 1.1) != []  # discarded, timer left alone
    assert m.timers[TimerName.MASTER_DOWN] == down


# ---- the timer heap ---------------------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.floats(0, 0.3),  # time passing first
        st.sampled_from(["VI_1", "VI_2", "VI_3"]),
        st.sampled_from(["master_down", "adver"]),
        st.one_of(st.none(), st.floats(0, 1)),  # None: cancel, else a deadline this far ahead
    ),
    max_size=80,
)


@given(_ops)
def test_timer_heap_fires_each_latest_deadline_once_and_on_time(
    ops: list[tuple[float, str, str, float | None]],
) -> None:
    """Against a model (the latest deadline of each timer): every due timer fires once, at its
    latest deadline or when the clock next moves past it, never early, never when cancelled;
    and the loop handle is never armed after the earliest pending deadline."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        clock = [loop.time()]
        fired: list[tuple[str, str, float]] = []
        heap = TimerHeap(lambda inst, timer, now: fired.append((inst, timer, now)))
        model: dict[tuple[str, str], float] = {}
        try:
            loop.time = lambda: clock[0]  # type: ignore[method-assign]  # a fake clock

            def advance(to: float) -> None:
                # What the loop would do: run the heap's handle at its time, as often as due.
                while heap._handle_at is not None and heap._handle_at <= to:
                    clock[0] = max(clock[0], heap._handle_at)
                    assert heap._handle is not None
                    heap._handle.cancel()
                    heap._run()
                clock[0] = to

            for dt, inst, timer, ahead in ops:
                target = clock[0] + dt
                due_now = sorted((d, k) for k, d in model.items() if d <= target)
                fired.clear()
                advance(target)
                assert [(i, t) for i, t, _ in fired] == [k for _, k in due_now]
                for (_, _, at), (d, _) in zip(fired, due_now, strict=True):
                    assert d <= at <= target
                for _, k in due_now:
                    del model[k]
                if ahead is None:
                    heap.cancel(inst, timer)
                    model.pop((inst, timer), None)
                else:
                    heap.set(inst, timer, clock[0] + ahead)
                    model[(inst, timer)] = clock[0] + ahead
                if model:
                    assert heap._handle_at is not None
                    assert heap._handle_at <= min(model.values())
            fired.clear()
            advance(clock[0] + 2.0)
            assert sorted((i, t) for i, t, _ in fired) == sorted(model)
        finally:
            del loop.time
            heap.close()

    asyncio.run(scenario())


def test_a_deadline_that_only_moves_later_stays_one_heap_entry() -> None:
    async def scenario() -> tuple[int, list[str]]:
        fired: list[str] = []
        heap = TimerHeap(lambda inst, timer, now: fired.append(inst))
        now = asyncio.get_running_loop().time()
        for i in range(100):  # a backup hearing its master: pushed back every advert
            heap.set("VI_1", "master_down", now + 0.02 + i * 0.001)
        entries = len(heap._heap)
        await asyncio.sleep(0.2)
        heap.close()
        return entries, fired

    entries, fired = asyncio.run(scenario())
    assert entries == 1
    assert fired == ["VI_1"]


_EARLY = 0.002


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 0.3),  # time passing first
            st.sampled_from(["VI_1", "VI_2", "VI_3", "VI_4"]),
            st.sampled_from(["master_down", "adver"]),
            st.floats(0.0005, 0.5),  # a deadline this far ahead
        ),
        max_size=40,
    ),
    st.floats(0.01, 0.2),  # advert interval: a fired advert re-arms itself so far ahead
)
def test_timers_re_armed_by_their_callbacks_never_delay_others_and_only_adverts_go_early(
    ops: list[tuple[float, str, str, float]], interval: float
) -> None:
    """A master's advert timer re-arms itself from its own callback: that must not push back
    any other pending timer (a backup's master-down above all), and only an advert may go
    out early, by at most its allowance."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        clock = [loop.time()]
        model: dict[tuple[str, str], float] = {}
        rearms = [0]

        def fire(inst: str, timer: str, now: float) -> None:
            deadline = model.pop((inst, timer))
            allowance = _EARLY if timer == "adver" else 0.0
            assert deadline - allowance <= now <= deadline, (inst, timer, deadline, now)
            if timer == "adver" and rearms[0] < 200:
                rearms[0] += 1
                model[(inst, timer)] = now + interval
                heap.set(inst, timer, now + interval)

        heap = TimerHeap(fire, early={"adver": _EARLY})
        try:
            loop.time = lambda: clock[0]  # type: ignore[method-assign]  # a fake clock

            def advance(to: float) -> None:
                while heap._handle_at is not None and heap._handle_at <= to:
                    clock[0] = max(clock[0], heap._handle_at)
                    assert heap._handle is not None
                    heap._handle.cancel()
                    heap._run()
                clock[0] = to

            for dt, inst, timer, ahead in ops:
                advance(clock[0] + dt)
                model[(inst, timer)] = clock[0] + ahead
                heap.set(inst, timer, clock[0] + ahead)
            rearms[0] = 200  # stop re-arming, let everything left fire
            advance(clock[0] + 2.0)
            assert model == {}
        finally:
            del loop.time
            heap.close()

    asyncio.run(scenario())


def test_an_advert_re_armed_from_its_callback_does_not_hold_back_a_master_down() -> None:
    # Found by the property above: the handle armed for the re-armed advert (100 ms on) was
    # left in place although a master-down timer was due 10 ms later.
    async def scenario() -> tuple[float | None, list[str]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        clock = [start]
        fired: list[str] = []

        def fire(inst: str, timer: str, now: float) -> None:
            fired.append(inst)
            heap.set(inst, timer, now + 0.1)

        heap = TimerHeap(fire)
        try:
            loop.time = lambda: clock[0]  # type: ignore[method-assign]  # a fake clock
            heap.set("VI_1", "adver", start + 0.01)
            heap.set("VI_2", "master_down", start + 0.02)
            clock[0] = start + 0.01
            assert heap._handle is not None
            heap._handle.cancel()
            heap._run()
            return (None if heap._handle_at is None else heap._handle_at - start), fired
        finally:
            del loop.time
            heap.close()

    next_wake, fired = asyncio.run(scenario())
    assert fired == ["VI_1"]
    assert next_wake == pytest.approx(0.02)  # the master-down's time, not the advert's 0.11
