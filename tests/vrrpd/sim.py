"""Simulation harness: N VRRP machines on one simulated segment, in virtual time.

Each router is a :class:`vrrpd.machine.Machine` driven exactly as the real driver will drive
it: adverts are encoded with :mod:`vrrpd.packet` (prepared once, ``with_priority`` for other
priorities), delivered to every other live router after a random delay unless lost, validated
with :mod:`vrrpd.validate`, and fed back as ``AdvertReceived``. Timers are a heap with lazy
deletion (a popped timer whose deadline no longer matches the router's armed one is stale).

Every transition is checked for a cause that matches the event that produced it (a TIMER cause
only from that timer firing, an ADVERT cause only from an advert by that peer, ...).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from vrrpd.machine import (
    Action,
    AdvertReceived,
    CancelTimer,
    CauseKind,
    Event,
    FaultChanged,
    InstanceParams,
    Machine,
    Notify,
    PriorityChanged,
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
from vrrpd.packet import MCAST_V4, Advert, PreparedAdvert, prepare
from vrrpd.validate import Accepted, Expectations, IpFacts, validate

VIP = IPv4Address("192.0.2.100")


@dataclass
class Transition:
    time: float
    router: str
    old: State
    new: State
    notify: Notify


@dataclass
class Router:
    name: str
    params: InstanceParams
    machine: Machine
    expect: Expectations
    prepared: PreparedAdvert
    alive: bool = True
    vips_held: bool = False
    garps: int = 0
    sent: list[tuple[float, int]] = field(default_factory=list)
    #: time and priority of the last advert this router accepted, per sender
    heard: dict[IPv4Address, tuple[float, int]] = field(default_factory=dict)

    @property
    def address(self) -> IPv4Address:
        addr = self.params.primary_address
        assert isinstance(addr, IPv4Address)
        return addr


class CauseError(AssertionError):
    pass


class Segment:
    """One broadcast segment, one VRID, any number of routers."""

    def __init__(
        self,
        *,
        seed: int = 0,
        loss: float = 0.0,
        delay: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.now = 0.0
        self.rng = random.Random(seed)
        self.loss = loss
        self.delay = delay
        self.routers: dict[str, Router] = {}
        self.transitions: list[Transition] = []
        self._queue: list[tuple[float, int, str, str, object]] = []
        self._seq = itertools.count()

    # ---- building ------------------------------------------------------------------------------

    def add(self, params: InstanceParams) -> Router:
        advert = Advert(
            version=params.version,
            vrid=params.vrid,
            priority=params.priority,
            addresses=(VIP,),
            interval=params.interval_cs // 100 if params.version == 2 else params.interval_cs,
        )
        router = Router(
            name=params.name,
            params=params,
            machine=Machine(params),
            expect=Expectations(
                vrid=params.vrid,
                version=params.version,
                interval_cs=params.interval_cs,
                addresses=(VIP,),
                priority=params.priority,
                own_addresses=frozenset({params.primary_address}),
            ),
            prepared=prepare(advert, src=params.primary_address, dst=MCAST_V4),
        )
        self.routers[params.name] = router
        return router

    # ---- scheduling ----------------------------------------------------------------------------

    def _push(self, at: float, kind: str, router: str, payload: object) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), kind, router, payload))

    def at(self, when: float, router: str, event: Event | str) -> None:
        """Schedule an input: a machine event, or "crash" / "restart" / "resume" (a restart
        that finds netd still holding its VIPs: the new machine gets Resume, not Startup)."""
        self._push(when, "input", router, event)

    def run_until(self, until: float, check: Callable[[Segment], None] | None = None) -> None:
        """Process everything due up to ``until``; ``check(segment)`` runs after each step."""
        while self._queue and self._queue[0][0] <= until:
            when, _, kind, name, payload = heapq.heappop(self._queue)
            self.now = when
            router = self.routers[name]
            if kind == "timer":
                assert isinstance(payload, TimerName)
                if not router.alive or router.machine.timers.get(payload) != when:
                    continue  # stale entry (re-armed, cancelled or crashed since)
                self._feed(router, TimerFired(payload))
            elif kind == "deliver":
                assert isinstance(payload, tuple)
                self._deliver(router, *payload)
            elif kind == "input":
                self._input(router, payload)
            if check is not None:
                check(self)
        self.now = max(self.now, until)

    # ---- execution -----------------------------------------------------------------------------

    def _input(self, router: Router, payload: object) -> None:
        if payload == "crash":
            # kill -9: no priority-0 advert, timers gone; VIPs die with the process here.
            router.alive = False
            router.vips_held = False
            return
        if payload in ("restart", "resume"):
            router.machine = Machine(router.params)
            router.alive = True
            router.heard.clear()
            self._feed(router, Startup() if payload == "restart" else Resume())
            return
        if router.alive:
            assert isinstance(
                payload, (Startup, Shutdown, PriorityChanged, FaultChanged, TimerFired)
            )
            self._feed(router, payload)

    def _deliver(self, router: Router, src: IPv4Address, wire: bytes) -> None:
        if not router.alive:
            return
        result = validate(wire, IpFacts(src=src, dst=MCAST_V4, ttl=255), router.expect)
        if not isinstance(result, Accepted):
            raise AssertionError(f"simulated advert dropped: {result}")
        router.heard[src] = (self.now, result.advert.priority)
        self._feed(router, AdvertReceived.from_advert(result.advert, src))

    def _feed(self, router: Router, event: Event) -> None:
        before = router.machine.state
        actions = router.machine.handle(event, self.now)
        self._check_causes(router, event, before, actions)
        for action in actions:
            self._execute(router, action)

    def _check_causes(
        self, router: Router, event: Event, before: State, actions: list[Action]
    ) -> None:
        notes = [a for a in actions if isinstance(a, Notify)]
        if router.machine.state is not before and not notes:
            raise CauseError(f"{router.name}: {before} -> {router.machine.state} silently")
        for n in notes:
            cause = n.cause
            ok = bool(cause.detail)
            if cause.kind is CauseKind.TIMER:
                ok = ok and isinstance(event, TimerFired) and event.timer is cause.timer
            elif cause.kind is CauseKind.ADVERT:
                ok = ok and isinstance(event, AdvertReceived) and event.source == cause.peer
            elif cause.kind is CauseKind.STARTUP:
                # A resume stopped by an advert starts as usual, naming that advert.
                ok = ok and (
                    isinstance(event, Startup)
                    or (isinstance(event, Resume | AdvertReceived) and cause.peer is not None)
                )
            elif cause.kind is CauseKind.RESUMED:
                ok = ok and event == TimerFired(TimerName.RESUME)
            elif cause.kind is CauseKind.SHUTDOWN:
                ok = ok and isinstance(event, Shutdown)
            elif cause.kind in (CauseKind.FAULT, CauseKind.FAULT_CLEARED):
                ok = ok and isinstance(event, (FaultChanged, Startup))
            if not ok:
                raise CauseError(f"{router.name}: {n} does not match event {event}")
            self.transitions.append(Transition(self.now, router.name, n.old, n.new, n))

    def _execute(self, router: Router, action: Action) -> None:
        if isinstance(action, SetTimer):
            assert action.deadline >= self.now
            self._push(action.deadline, "timer", router.name, action.timer)
        elif isinstance(action, CancelTimer):
            pass  # lazy deletion: the machine no longer lists it, the heap entry goes stale
        elif isinstance(action, SendAdvert):
            router.prepared = router.prepared.with_priority(action.priority)
            router.sent.append((self.now, action.priority))
            for other in self.routers.values():
                if other is router or not other.alive:
                    continue
                if self.loss and self.rng.random() < self.loss:
                    continue
                lag = self.rng.uniform(*self.delay) if self.delay[1] else self.delay[0]
                self._push(
                    self.now + lag, "deliver", other.name, (router.address, router.prepared.wire)
                )
        elif isinstance(action, SetVips):
            router.vips_held = action.held
        elif isinstance(action, SendGarp):
            router.garps += action.count

    # ---- observations --------------------------------------------------------------------------

    def masters(self) -> list[Router]:
        return [r for r in self.routers.values() if r.alive and r.machine.state is State.MASTER]

    def vip_holders(self) -> list[Router]:
        return [r for r in self.routers.values() if r.alive and r.vips_held]


# ---- measurement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Takeover:
    """Timing of one failover, in virtual seconds."""

    last_heard: float  # when the new master last accepted an advert from the old one
    took_over: float  # when it became MASTER
    expected_interval: float  # the interval the machine promises (MDI, or skew after prio 0)

    @property
    def detection(self) -> float:
        return self.took_over - self.last_heard


def measure_takeover(
    *,
    priorities: tuple[int, ...] = (200, 150, 100),
    interval_cs: int = 100,
    version: int = 3,
    delay: float = 0.0,
    fail_at: float = 10.3,
    graceful: bool = False,
) -> tuple[Segment, Takeover]:
    """Let the first router win, crash (or stop) it at ``fail_at``; time the takeover."""
    seg = Segment(delay=(delay, delay))
    names = []
    for i, prio in enumerate(priorities):
        name = f"r{i}"
        names.append(name)
        seg.add(
            InstanceParams(
                name=name,
                vrid=51,
                version=version,
                primary_address=IPv4Address(f"192.0.2.{10 + i}"),
                priority=prio,
                interval_cs=interval_cs,
            )
        )
        seg.at(0.0, name, Startup())
    old, new = seg.routers[names[0]], seg.routers[names[1]]
    seg.run_until(fail_at)
    assert seg.masters() == [old], "the highest priority should hold the VRID before the failure"
    seg.at(fail_at, old.name, Shutdown() if graceful else "crash")
    horizon = fail_at + 10 * interval_cs / 100 + 5
    seg.run_until(horizon)
    took = [t for t in seg.transitions if t.router == new.name and t.new is State.MASTER]
    assert took, "the next router never took over"
    last_heard, _ = new.heard[old.address]
    machine = new.machine
    expected = machine.skew_time if graceful else machine.master_down_interval
    return seg, Takeover(last_heard, took[-1].time, expected)


if __name__ == "__main__":
    print("interval  prio  kind      detection s   expected s")
    for interval in (100, 10, 1):
        for graceful in (False, True):
            _, t = measure_takeover(interval_cs=interval, graceful=graceful)
            kind = "prio-0" if graceful else "crash"
            print(
                f"{interval:>5} cs  150  {kind:8s} {t.detection:12.6f} {t.expected_interval:12.6f}"
            )
