"""vrrpd's process logic: configuration, links and verdicts in; adverts, state and intent out.

The pure parts do the thinking (``plan`` maps config, ``machine`` decides, ``validate``
judges packets, ``priority`` sums trackers, ``runner`` executes one instance's actions);
this module owns what the instances share — raw sockets, one timer heap, the bus inputs:

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
import ipaddress
import signal
import socket
import time
from collections.abc import Callable

import structlog

from bus import Component, MessageRejected, messages
from bus.envelope import Event as BusEvent
from bus.signals import SIGJSON, SIGSTATS_CLEAR
from core import WireFormatError, from_wire
from scripts import ScriptSpec
from vrrpd import dumps, mail, notify
from vrrpd.ah import AhSession
from vrrpd.ah_sockets import AhReceiver, AhSockets, vrid_of
from vrrpd.fifo import FifoChannel, FifoSetup
from vrrpd.links import Link
from vrrpd.machine import (
    CauseKind,
    Resume,
    Shutdown,
    Startup,
    State,
    TimerName,
)
from vrrpd.packet import AuthType, IPAddress
from vrrpd.pending import PendingStarts, fault_state
from vrrpd.plan import InstancePlan, fifo_setup, notify_specs, plan, startup_delay
from vrrpd.priority import Tracker, TrackerKind
from vrrpd.resume import RESUME_WINDOW, Verdict, decide
from vrrpd.runner import MIN_LEASE, NoticeLimiter, Runner
from vrrpd.sockets import Receiver, Sender, SocketError
from vrrpd.syncgroup import GroupNotify, SyncGroup
from vrrpd.timers import TimerHeap
from vrrpd.validate import DropReason
from vrrpd.verdicts import VerdictGate, checkd_checks

log = structlog.get_logger(__name__)

RENEW_EVERY = 0.5  # held intents are renewed this often (lease is >= 1 s)
HEALTH_GRACE = 15.0  # a verdict not re-published for this long counts as failed
# A receive socket woken again within this long is left to queue for this long before it is
# read (see Engine._readable).
RX_COALESCE = 0.005
_MASTER_DOWN = TimerName.MASTER_DOWN.value


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
        self.mailer = mail.Mailer()
        self.links: dict[str, Link] = {}
        self.plans: dict[str, InstancePlan] = {}
        self.runners: dict[str, Runner] = {}
        self.receivers: dict[tuple[int, str], Receiver] = {}
        self.senders: dict[tuple[int, str, IPAddress, int], Sender] = {}
        self.ah_sockets = AhSockets()
        self.by_vrid: dict[tuple[str, int, int], Runner] = {}
        self.health: dict[str, tuple[float, messages.Verdict]] = {}
        self.verdicts = VerdictGate()
        # one refusal logged per check every 5 s, whatever the senders (bounded by the config)
        self._refusals = NoticeLimiter(5.0)
        self.config_hash: str | None = None
        self.fifo: FifoChannel | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.groups: dict[str, SyncGroup] = {}
        self.group_scripts: dict[str, dict[str, ScriptSpec]] = {}
        self.stopping = False
        self._stale_logged: set[str] = set()
        #: netd's last net.applied.vrrp:<instance> report, by instance (see vrrpd.resume)
        self.applied: dict[str, messages.Applied] = {}
        #: instances started within RESUME_WINDOW still waiting in INIT for netd's report
        self.awaiting: set[str] = set()
        self.resume_until = float("-inf")
        #: vrrp_startup_delay: no instance starts before this loop time (set by the first config)
        self.start_after: float | None = None
        self._delayed_start: asyncio.TimerHandle | None = None
        self.router_id = socket.gethostname()  # keepalived's default; router_id replaces it
        self.dynamic_interfaces = False
        self._rx_last: dict[Receiver, float] = {}
        self._rx_paused: dict[Receiver, asyncio.TimerHandle] = {}
        #: instances that could not start yet (FAULT until they can; see vrrpd.pending)
        self.pending = PendingStarts()
        self._retry: asyncio.TimerHandle | None = None

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

    def _clear_stats(self) -> None:
        for runner in self.runners.values():
            runner.clear_stats()
        for receiver in self.receivers.values():
            receiver.unclaimed.clear()
        log.info("vrrpd.stats.cleared", instances=len(self.runners))

    async def run(self) -> None:
        self.comp.on_signal(
            signal.SIGUSR1,
            lambda: self._dump(
                "keepalived.data", lambda views: dumps.data_text(views, self.router_id)
            ),
        )
        self.comp.on_signal(
            signal.SIGUSR2, lambda: self._dump("keepalived.stats", dumps.stats_text)
        )
        self.comp.on_signal(SIGJSON, lambda: self._dump("keepalived.json", dumps.json_text))
        self.comp.on_signal(SIGSTATS_CLEAR, self._clear_stats)
        sub = self.comp.subscribe("config.current", "net.link.*", "health.*", "net.applied.vrrp:*")
        self.resume_until = self.now() + RESUME_WINDOW
        self.loop.call_at(self.resume_until, self._resume_window_closed)
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
        topic, body = event.topic, event.body
        try:
            if topic == "config.current":
                self.apply_config(messages.ConfigCurrent.decode(topic, body))
            elif topic.startswith("net.link."):
                self.link_changed(Link.from_event(messages.LinkReport.decode(topic, body)))
            elif root == "health":
                verdict = messages.Verdict.decode(topic, body)
                refused = self.verdicts.refusal(topic, verdict, event.env.src)
                if refused is None:
                    self.health_changed(verdict)
                elif self._refusals.due(verdict.name, self.now()) is not None:
                    log.warning(
                        "vrrpd.health.refused",
                        topic=topic,
                        src=event.env.src,
                        pid=event.env.pid,
                        reason=refused,
                    )
            elif topic.startswith("net.applied.vrrp:"):
                self.applied_changed(messages.Applied.decode(topic, body))
        except (MessageRejected, ValueError, WireFormatError) as exc:
            log.error(
                "vrrpd.input.invalid",
                topic=event.topic,
                src=event.env.src,
                reason=f"{type(exc).__name__}: {exc}",
            )

    # ---- configuration -----------------------------------------------------------------------

    def apply_config(self, msg: messages.ConfigCurrent) -> None:
        digest = msg.hash
        if digest == self.config_hash:
            return
        config = from_wire(dict(msg.model))
        new_plans = {p.name: p for p in plan(config)}
        self.verdicts = VerdictGate(checkd_checks(config))
        self._open_fifo(fifo_setup(config))
        self.mailer.configure(mail.mail_settings(config))
        self.group_scripts = {g.name: notify_specs(config, g.name, g) for g in config.sync_groups}
        now = self.now()
        reload = self.config_hash is not None
        self.router_id = config.global_defs.router_id or socket.gethostname()
        self.dynamic_interfaces = config.global_defs.dynamic_interfaces
        if self.start_after is None:
            uptime = time.clock_gettime(time.CLOCK_BOOTTIME)
            self._delay_start(now, startup_delay(config.global_defs, uptime))
        for name, runner in list(self.runners.items()):
            new = new_plans.get(name)
            if new == self.plans.get(name):
                continue
            if new is not None and runner.compatible(new):
                self._refresh_trackers_for(runner, new)
                runner.update(new, now)
            elif new is None:
                runner.removed_as = "DELETED" if runner.plan.notify_deleted else "FAULT"
                self._stop_runner(name, now, reason="removed from the configuration")
            else:
                self._stop_runner(name, now, reason="interface, VRID or version changed")
        self.plans = new_plans
        self.config_hash = digest
        for name in self.pending.names():
            if name not in new_plans and self.pending.started(name):
                self.comp.publisher.forget(f"vrrp.state.{name}")
        log.info("vrrpd.config", generation=msg.generation, instances=len(new_plans))
        if reload and config.global_defs.fifo_write_vrrp_states_on_reload:
            # keepalived re-writes the states of the instances that survived the reload
            for runner in self.runners.values():
                m = runner.machine
                if m.state is not State.INIT:
                    self.fifo_write(notify.fifo_line(runner.name, m.state.value, m.priority))
        self._start_pending(now)

    def _delay_start(self, now: float, delay: float) -> None:
        """``vrrp_startup_delay``/``vrrp_delay_after_boot``: instances start ``delay`` after
        vrrpd's first config."""
        self.start_after = now + delay
        if delay > 0:
            log.info("vrrpd.startup.delayed", seconds=delay)
            self._delayed_start = self.loop.call_at(self.start_after, self._delay_over)

    def _delay_over(self) -> None:
        self.start_after = float("-inf")  # call_at may fire a clock tick early
        self._start_pending(self.now())

    def _open_fifo(self, setup: FifoSetup | None) -> None:
        if self.fifo is not None and self.fifo.setup == setup:
            return
        if self.fifo is not None:
            # keepalived closes the FIFO and SIGTERMs its reader when a reload changes it.
            task = asyncio.create_task(self.fifo.close(), name="fifo-close")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            self.fifo = None
        if setup is not None:
            try:
                self.fifo = FifoChannel(setup)
            except OSError as exc:
                log.error("vrrpd.notify_fifo.failed", path=setup.path, reason=str(exc))

    def fifo_write(self, line: str) -> None:
        if self.fifo is not None:
            self.fifo.write(line)

    def _start_pending(self, now: float) -> None:
        if self.start_after is not None and now < self.start_after:
            return  # vrrp_startup_delay: the delayed call starts them
        for name, p in self.plans.items():
            if name in self.runners:
                continue
            link = self.links.get(p.interface)
            if link is None:
                # Only once netd has spoken (it reports every link at start): before that,
                # at a slow boot, "not found" would be a false alarm.
                if self.links and now >= self.resume_until:
                    self._not_started(p, f"interface {p.interface} not found", now)
                continue
            if p.advert_interface not in self.links:
                if now < self.resume_until:
                    # A VMAC netd still has is reported at once; an empty intent sent now
                    # would withdraw the VIPs a quick restart is about to resume.
                    continue
                self._ask_for_vmac(p)  # netd creates it; its net.link starts us
                continue
            taken = {v for q in self.plans.values() for v in q.vips}
            primary = p.unicast_src or link.primary(p.family, exclude=taken)
            if primary is None:
                self._not_started(p, link.why_no_source(p.family), now)
                continue
            try:
                runner = self._make_runner(p, link, primary)
            except SocketError as exc:
                self._not_started(p, str(exc), now)
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
            self._begin(runner, now)
            if self.pending.started(name):
                runner.publish_state()  # replaces the FAULT published while it waited
        self._form_groups()
        self._schedule_retry()

    def _not_started(self, p: InstancePlan, reason: str, now: float) -> None:
        """``p`` cannot start yet: FAULT with the reason, and a retry (vrrpd.pending)."""
        if not self.pending.failed(p.name, reason, now):
            return
        log.warning(
            "vrrpd.instance.waiting",
            instance=p.name,
            interface=p.interface,
            state="FAULT",
            reason=reason,
        )
        body = fault_state(
            instance=p.name,
            reason=reason,
            priority=p.params.priority,
            vrid=p.vrid,
            interface=p.interface,
            family=p.family,
            version=p.version,
            vips=[str(v) for v in p.vips],
        )
        self.comp.publisher.retain(f"vrrp.state.{p.name}", body)

    def _schedule_retry(self) -> None:
        """The back-off retry of waiting instances, for failures no net.link announces."""
        at = self.pending.next_retry()
        if self._retry is not None:
            if at is not None and self._retry.when() == at:
                return
            self._retry.cancel()
            self._retry = None
        if at is not None and not self.stopping:
            self._retry = self.loop.call_at(at, self._retry_due)

    def _retry_due(self) -> None:
        self._retry = None
        self._start_pending(self.now())

    def _begin(self, runner: Runner, now: float) -> None:
        """Start a new runner's election, or resume what netd still holds for it."""
        if now >= self.resume_until and runner.name not in self.awaiting:
            # Long after start-up (a reload adding or re-creating an instance): the report
            # may predate this vrrpd's own withdrawal; resuming is for a restart only.
            runner.feed(Startup(), now)
            runner.trackers_changed(now)
            return
        decision = decide(
            self.applied.get(runner.name), runner.fingerprint, waiting=now < self.resume_until
        )
        if decision.verdict is Verdict.WAIT:
            # Trackers are evaluated in INIT meanwhile: the decision sees faults and priority.
            self.awaiting.add(runner.name)
            runner.trackers_changed(now)
            return
        waited = runner.name in self.awaiting
        self.awaiting.discard(runner.name)
        if decision.verdict is Verdict.RESUME:
            log.info("vrrpd.instance.resuming", instance=runner.name, reason=decision.reason)
            runner.feed(Resume(decision.reason), now)
        else:
            if self.applied.get(runner.name) is not None or waited:
                log.info("vrrpd.instance.not_resumed", instance=runner.name, reason=decision.reason)
            runner.feed(Startup(), now)
        runner.trackers_changed(now)

    def applied_changed(self, msg: messages.Applied) -> None:
        instance = msg.owner.removeprefix("vrrp:")
        self.applied[instance] = msg
        runner = self.runners.get(instance)
        if runner is None:
            return
        if instance in self.awaiting:
            self._begin(runner, self.now())
        elif runner.machine.resuming:
            decision = decide(msg, runner.fingerprint, waiting=False)
            if decision.verdict is not Verdict.RESUME:
                # The lease ran out while we listened: resuming would re-add what netd just
                # withdrew, and the peer is about to take over.
                log.info("vrrpd.instance.not_resumed", instance=instance, reason=decision.reason)
                runner.feed(Startup(), self.now())

    def _resume_window_closed(self) -> None:
        if self.stopping:
            return
        now = self.now()
        for name in sorted(self.awaiting):
            runner = self.runners.get(name)
            if runner is not None:
                self._begin(runner, now)
            self.awaiting.discard(name)
        self._start_pending(now)  # instances whose VMAC never showed up: ask netd for it

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
        member = self.runners.get(action.member)
        cause = member.machine.last_cause if member is not None else None
        if cause is not None and cause.kind is CauseKind.RESUMED:
            return  # as for the instance itself: a resume runs no notify script
        scripts = self.group_scripts.get(action.group, {})
        self.notifier.submit(notify.jobs_for(action.group, scripts, state, 0, scope="GROUP"))
        self.fifo_write(f'GROUP "{action.group}" {state} 0\n')
        self.mailer.alert("GROUP", action.group, state)

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
            p.intent(generation=0, held=False, lease=MIN_LEASE, accept=True).encode(),
        )

    def _make_runner(self, p: InstancePlan, link: Link, primary: IPAddress) -> Runner:
        # use_vmac: adverts go out of and come in on the VMAC (see
        # InstancePlan.advert_interface) unless vmac_xmit_base; the source address is still
        # the base interface's primary.
        on = self.links[p.advert_interface]
        key = (p.family, on.name)
        receiver = self.receivers.get(key)
        if (
            receiver is not None
            and receiver.ifindex != on.ifindex
            and not any(
                (r.plan.family, r.plan.advert_interface) == key for r in self.runners.values()
            )
        ):
            # Left by a start that failed before the interface was re-created: it is deaf.
            self._close_receiver(self.receivers.pop(key))
            receiver = None
        if receiver is None:
            receiver = self.receivers[key] = Receiver(p.family, on.name, on.ifindex)
            self.loop.add_reader(receiver.fileno(), self._readable, receiver)
        if not p.unicast:
            receiver.join(p.mcast_group)
        sender = self._sender_for(p, primary)
        runner = Runner(self, p, link, primary, sender)
        if p.auth_type == AuthType.AH:
            self._attach_ah(runner, on)
        return runner

    def _sender_for(self, p: InstancePlan, primary: IPAddress) -> Sender:
        """The send socket of ``p``'s advert interface bound to ``primary`` (shared)."""
        on = self.links[p.advert_interface]
        skey = (p.family, on.name, primary, p.unicast_ttl)
        sender = self.senders.get(skey)
        if sender is None:
            sender = self.senders[skey] = Sender(
                p.family,
                on.name,
                on.ifindex,
                primary,
                unicast_ttl=p.unicast_ttl,
                freebind=p.track_src_ip,
            )
        return sender

    def _attach_ah(self, runner: Runner, on: Link) -> None:
        """auth_type AH: adverts go out and come in as IP protocol 51 (vrrpd.ah_sockets)."""
        p = runner.plan
        assert isinstance(runner.primary, ipaddress.IPv4Address)  # AH is IPv4 only (plan)
        self._ah_sockets_for(runner, on)
        runner.ah = AhSession(
            auth_pass=p.auth_pass, src=runner.primary, unicast=p.unicast, ttl=p.unicast_ttl
        )

    def _ah_sockets_for(self, runner: Runner, on: Link) -> None:
        p = runner.plan
        receiver, opened = self.ah_sockets.receiver(on.name, on.ifindex)
        if opened:
            self.loop.add_reader(receiver.fileno(), self._readable_ah, receiver)
        if not p.unicast:
            assert isinstance(p.mcast_group, ipaddress.IPv4Address)
            receiver.join(p.mcast_group)
        runner.ah_sender = self.ah_sockets.sender(on.name, on.ifindex)

    def _follow_ah(self, link: Link) -> None:
        """AH sockets on a re-created interface, re-opened like the others; the sessions (and
        their sequence numbers, which the peer's anti-replay window remembers) stay."""
        old = self.ah_sockets.receivers.pop(link.name, None)
        if old is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(old.fileno())
            old.close()
        old_sender = self.ah_sockets.senders.pop(link.name, None)
        if old_sender is not None:
            old_sender.close()
        for runner in self.runners.values():
            if runner.ah is not None and runner.plan.advert_interface == link.name:
                try:
                    self._ah_sockets_for(runner, link)
                except SocketError as exc:
                    log.error("vrrpd.socket.error", interface=link.name, reason=str(exc))
                    return

    def _stop_runner(self, name: str, now: float, reason: str) -> None:
        runner = self.runners[name]
        if runner.group is not None:
            # Members leave together; the group re-forms from the new plans.
            group = self.groups.pop(runner.group.name, None)
            for other in self.runners.values():
                if other.group is group:
                    other.group = None
        del self.runners[name]
        self.awaiting.discard(name)
        runner.feed(Shutdown(reason), now)
        runner.close()
        plan = runner.plan
        self.by_vrid.pop((plan.advert_interface, plan.family, plan.vrid), None)
        self.comp.publisher.forget(f"vrrp.state.{name}")
        log.info("vrrpd.instance.stopped", instance=name, reason=reason)

    # ---- inputs ------------------------------------------------------------------------------

    def _readable(self, receiver: Receiver) -> None:
        now = self.now()
        self._read(receiver, now)
        # A backup of hundreds of instances hears thousands of adverts a second, and a wake-up
        # per handful costs more than reading them: when woken again this soon, stop watching
        # the socket and read what queued up in one go RX_COALESCE later, and so on until a
        # read finds nothing. An advert is handled at most that late, which only ever delays a
        # take-over (the master-down deadline counts from when it is handled), and a
        # master-down timer reads paused sockets before it fires.
        if now - self._rx_last.get(receiver, -RX_COALESCE) < RX_COALESCE and not self.stopping:
            self.loop.remove_reader(receiver.fileno())
            self._pause(receiver, now)
        self._rx_last[receiver] = now

    def _pause(self, receiver: Receiver, now: float) -> None:
        self._rx_paused[receiver] = self.loop.call_at(now + RX_COALESCE, self._resume, receiver)

    def _resume(self, receiver: Receiver) -> None:
        handle = self._rx_paused.pop(receiver, None)
        if handle is None:
            return
        handle.cancel()
        now = self.now()
        self._rx_last[receiver] = now
        if self._read(receiver, now) and not self.stopping:
            self._pause(receiver, now)  # still busy
        else:
            self.loop.add_reader(receiver.fileno(), self._readable, receiver)

    def _close_receiver(self, receiver: Receiver) -> None:
        """Stop reading ``receiver`` (watched or paused) and close it."""
        handle = self._rx_paused.pop(receiver, None)
        if handle is not None:
            handle.cancel()
        self._rx_last.pop(receiver, None)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(receiver.fileno())
        receiver.close()

    def _read(self, receiver: Receiver, now: float) -> int:
        """Hand every queued datagram to its instance; how many there were."""
        try:
            datagrams = receiver.drain()
        except SocketError as exc:
            log.error("vrrpd.socket.error", interface=receiver.ifname, reason=str(exc))
            return 0
        for dgram in datagrams:
            vrid = dgram.payload[1] if len(dgram.payload) > 1 else -1
            runner = self.by_vrid.get((dgram.ifname, receiver.family, vrid))
            if runner is not None:
                runner.receive(dgram, now)
            else:
                # Counted, not logged: other routers' VRIDs on a shared segment are normal
                # (keepalived logs them only with log_unknown_vrids, and users find it noise).
                receiver.unclaimed[DropReason.VRID if vrid >= 0 else DropReason.TOO_SHORT] += 1
        return len(datagrams)

    def _readable_ah(self, receiver: AhReceiver) -> None:
        now = self.now()
        try:
            datagrams = receiver.drain()
        except SocketError as exc:
            log.error("vrrpd.socket.error", interface=receiver.ifname, reason=str(exc))
            return
        for raw in datagrams:
            runner = self.by_vrid.get((receiver.ifname, 4, vrid_of(raw)))
            if runner is not None:
                runner.receive_ah(raw, now)

    def _timer_fired(self, instance: str, timer: str, now: float) -> None:
        if timer == _MASTER_DOWN and self._rx_paused:
            # The master's latest advert may be waiting in a paused socket.
            for receiver in list(self._rx_paused):
                self._resume(receiver)
            if self.timers.armed(instance, timer):
                return  # that advert re-armed the timer
        runner = self.runners.get(instance)
        if runner is not None:
            runner.timer_fired(timer, now)

    def link_changed(self, link: Link) -> None:
        old = self.links.get(link.name)
        self.links[link.name] = link
        now = self.now()
        if old is not None and old.ifindex != link.ifindex:
            self._link_recreated(link, old.ifindex, now)
        # Trackers only read up/down; an address-only change (netd installing VIPs) must not
        # cost a re-evaluation of every instance on the interface.
        state_changed = old is None or (old.up, old.ifindex) != (link.up, link.ifindex)
        sources_changed = old is None or old.sources != link.sources
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
        if sources_changed:
            if old is not None and not state_changed:
                # track_src_ip: the configured source address may have come or gone.
                for runner in self.runners.values():
                    if runner.plan.track_src_ip and runner.plan.interface == link.name:
                        runner.trackers_changed(now)
            if old is not None:
                self._follow_source(link)
        if sources_changed or (state_changed and self.pending.names()):
            self._start_pending(now)

    def _follow_source(self, link: Link) -> None:
        """The interface's primary (or usable link-local) changed: the instances that send
        from it without ``unicast_src_ip``/``mcast_src_ip`` follow, as keepalived's do,
        keeping their state."""
        taken = {v for q in self.plans.values() for v in q.vips}
        for runner in self.runners.values():
            p = runner.plan
            if p.interface != link.name or p.unicast_src is not None:
                continue
            new = link.primary(p.family, exclude=taken)
            if new is None or new == runner.primary:
                continue  # nothing to send from yet: keep trying the old one
            try:
                sender = self._sender_for(p, new)
            except SocketError as exc:
                log.error("vrrpd.socket.error", instance=p.name, reason=str(exc))
                continue
            old_sender, old_primary = runner.sender, runner.primary
            runner.move_source(new, sender)
            log.info(
                "vrrpd.instance.source", instance=p.name, old=str(old_primary), primary=str(new)
            )
            if all(r.sender is not old_sender for r in self.runners.values()):
                for key in [k for k, v in self.senders.items() if v is old_sender]:
                    del self.senders[key]
                old_sender.close()

    def _link_recreated(self, link: Link, old_index: int, now: float) -> None:
        """An interface deleted and created again (new ifindex): sockets bound to the old one
        neither hear nor send. With ``dynamic_interfaces`` (and always for a VMAC, which netd
        re-creates itself) the instances on it restart on new sockets; otherwise they stay in
        FAULT, as keepalived's do (see ``Runner.trackers_changed``)."""
        name = link.name
        on_it = [
            r.name
            for r in self.runners.values()
            if name in (r.plan.interface, r.plan.advert_interface)
        ]
        if not on_it:
            return
        follow = [
            r.name
            for r in self.runners.values()
            if name in (r.plan.interface, r.plan.advert_interface)
            and (
                self.dynamic_interfaces or (r.plan.vmac is not None and r.plan.vmac["name"] == name)
            )
        ]
        log.warning(
            "vrrpd.interface.recreated",
            interface=name,
            old_ifindex=old_index,
            ifindex=link.ifindex,
            restarting=follow,
            faulted=[r for r in on_it if r not in follow],
        )
        if not follow:
            return
        self._follow_ifindex(link)
        for runner_name in follow:
            self.runners[runner_name].bound_ifindex = link.ifindex
        self._start_pending(now)

    def _follow_ifindex(self, link: Link) -> None:
        """Re-open the sockets bound to a re-created interface, and its multicast memberships,
        in place: the instances that follow it keep their state (a VMAC netd re-made while
        we were master stays master)."""
        for key in [k for k in self.receivers if k[1] == link.name]:
            self._close_receiver(self.receivers.pop(key))
            try:
                receiver = Receiver(key[0], link.name, link.ifindex)
                for runner in self.runners.values():
                    p = runner.plan
                    if p.advert_interface == link.name and p.family == key[0] and not p.unicast:
                        receiver.join(p.mcast_group)
            except SocketError as exc:
                log.error("vrrpd.socket.error", interface=link.name, reason=str(exc))
                continue
            self.receivers[key] = receiver
            self.loop.add_reader(receiver.fileno(), self._readable, receiver)
        for skey in [k for k in self.senders if k[1] == link.name]:
            old_sender = self.senders.pop(skey)
            old_sender.close()
            users = [r for r in self.runners.values() if r.sender is old_sender]
            try:
                sender = Sender(
                    skey[0],
                    link.name,
                    link.ifindex,
                    skey[2],
                    unicast_ttl=skey[3],
                    # The new interface may not have its address yet (it is being built
                    # while we look): bind anyway, sends start working once it is there.
                    freebind=True,
                )
            except SocketError as exc:
                log.error("vrrpd.socket.error", interface=link.name, reason=str(exc))
                continue
            self.senders[skey] = sender
            for runner in users:
                runner.sender = sender
        self._follow_ah(link)
        log.info("vrrpd.socket.reopened", interface=link.name, ifindex=link.ifindex)

    def health_changed(self, verdict: messages.Verdict) -> None:
        name = verdict.name
        self.health[name] = (time.monotonic(), verdict)
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
            and (seen := self.health.get(t.name)) is not None
            and seen[1].disabled
        }

    def _status(self, tracker: Tracker) -> bool | int | None:
        if tracker.kind is TrackerKind.INTERFACE:
            link = self.links.get(tracker.name)
            return None if link is None else link.up
        seen = self.health.get(tracker.name)
        if seen is None:
            return None
        at, verdict = seen
        if time.monotonic() - at > HEALTH_GRACE:
            return False  # its publisher went silent: treated as failed (docs/design.md)
        if tracker.kind is TrackerKind.FILE:
            value = verdict.value
            return value if value is not None else (0 if verdict.ok else 1)
        return verdict.ok

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
            leases: dict[str, tuple[int, float]] = {}
            for runner in self.runners.values():
                renewal = runner.renewal()
                if renewal is not None:
                    leases[runner.name] = renewal
            if leases:
                self.comp.publisher.publish("vrrp.renew", messages.Renew(leases).encode())

    def publish_event(
        self, runner: Runner, kind: str, *, peer: IPAddress, priority: int, repeated: int = 0
    ) -> None:
        addrs = runner.last_peer_addresses.get(peer, ())
        body = messages.SplitBrain(
            instance=runner.name,
            kind=kind,
            peer=str(peer),
            peer_priority=priority,
            peer_vips=tuple(str(a) for a in addrs),
            priority=runner.machine.priority,
            vips=tuple(str(v) for v in runner.plan.vips),
            # held back by the rate limit since the last one
            repeated=repeated or None,
        ).encode()
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
        if self._delayed_start is not None:
            self._delayed_start.cancel()
        if self._retry is not None:
            self._retry.cancel()
        for name in self.pending.names():
            self.pending.started(name)
            self.comp.publisher.forget(f"vrrp.state.{name}")
        now = self.now()
        for name in list(self.runners):
            self._stop_runner(name, now, reason="daemon stopping")
        await self.notifier.drain(notify.STOP_TIMEOUT + 0.5)
        await self.notifier.close()
        await self.mailer.close()
        if self.fifo is not None:
            await self.fifo.close()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self.timers.close()
        for receiver in self.receivers.values():
            self._close_receiver(receiver)
        for sender in self.senders.values():
            sender.close()
        for ah_receiver in self.ah_sockets.receivers.values():
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(ah_receiver.fileno())
        self.ah_sockets.close()
