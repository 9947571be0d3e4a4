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
import signal
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import structlog

from bus import Component
from bus.component import SIGJSON
from bus.envelope import Event as BusEvent
from checkd.plan import ScriptSpec
from core import Script, WireFormatError, from_wire
from vrrpd import dumps, notify
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
from vrrpd.plan import InstancePlan, notify_specs, plan
from vrrpd.priority import Tracker, TrackerKind, evaluate
from vrrpd.sockets import Datagram, Receiver, Sender, SocketError
from vrrpd.syncgroup import GroupNotify, SyncGroup
from vrrpd.timers import TimerHeap
from vrrpd.validate import Accepted, Drop, Expectations, ReceiveCounters, validate

log = structlog.get_logger(__name__)

RENEW_EVERY = 0.5  # held intents are renewed this often (lease is >= 1 s)
# After each change an intent is re-sent whole this many renewal rounds, so a lost one costs
# one round as before; later rounds renew it by generation only (one vrrp.renew for all).
FULL_ROUNDS = 4
MIN_LEASE = 1.0
HEALTH_GRACE = 15.0  # a verdict not re-published for this long counts as failed
_DROP_LOG_EVERY = 5.0
# Notices a peer can trigger with every advert (split brain: 10 a second at advert_int 0.1)
# are logged, and published on vrrp.event, at most this often per (instance, notice, peer);
# the next one says how many were held back (RFC 9568 asks to rate-limit such logs).
_NOTICE_EVERY = 1.0
_PER_ADVERT_NOTICES = frozenset(
    {"vrrpd.split_brain", "vrrpd.advert.lower_prio_discarded", "vrrpd.advert.own_address"}
)


class NoticeLimiter:
    """At most one notice per key every ``every`` seconds; counts the ones it holds back."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: dict[Hashable, tuple[float, int]] = {}

    def due(self, key: Hashable, now: float) -> int | None:
        """None when a notice for ``key`` went out less than ``every`` ago (this one is
        counted); otherwise how many were held back since that last one."""
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            self._last[key] = (last[0], last[1] + 1)
            return None
        self._last[key] = (now, 0)
        return 0 if last is None else last[1]


# Timer events are immutable: one per timer name, not one per expiry.
_TIMER_FIRED = {t.value: TimerFired(t) for t in TimerName}


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
        self.adverts = self._prepare(plan.params.priority)
        self.held = False
        self.accept = True
        self.intent_generation = 0
        self.full_rounds = 0  # renewal rounds left that re-send the whole intent
        self.announce = 0
        self.garp_count = 0
        self.status: dict[Tracker, bool | int | None] = {}
        self.faults: frozenset[str] = frozenset()
        self.disabled: set[Tracker] = set()
        self.last_peer_addresses: dict[IPAddress, tuple[IPAddress, ...]] = {}
        self.last_transition: dict[str, Any] = {}
        self.group: SyncGroup | None = None
        self.sent = dumps.SendCounters()
        self.last_transition_at = time.time()
        self._published: tuple[State, int, IPAddress | None] | None = None
        self._drop_logged: dict[str, float] = {}
        self.notices = NoticeLimiter(_NOTICE_EVERY)
        # the last datagram's verdict (see receive)
        self._rx_key = b""
        self._rx_expect: Expectations | None = None
        self._rx_result: Accepted | Drop | None = None
        self._rx_event: AdvertReceived | None = None

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

    def _prepare(self, priority: int) -> dict[IPAddress, PreparedAdvert]:
        """One prepared advert per destination: the v3 pseudo-header covers the destination."""
        p = self.plan
        # keepalived's v3_checksum_as_v2 sends the v2 form (no pseudo-header) for old peers.
        form = ChecksumForm.MESSAGE if p.checksum_as_v2 else ChecksumForm.PSEUDO
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
        dsts = p.unicast_peers if p.unicast else (p.mcast_group,)
        return {dst: prepare(advert, src=self.primary, dst=dst, form=form) for dst in dsts}

    def compatible(self, new: InstancePlan) -> bool:
        """Can ``new`` be applied without restarting the election (keepalived keeps state)?"""
        old = self.plan
        return (old.interface, old.family, old.vrid, old.version, old.unicast_src, old.vmac) == (
            new.interface,
            new.family,
            new.vrid,
            new.version,
            new.unicast_src,
            new.vmac,
        )

    def update(self, new: InstancePlan, now: float) -> None:
        """A reload changed this instance: keep its state, adopt priority, VIPs, trackers."""
        new_vips = set(new.vips) - set(self.plan.vips)
        self.plan = new
        self.machine.params = new.params_for(self.primary)
        self.expect = self._expectations()
        self.adverts = self._prepare(self.machine.priority)
        self.intent_generation += 1
        if self.held:
            if new_vips:  # as keepalived: a master announces VIPs a reload added
                self.announce += 1
                self.garp_count = new.params.garp_master_repeat
            self.publish_intent()
        self.trackers_changed(now)
        log.info("vrrpd.instance.updated", instance=self.name, state=self.machine.state.value)

    # ---- inputs ------------------------------------------------------------------------------

    def feed(self, event: Event, now: float) -> None:
        if self.group is None:
            self.execute(self.machine.handle(event, now), now)
            self.after_actions()
            return
        # A sync group member: the group decides, and its actions may belong to any member.
        by_member: dict[str, list[Action]] = {}
        for member, action in self.group.handle(self.name, event, now):
            if isinstance(action, GroupNotify):
                self.engine.group_notify(action)
            else:
                by_member.setdefault(member, []).append(action)
        for member, actions in by_member.items():
            runner = self.engine.runners.get(member)
            if runner is not None:
                runner.execute(actions, now)
                runner.after_actions()

    def after_actions(self) -> None:
        m = self.machine
        if (m.state, m.priority, m.master_peer) != self._published:
            self.publish_state()

    def receive(self, dgram: Datagram, now: float) -> None:
        # validate() is pure: the same bytes under the same expectations get the same verdict,
        # and a master sends the same advert every interval.
        if dgram.key and dgram.key == self._rx_key and self.expect is self._rx_expect:
            result, event = self._rx_result, self._rx_event
            assert result is not None
        else:
            result = validate(dgram.payload, dgram.facts, self.expect)
            event = None
            if isinstance(result, Accepted):
                event = AdvertReceived.from_advert(result.advert, result.source)
                self.last_peer_addresses[result.source] = result.advert.addresses
            self._rx_key, self._rx_expect = dgram.key, self.expect
            self._rx_result, self._rx_event = result, event
        self.counters.record(result)
        if event is None:
            assert isinstance(result, Drop)
            self._log_drop(result, now)
            return
        assert isinstance(result, Accepted)
        for note in result.notes:
            self._log_drop(note, now, accepted=True)
        self.feed(event, now)

    def _log_drop(self, item: Drop | Any, now: float, accepted: bool = False) -> None:
        reason = str(item.reason)
        if now - self._drop_logged.get(reason, -_DROP_LOG_EVERY) < _DROP_LOG_EVERY:
            return
        self._drop_logged[reason] = now
        event = "vrrpd.advert.mismatch" if accepted else "vrrpd.advert.dropped"
        counts = self.counters.notes if accepted else self.counters.drops
        log.warning(
            event, instance=self.name, reason=reason, detail=item.detail, count=counts[item.reason]
        )

    def trackers_changed(self, now: float) -> None:
        # A check checkd refused to run (script security) is dropped from tracking, as
        # keepalived drops it, rather than counted as failed.
        trackers = [t for t in self.plan.trackers if t not in self.disabled]
        verdict = evaluate(self.plan.params.priority, trackers, self.status)
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
                    held_back = self.notices.due(("vrrp.event.split_brain", peer), now)
                    if held_back is not None:
                        eng.publish_event(
                            self, "split_brain", peer=peer, priority=prio, repeated=held_back
                        )
                    eng.notifier.submit(notify.rx_lower_jobs(self.name, self.plan.notify))
                case Log(event=event, detail=detail, peer=peer):
                    fields: dict[str, Any] = {}
                    if peer is not None and event in _PER_ADVERT_NOTICES:
                        held_back = self.notices.due((event, peer), now)
                        if held_back is None:
                            continue
                        if held_back:
                            fields["repeated"] = held_back
                    level = "warning" if "split_brain" in event else "info"
                    getattr(log, level)(
                        event,
                        instance=self.name,
                        detail=detail,
                        peer=str(peer) if peer else None,
                        **fields,
                    )

    def send_advert(self, priority: int) -> None:
        sent = 0
        for dst, prepared in self.adverts.items():
            advert = prepared
            if priority != prepared.priority:
                advert = self.adverts[dst] = prepared.with_priority(priority)
            sent += self.sender.send(advert.wire, dst)
        self.sent.advert_sent += sent
        if priority == 0:
            self.sent.pri_zero_sent += sent

    def view(self) -> dumps.InstanceView:
        m, p = self.machine, self.plan
        return dumps.InstanceView(
            name=p.name,
            version=p.version,
            state=m.state,
            vrid=p.vrid,
            base_priority=p.params.priority,
            effective_priority=m.priority,
            interface=p.interface,
            src_ip=str(self.primary),
            mcast=str(p.mcast_group),
            interval=p.params.interval_cs / 100,
            master_adver_int=m.master_adver_int_cs / 100,
            master_down=m.master_down_interval,
            master_priority=m.master_priority or 0,
            preempt=p.params.preempt,
            preempt_delay=p.params.preempt_delay,
            accept=self.accept,
            vips=tuple(str(v) for v in p.vips),
            vips_set=self.held,
            auth_type=int(p.auth_type),
            track_scripts=tuple(t.name for t in p.trackers if t.kind is TrackerKind.SCRIPT),
            last_transition=self.last_transition_at,
            received=self.counters,
            sent=self.sent,
        )

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
            "vmac": self.plan.vmac,
        }

    def publish_intent(self, *, changed: bool = True) -> None:
        if changed:
            self.full_rounds = FULL_ROUNDS
        self.engine.comp.publisher.retain(f"vrrp.intent.{self.name}", self.intent_body())

    def renewal(self) -> list[int | float] | None:
        """This round's compact renewal ([generation, lease]), or None after re-sending the
        whole intent (still in the rounds right after a change) or when nothing is held."""
        if not self.held:
            return None
        if self.full_rounds > 0:
            self.full_rounds -= 1
            self.publish_intent(changed=False)
            return None
        return [self.intent_generation, self.lease]

    def publish_state(self) -> None:
        m = self.machine
        self._published = (m.state, m.priority, m.master_peer)
        self.engine.comp.publisher.retain(f"vrrp.state.{self.name}", self.state_body())

    def state_body(self) -> dict[str, Any]:
        """Current state plus the last transition's old/new/cause (retained on the bus)."""
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
            **self.last_transition,
        }
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
        self.last_transition = fields
        self.last_transition_at = time.time()
        if action.new is State.MASTER:
            self.sent.become_master += 1
        elif action.old is State.MASTER:
            self.sent.release_master += 1
        self.publish_state()
        log.info("vrrp.state", instance=self.name, priority=action.priority, **fields)
        state = "STOP" if self.engine.stopping else action.new.value
        if state in ("MASTER", "BACKUP", "FAULT", "STOP"):
            self.engine.notifier.submit(
                notify.jobs_for(self.name, self.plan.notify, state, action.priority)
            )
            self.engine.fifo_write(notify.fifo_line(self.name, state, action.priority))

    def close(self) -> None:
        self.engine.timers.cancel_instance(self.name)


def latest_links(events: list[BusEvent]) -> list[BusEvent]:
    """Drop ``net.link.<ifname>`` events superseded later in the same batch.

    Each carries the link's whole state (every address on it), and netd publishes one per
    address change: installing 255 VIPs queues up to 255 of them, each listing up to 255
    addresses, and handling them all stalls the adverts. An event is dropped only when a
    later one for the same link has the same up/down state and index, so flaps still count.
    """
    if sum(e.topic.startswith("net.link.") for e in events) < 2:
        return events
    kept: list[BusEvent] = []
    newer: dict[str, tuple[object, object]] = {}
    for event in reversed(events):
        if event.topic.startswith("net.link."):
            key = (event.body.get("up"), event.body.get("ifindex"))
            if newer.get(event.topic) == key:
                continue
            newer[event.topic] = key
        kept.append(event)
    kept.reverse()
    return kept


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
        self.fifo: notify.NotifyFifo | None = None
        self.groups: dict[str, SyncGroup] = {}
        self.group_scripts: dict[str, dict[str, ScriptSpec]] = {}
        self.stopping = False
        self._stale_logged: set[str] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def now(self) -> float:
        return self.loop.time()

    def _dump(self, name: str, render: Callable[[list[dumps.InstanceView]], str]) -> None:
        views = [r.view() for r in self.runners.values()]
        try:
            path = dumps.write(name, render(views))
        except OSError as exc:
            log.error("vrrpd.dump.failed", file=name, reason=str(exc))
            return
        log.info("vrrpd.dump", file=str(path), instances=len(views))

    async def run(self) -> None:
        self.comp.on_signal(signal.SIGUSR1, lambda: self._dump("keepalived.data", dumps.data_text))
        self.comp.on_signal(
            signal.SIGUSR2, lambda: self._dump("keepalived.stats", dumps.stats_text)
        )
        self.comp.on_signal(SIGJSON, lambda: self._dump("keepalived.json", dumps.json_text))
        sub = self.comp.subscribe("config.current", "net.link.*", "health.*")
        renew = asyncio.create_task(self._renew_loop(), name="vrrpd.renew")
        try:
            while True:
                for event in latest_links(await sub.recv_batch()):
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
        self._open_fifo(config.global_defs.vrrp_notify_fifo or config.global_defs.notify_fifo)
        self.group_scripts = {g.name: notify_specs(config, g.name, g) for g in config.sync_groups}
        now = self.now()
        for name, runner in list(self.runners.items()):
            new = new_plans.get(name)
            if new == self.plans.get(name):
                continue
            if new is not None and runner.compatible(new):
                self._refresh_trackers_for(runner, new)
                runner.update(new, now)
            else:
                self._stop_runner(
                    name,
                    now,
                    reason="removed from the configuration"
                    if new is None
                    else "interface, VRID or version changed",
                )
        self.plans = new_plans
        self.config_hash = digest
        log.info("vrrpd.config", generation=body["generation"], instances=len(new_plans))
        self._start_pending(now)

    def _open_fifo(self, script: Script | None) -> None:
        path = script.command if script else None
        if self.fifo is not None and self.fifo.path == path:
            return
        if self.fifo is not None:
            self.fifo.close()
            self.fifo = None
        if path:
            try:
                self.fifo = notify.NotifyFifo(path)
            except OSError as exc:
                log.error("vrrpd.notify_fifo.failed", path=path, reason=str(exc))

    def fifo_write(self, line: str) -> None:
        if self.fifo is not None:
            self.fifo.write(line)

    def _start_pending(self, now: float) -> None:
        for name, p in self.plans.items():
            if name in self.runners:
                continue
            link = self.links.get(p.interface)
            if link is None:
                continue
            if p.advert_interface not in self.links:
                self._ask_for_vmac(p)  # netd creates it; its net.link starts us
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
            self.by_vrid[(p.advert_interface, p.family, p.vrid)] = runner
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
        self._form_groups()

    def _form_groups(self) -> None:
        """A sync group starts coordinating once every member instance is running."""
        members: dict[str, list[Runner]] = {}
        for runner in self.runners.values():
            if runner.plan.sync_group:
                members.setdefault(runner.plan.sync_group, []).append(runner)
        for name, runners in members.items():
            wanted = {p.name for p in self.plans.values() if p.sync_group == name}
            if name in self.groups or {r.name for r in runners} != wanted:
                continue
            group = SyncGroup(name, {r.name: r.machine for r in runners})
            self.groups[name] = group
            for r in runners:
                r.group = group
            log.info("vrrpd.sync_group.formed", group=name, members=sorted(wanted))

    def group_notify(self, action: GroupNotify) -> None:
        state = "STOP" if self.stopping else action.new.value
        log.info(
            "vrrp.sync_group",
            group=action.group,
            old=action.old.value,
            new=state,
            member=action.member,
        )
        scripts = self.group_scripts.get(action.group, {})
        self.notifier.submit(notify.jobs_for(action.group, scripts, state, 0, scope="GROUP"))
        self.fifo_write(f'GROUP "{action.group}" {state} 0\n')

    def _ask_for_vmac(self, p: InstancePlan) -> None:
        """Before the election starts: an intent holding nothing but naming the VMAC."""
        log.info(
            "vrrpd.instance.waiting",
            instance=p.name,
            interface=p.advert_interface,
            reason="waiting for netd to create the VMAC",
        )
        self.comp.publisher.retain(
            f"vrrp.intent.{p.name}",
            {
                "instance": p.name,
                "generation": 0,
                "items": [],
                "held": False,
                "lease": MIN_LEASE,
                "interface": p.interface,
                "family": p.family,
                "accept": True,
                "announce": 0,
                "garp_count": 0,
                "garp": p.garp,
                "vmac": p.vmac,
            },
        )

    def _make_runner(self, p: InstancePlan, link: Link, primary: IPAddress) -> Runner:
        # use_vmac: adverts go out of and come in on the VMAC (see
        # InstancePlan.advert_interface) unless vmac_xmit_base; the source address is still
        # the base interface's primary.
        on = self.links[p.advert_interface]
        key = (p.family, on.name)
        receiver = self.receivers.get(key)
        if receiver is None:
            receiver = self.receivers[key] = Receiver(p.family, on.name, on.ifindex)
            self.loop.add_reader(receiver.fileno(), self._readable, receiver)
        if not p.unicast:
            receiver.join(p.mcast_group)
        skey = (p.family, on.name, primary)
        sender = self.senders.get(skey)
        if sender is None:
            sender = self.senders[skey] = Sender(p.family, on.name, on.ifindex, primary)
        return Runner(self, p, link, primary, sender)

    def _stop_runner(self, name: str, now: float, reason: str) -> None:
        runner = self.runners[name]
        if runner.group is not None:
            # Members leave together; the group re-forms from the new plans.
            group = self.groups.pop(runner.group.name, None)
            for other in self.runners.values():
                if other.group is group:
                    other.group = None
        del self.runners[name]
        runner.feed(Shutdown(reason), now)
        runner.close()
        plan = runner.plan
        self.by_vrid.pop((plan.advert_interface, plan.family, plan.vrid), None)
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
            runner.feed(_TIMER_FIRED[timer], now)

    def link_changed(self, link: Link) -> None:
        old = self.links.get(link.name)
        self.links[link.name] = link
        now = self.now()
        # Trackers only read up/down; an address-only change (netd installing VIPs) must not
        # cost a re-evaluation of every instance on the interface.
        state_changed = old is None or (old.up, old.ifindex) != (link.up, link.ifindex)
        for runner in self.runners.values():
            if runner.plan.interface == link.name:
                runner.link = link
            if not state_changed:
                continue
            if runner.plan.interface == link.name or any(
                t.kind is TrackerKind.INTERFACE and t.name == link.name
                for t in runner.plan.trackers
            ):
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
        self._refresh_trackers_for(runner, runner.plan)

    def _refresh_trackers_for(self, runner: Runner, plan: InstancePlan) -> None:
        runner.status = {tracker: self._status(tracker) for tracker in plan.trackers}
        runner.disabled = {
            t
            for t in plan.trackers
            if t.kind is not TrackerKind.INTERFACE
            and self.health.get(t.name, (0.0, {}))[1].get("disabled")
        }

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
            leases: dict[str, list[int | float]] = {}
            for runner in self.runners.values():
                renewal = runner.renewal()
                if renewal is not None:
                    leases[runner.name] = renewal
            if leases:
                self.comp.publisher.publish("vrrp.renew", {"leases": leases})

    def publish_event(
        self, runner: Runner, kind: str, *, peer: IPAddress, priority: int, repeated: int = 0
    ) -> None:
        addrs = runner.last_peer_addresses.get(peer, ())
        body: dict[str, Any] = {
            "instance": runner.name,
            "kind": kind,
            "peer": str(peer),
            "peer_priority": priority,
            "peer_vips": [str(a) for a in addrs],
            "priority": runner.machine.priority,
            "vips": [str(v) for v in runner.plan.vips],
        }
        if repeated:
            body["repeated"] = repeated  # held back by the rate limit since the last one
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
        if self.fifo is not None:
            self.fifo.close()
        self.timers.close()
        for receiver in self.receivers.values():
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(receiver.fileno())
            receiver.close()
        for sender in self.senders.values():
            sender.close()
