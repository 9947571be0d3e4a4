"""vrrpd's process logic: configuration, links and verdicts in; adverts, state and intent out.

The pure parts do the thinking (``plan`` maps config, ``machine`` decides, ``validate``
judges packets, ``priority`` sums trackers); this module wires them to raw sockets, one timer
heap and the bus:

* ``config.current`` -> plans -> one ``Runner`` per instance (started once netd has reported
  its interface on ``net.link``);
* datagrams -> ``validate`` -> ``AdvertReceived`` (drops counted per instance and reason);
* ``health.<name>`` and ``net.link`` -> tracker status -> ``PriorityChanged``/``FaultChanged``;
* actions -> adverts on the wire, ``vrrp.state.<instance>``, ``vrrp.intent.<instance>`` (what
  netd must install, renewed well within its lease), ``vrrp.event.<instance>``, notify scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import structlog

from bus import Component
from bus.envelope import Event as BusEvent
from core import WireFormatError, from_wire
from vrrpd import notify
from vrrpd.links import Link
from vrrpd.machine import (
    Action,
    AdvertReceived,
    CancelTimer,
    Event,
    FaultChanged,
    Log,
    Machine,
    Notify,
    PriorityChanged,
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
from vrrpd.packet import Advert, ChecksumForm, IPAddress, PreparedAdvert, prepare
from vrrpd.plan import InstancePlan, plan
from vrrpd.priority import Tracker, TrackerKind, evaluate
from vrrpd.sockets import Datagram, Receiver, Sender, SocketError
from vrrpd.timers import TimerHeap
from vrrpd.validate import Accepted, Drop, Expectations, ReceiveCounters, validate

log = structlog.get_logger(__name__)

RENEW_EVERY = 0.5  # intents are re-sent this often while held (lease is >= 1 s)
MIN_LEASE = 1.0
HEALTH_GRACE = 15.0  # a verdict not re-published for this long counts as failed
_DROP_LOG_EVERY = 5.0


class Runner:
    """One running instance: its machine, its advert bytes and what it told the bus."""

    def __init__(
        self, engine: Engine, plan: InstancePlan, link: Link, primary: IPAddress, sender: Sender
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.link = link
        self.primary = primary
        self.sender = sender
        self.machine = Machine(plan.params_for(primary))
        self.counters = ReceiveCounters()
        self.expect = self._expectations()
        self.advert = self._prepare(plan.params.priority)
        # One per unicast peer: the v3 pseudo-header checksum names the destination.
        self.peer_adverts = {
            peer: self._prepare(plan.params.priority, peer) for peer in plan.unicast_peers
        }
        self.held = False
        self.accept = True
        self.intent_generation = 0
        self.announce = 0
        self.garp_count = 0
        self.status: dict[Tracker, bool | int | None] = {}
        self.faults: frozenset[str] = frozenset()
        self.last_peer_addresses: dict[IPAddress, tuple[IPAddress, ...]] = {}
        self._drop_logged: dict[str, float] = {}

    @property
    def name(self) -> str:
        return self.plan.name

    def _expectations(self) -> Expectations:
        p = self.plan
        return Expectations(
            vrid=p.vrid,
            version=p.version,
            family=p.family,
            interval_cs=p.params.interval_cs,
            addresses=p.vips,
            priority=p.params.priority,
            auth_type=p.auth_type,
            auth_pass=p.auth_pass,
            unicast=p.unicast,
            check_unicast_src=p.check_unicast_src,
            unicast_peers=frozenset(p.unicast_peers),
            own_addresses=frozenset({self.primary}),
            checksum_any=p.checksum_as_v2,
        )

    def _prepare(self, priority: int, dst: IPAddress | None = None) -> PreparedAdvert:
        p = self.plan
        if dst is None:
            dst = p.unicast_peers[0] if p.unicast else p.mcast_group
        form = ChecksumForm.PSEUDO
        advert = Advert(
            version=p.version,
            vrid=p.vrid,
            priority=priority,
            addresses=p.vips,
            interval=p.params.interval_cs if p.version == 3 else p.params.interval_cs // 100,
            family=p.family,
            auth_type=p.auth_type,
            auth_data=p.auth_pass.ljust(8, b"\0") if p.auth_pass else bytes(8),
        )
        return prepare(advert, src=self.primary, dst=dst, form=form)

    # ---- inputs ------------------------------------------------------------------------------

    def feed(self, event: Event, now: float) -> None:
        self.execute(self.machine.handle(event, now), now)

    def receive(self, dgram: Datagram, now: float) -> None:
        result = validate(dgram.payload, dgram.facts, self.expect)
        self.counters.record(result)
        if isinstance(result, Drop):
            self._log_drop(result, now)
            return
        assert isinstance(result, Accepted)
        for note in result.notes:
            self._log_drop(note, now, accepted=True)
        self.last_peer_addresses[result.source] = result.advert.addresses
        self.feed(AdvertReceived.from_advert(result.advert, result.source), now)

    def _log_drop(self, item: Drop | Any, now: float, accepted: bool = False) -> None:
        reason = str(item.reason)
        if now - self._drop_logged.get(reason, -_DROP_LOG_EVERY) < _DROP_LOG_EVERY:
            return
        self._drop_logged[reason] = now
        event = "vrrpd.advert.mismatch" if accepted else "vrrpd.advert.dropped"
        log.warning(
            event,
            instance=self.name,
            reason=reason,
            detail=item.detail,
            count=self.counters.snapshot().get(reason, 0),
        )

    def trackers_changed(self, now: float) -> None:
        verdict = evaluate(self.plan.params.priority, self.plan.trackers, self.status)
        faults = set(verdict.faults)
        if self.plan.track_own_interface and not self.link.up:
            faults.add(f"interface {self.plan.interface}")
        for source in sorted(faults - self.faults):
            self.feed(FaultChanged(source, faulty=True), now)
        for source in sorted(self.faults - faults):
            self.feed(FaultChanged(source, faulty=False), now)
        self.faults = frozenset(faults)
        if verdict.priority != self.machine.priority:
            self.feed(PriorityChanged(verdict.priority, verdict.reason), now)

    # ---- outputs -----------------------------------------------------------------------------

    def execute(self, actions: list[Action], now: float) -> None:
        eng = self.engine
        for action in actions:
            match action:
                case SendAdvert(priority=prio):
                    self.send_advert(prio)
                case SetTimer(timer=timer, deadline=deadline):
                    eng.timers.set(self.name, timer.value, deadline)
                case CancelTimer(timer=timer):
                    eng.timers.cancel(self.name, timer.value)
                case SetVips(held=held, accept=accept):
                    self.held, self.accept = held, accept
                    self.intent_generation += 1
                    self.publish_intent()
                case SendGarp(count=count, reason=reason):
                    self.announce += 1
                    self.garp_count = count
                    log.info("vrrpd.garp", instance=self.name, count=count, reason=reason)
                    self.publish_intent()
                case Notify():
                    self.notify(action)
                case RxLowerPriority(peer=peer, priority=prio):
                    eng.publish_event(self, "split_brain", peer=peer, priority=prio)
                    eng.notifier.submit(notify.rx_lower_jobs(self.name, self.plan.notify))
                case Log(event=event, detail=detail, peer=peer):
                    level = "warning" if "split_brain" in event else "info"
                    getattr(log, level)(
                        event, instance=self.name, detail=detail, peer=str(peer) if peer else None
                    )

    def send_advert(self, priority: int) -> None:
        if priority != self.advert.priority:
            self.advert = self.advert.with_priority(priority)
            self.peer_adverts = {
                peer: advert.with_priority(priority) for peer, advert in self.peer_adverts.items()
            }
        if self.plan.unicast:
            for peer, advert in self.peer_adverts.items():
                self.sender.send(advert.wire, peer)
        else:
            self.sender.send(self.advert.wire, self.plan.mcast_group)

    @property
    def lease(self) -> float:
        return max(MIN_LEASE, self.machine.master_down_interval)

    def intent_body(self) -> dict[str, Any]:
        return {
            "instance": self.name,
            "generation": self.intent_generation,
            "items": list(self.plan.net_items) if self.held else [],
            "held": self.held,
            "lease": self.lease,
            "interface": self.plan.interface,
            "family": self.plan.family,
            "accept": self.accept,
            "announce": self.announce,
            "garp_count": self.garp_count,
            "garp": self.plan.garp,
        }

    def publish_intent(self) -> None:
        self.engine.comp.publisher.retain(f"vrrp.intent.{self.name}", self.intent_body())

    def state_body(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        m = self.machine
        body: dict[str, Any] = {
            "instance": self.name,
            "state": m.state.value,
            "priority": m.priority,
            "base_priority": self.plan.params.priority,
            "vrid": self.plan.vrid,
            "interface": self.plan.interface,
            "family": self.plan.family,
            "version": self.plan.version,
            "master": str(m.master_peer) if m.state is State.BACKUP and m.master_peer else None,
            "vips": [str(v) for v in self.plan.vips],
            "faults": sorted(self.faults),
            "drops": self.counters.snapshot(),
            "transitions": m.transitions,
        }
        if extra:
            body.update(extra)
        return body

    def notify(self, action: Notify) -> None:
        cause = action.cause
        fields = {
            "old": action.old.value,
            "new": action.new.value,
            "cause": cause.detail,
            "cause_kind": cause.kind.value,
        }
        if cause.peer is not None:
            fields["peer"] = str(cause.peer)
        if cause.timer is not None:
            fields["timer"] = cause.timer.value
        if cause.source is not None:
            fields["tracker"] = cause.source
        self.engine.comp.publisher.retain(f"vrrp.state.{self.name}", self.state_body(fields))
        log.info("vrrp.state", instance=self.name, priority=action.priority, **fields)
        state = "STOP" if self.engine.stopping else action.new.value
        if state in ("MASTER", "BACKUP", "FAULT", "STOP"):
            self.engine.notifier.submit(
                notify.jobs_for(self.name, self.plan.notify, state, action.priority)
            )

    def close(self) -> None:
        self.engine.timers.cancel_instance(self.name)


class Engine:
    def __init__(self, comp: Component) -> None:
        self.comp = comp
        self.timers = TimerHeap(self._timer_fired)
        self.notifier = notify.NotifyQueues()
        self.links: dict[str, Link] = {}
        self.plans: dict[str, InstancePlan] = {}
        self.runners: dict[str, Runner] = {}
        self.receivers: dict[tuple[int, str], Receiver] = {}
        self.senders: dict[tuple[int, str, IPAddress], Sender] = {}
        self.by_vrid: dict[tuple[str, int, int], Runner] = {}
        self.health: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self.config_hash: str | None = None
        self.stopping = False
        self._stale_logged: set[str] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def now(self) -> float:
        return self.loop.time()

    async def run(self) -> None:
        sub = self.comp.subscribe("config.current", "net.link.*", "health.*")
        renew = asyncio.create_task(self._renew_loop(), name="vrrpd.renew")
        try:
            while True:
                for event in await sub.recv_batch():
                    self._dispatch(event)
        finally:
            renew.cancel()
            await self.shutdown()

    def _dispatch(self, event: BusEvent) -> None:
        root = event.topic.split(".", 1)[0]
        try:
            if event.topic == "config.current":
                self.apply_config(event.body)
            elif event.topic.startswith("net.link."):
                self.link_changed(Link.from_event(event.body))
            elif root == "health":
                self.health_changed(event.body)
        except (KeyError, TypeError, ValueError, WireFormatError) as exc:
            log.error(
                "vrrpd.input.invalid",
                topic=event.topic,
                src=event.env.src,
                reason=f"{type(exc).__name__}: {exc}",
            )

    # ---- configuration -----------------------------------------------------------------------

    def apply_config(self, body: Mapping[str, Any]) -> None:
        digest = body["hash"]
        if digest == self.config_hash:
            return
        config = from_wire(body["model"])
        new_plans = {p.name: p for p in plan(config)}
        now = self.now()
        for name in list(self.runners):
            if new_plans.get(name) != self.plans.get(name):
                self._stop_runner(name, now, reason="configuration changed")
        self.plans = new_plans
        self.config_hash = digest
        log.info("vrrpd.config", generation=body["generation"], instances=len(new_plans))
        self._start_pending(now)

    def _start_pending(self, now: float) -> None:
        for name, p in self.plans.items():
            if name in self.runners:
                continue
            link = self.links.get(p.interface)
            if link is None:
                continue
            taken = {v for q in self.plans.values() for v in q.vips}
            primary = p.unicast_src or link.primary(p.family, exclude=taken)
            if primary is None:
                log.warning(
                    "vrrpd.instance.waiting",
                    instance=name,
                    interface=p.interface,
                    reason=f"no IPv{p.family} address to send adverts from",
                )
                continue
            try:
                runner = self._make_runner(p, link, primary)
            except SocketError as exc:
                log.error("vrrpd.instance.socket", instance=name, reason=str(exc))
                continue
            self.runners[name] = runner
            self.by_vrid[(p.interface, p.family, p.vrid)] = runner
            log.info(
                "vrrpd.instance.started",
                instance=name,
                interface=p.interface,
                vrid=p.vrid,
                version=p.version,
                family=p.family,
                primary=str(primary),
            )
            self._refresh_trackers(runner)
            runner.feed(Startup(), now)
            runner.trackers_changed(now)
            self.comp.publisher.retain(f"vrrp.state.{name}", runner.state_body())

    def _make_runner(self, p: InstancePlan, link: Link, primary: IPAddress) -> Runner:
        key = (p.family, p.interface)
        receiver = self.receivers.get(key)
        if receiver is None:
            receiver = self.receivers[key] = Receiver(p.family, p.interface, link.ifindex)
            self.loop.add_reader(receiver.fileno(), self._readable, receiver)
        if not p.unicast:
            receiver.join(p.mcast_group)
        skey = (p.family, p.interface, primary)
        sender = self.senders.get(skey)
        if sender is None:
            sender = self.senders[skey] = Sender(p.family, p.interface, link.ifindex, primary)
        return Runner(self, p, link, primary, sender)

    def _stop_runner(self, name: str, now: float, reason: str) -> None:
        runner = self.runners.pop(name)
        runner.feed(Shutdown(reason), now)
        runner.close()
        self.by_vrid.pop((runner.plan.interface, runner.plan.family, runner.plan.vrid), None)
        self.comp.publisher.forget(f"vrrp.state.{name}")
        log.info("vrrpd.instance.stopped", instance=name, reason=reason)

    # ---- inputs ------------------------------------------------------------------------------

    def _readable(self, receiver: Receiver) -> None:
        now = self.now()
        try:
            datagrams = receiver.drain()
        except SocketError as exc:
            log.error("vrrpd.socket.error", interface=receiver.ifname, reason=str(exc))
            return
        for dgram in datagrams:
            vrid = dgram.payload[1] if len(dgram.payload) > 1 else -1
            runner = self.by_vrid.get((dgram.ifname, receiver.family, vrid))
            if runner is not None:
                runner.receive(dgram, now)

    def _timer_fired(self, instance: str, timer: str, now: float) -> None:
        runner = self.runners.get(instance)
        if runner is not None:
            runner.feed(TimerFired(TimerName(timer)), now)

    def link_changed(self, link: Link) -> None:
        old = self.links.get(link.name)
        self.links[link.name] = link
        now = self.now()
        for runner in self.runners.values():
            if runner.plan.interface == link.name or any(
                t.kind is TrackerKind.INTERFACE and t.name == link.name
                for t in runner.plan.trackers
            ):
                if runner.plan.interface == link.name:
                    runner.link = link
                self._refresh_trackers(runner)
                runner.trackers_changed(now)
        if old is None or old.addresses != link.addresses:
            self._start_pending(now)

    def health_changed(self, body: Mapping[str, Any]) -> None:
        name = str(body["name"])
        self.health[name] = (time.monotonic(), body)
        self._stale_logged.discard(name)
        now = self.now()
        for runner in self.runners.values():
            if any(
                t.name == name and t.kind is not TrackerKind.INTERFACE for t in runner.plan.trackers
            ):
                self._refresh_trackers(runner)
                runner.trackers_changed(now)

    def _refresh_trackers(self, runner: Runner) -> None:
        for tracker in runner.plan.trackers:
            runner.status[tracker] = self._status(tracker)

    def _status(self, tracker: Tracker) -> bool | int | None:
        if tracker.kind is TrackerKind.INTERFACE:
            link = self.links.get(tracker.name)
            return None if link is None else link.up
        seen = self.health.get(tracker.name)
        if seen is None:
            return None
        at, body = seen
        if time.monotonic() - at > HEALTH_GRACE:
            return False  # its publisher went silent: treated as failed (DESIGN.md)
        if tracker.kind is TrackerKind.FILE:
            value = body.get("value")
            return int(value) if isinstance(value, int) else (0 if body.get("ok") else 1)
        return bool(body.get("ok"))

    async def _renew_loop(self) -> None:
        """Renew held intents well within their lease; age out verdicts nobody re-sends."""
        while True:
            await asyncio.sleep(RENEW_EVERY)
            now = self.now()
            for name, (at, _body) in self.health.items():
                if time.monotonic() - at > HEALTH_GRACE and name not in self._stale_logged:
                    self._stale_logged.add(name)
                    log.error(
                        "vrrpd.health.stale",
                        name=name,
                        grace=HEALTH_GRACE,
                        detail="no verdict re-published; treating it as failed",
                    )
                    for runner in self.runners.values():
                        self._refresh_trackers(runner)
                        runner.trackers_changed(now)
            for runner in self.runners.values():
                if runner.held:
                    runner.publish_intent()

    def publish_event(self, runner: Runner, kind: str, *, peer: IPAddress, priority: int) -> None:
        addrs = runner.last_peer_addresses.get(peer, ())
        body = {
            "instance": runner.name,
            "kind": kind,
            "peer": str(peer),
            "peer_priority": priority,
            "peer_vips": [str(a) for a in addrs],
            "priority": runner.machine.priority,
            "vips": [str(v) for v in runner.plan.vips],
        }
        log.error(
            "vrrp.event.split_brain",
            **{k: v for k, v in body.items() if k != "instance"},
            instance=runner.name,
        )
        self.comp.publisher.publish(f"vrrp.event.{runner.name}", body)

    # ---- shutdown ----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """keepalived's stop: priority-0 adverts from masters, withdraw, STOP notifications."""
        self.stopping = True
        now = self.now()
        for name in list(self.runners):
            self._stop_runner(name, now, reason="daemon stopping")
        await self.notifier.drain(notify.STOP_TIMEOUT + 0.5)
        await self.notifier.close()
        self.timers.close()
        for receiver in self.receivers.values():
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(receiver.fileno())
            receiver.close()
        for sender in self.senders.values():
            sender.close()
