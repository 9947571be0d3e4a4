"""vrrpd's process logic: configuration, links and verdicts in; adverts, state and intent out.

The pure parts do the thinking (``plan`` maps config, ``machine`` decides, ``validate``
judges packets, ``priority`` sums trackers); ``runner`` executes one instance's actions
through its host (``outputs``: timers, bus, notify/FIFO/mail, sync groups via ``groups``).
The ``Engine`` is the thin driver that feeds them, with one helper per job:

* ``config.current`` -> plans -> one ``Runner`` per instance, started when ``starter`` says
  (start-up delay, netd's report of the interface and its address, the resume window; an
  instance that cannot start yet waits in FAULT with the reason and is retried);
* datagrams -> ``socket_pool`` (shared raw sockets, receive pacing) -> ``Runner.receive``;
* ``health.<name>`` and ``net.link`` -> ``health`` (tracker status) -> ``trackers_changed``;
  a new primary address on ``net.link`` -> the instances sending from it follow;
* ``net.applied.vrrp:<instance>`` and ``net.held`` -> ``starter`` (resume or start afresh);
* timers -> ``Runner.timer_fired``; every ``RENEW_EVERY`` the held intents are renewed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable

import structlog

from bus import Component, MessageRejected, Subscriber, messages
from bus.envelope import Event as BusEvent
from bus.notices import InvalidInput, NoticeLimiter
from bus.priorities import PriorityKeeper, ProcessPriorities
from bus.signals import SIGJSON, SIGSTATS_CLEAR
from core import WireFormatError, from_wire
from vrrpd import dumps, notify
from vrrpd.health import Health
from vrrpd.links import Link
from vrrpd.machine import State, TimerName
from vrrpd.outputs import Outputs
from vrrpd.packet import AuthType, IPAddress
from vrrpd.plan import InstancePlan, plan, startup_delay
from vrrpd.priority import TrackerKind
from vrrpd.runner import Runner
from vrrpd.socket_pool import SocketPool
from vrrpd.sockets import SocketError
from vrrpd.starter import Starter
from vrrpd.verdicts import VerdictGate, checkd_checks

log = structlog.get_logger(__name__)

RENEW_EVERY = 0.5  # held intents are renewed this often (lease is >= 1 s)
# keepalived's -V: at the daemon's stop the held intents are renewed for this long, so netd
# (stopped after vrrpd and checkd) does not withdraw them when their short lease runs out
# meanwhile. A vrrpd stopped alone is restarted by the watchdog and resumes within it.
STOP_HOLD = 30.0
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


# Seconds between two requests for netd's links while none has come (``_ask_for_links``).
LINKS_ASK_AGAIN = 1.0


class Engine:
    """vrrpd's event loop: bus events, timers and signals, dispatched to the helpers."""

    def __init__(self, comp: Component, *, release_at_stop: bool = True) -> None:
        self.comp = comp
        #: False with keepalived's -V: the daemon's stop leaves masters' VIPs and sends no
        #: priority-0 advert (an instance removed by a reload still releases as usual)
        self.release_at_stop = release_at_stop
        self.links: dict[str, Link] = {}
        self.plans: dict[str, InstancePlan] = {}
        self.runners: dict[str, Runner] = {}
        self.sockets = SocketPool(lambda: self.host.stopping)
        self.host = Outputs(comp.publisher, self.runners, self._timer_fired, self.sockets.unclaimed)
        self.health = Health(self.links)
        self.starter = Starter(self.runners, self.host, self._start_pending)
        self.verdicts = VerdictGate()
        # one refusal logged per check every 5 s, whatever the senders (bounded by the config)
        self._refusals = NoticeLimiter(5.0)
        #: messages refused by their class's full decode (an optional field's bad value)
        self.invalid = InvalidInput("vrrpd")
        self.config_hash: str | None = None
        self.router_id = socket.gethostname()  # keepalived's default; router_id replaces it
        self.dynamic_interfaces = False
        self.priorities = PriorityKeeper("vrrpd")
        # the bus subscription (set by ``run``) and the timer asking netd again for its links
        self._sub: Subscriber | None = None
        self._links_asked: asyncio.TimerHandle | None = None

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
        self.sockets.clear_unclaimed()
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
        # hb.bus: the broker's heartbeat proves the bus delivers, so a silent checker is
        # told from a silent bus (vrrpd.health)
        sub = self.comp.subscribe(
            "config.current", "net.link.*", "health.*", "net.applied.vrrp:*", "net.held", "hb.bus"
        )
        self._sub = sub
        self.starter.open_window(self.now())
        renew = asyncio.create_task(self._renew_loop(), name="vrrpd.renew")
        try:
            while True:
                batch = await sub.recv_batch()
                self.health.heard()
                for event in latest_links(batch):
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
                self._verdict(event, messages.Verdict.decode(topic, body))
            elif topic.startswith("net.applied.vrrp:"):
                self.starter.applied_changed(messages.Applied.decode(topic, body))
            elif topic == "net.held":
                self.starter.held_changed(messages.Held.decode(topic, body))
        except (MessageRejected, ValueError, WireFormatError) as exc:
            self.invalid.refused(event.topic, event.env.src, exc, self.now())

    # ---- configuration -----------------------------------------------------------------------

    def apply_config(self, msg: messages.ConfigCurrent) -> None:
        digest = msg.hash
        if digest == self.config_hash:
            return
        config = from_wire(dict(msg.model))
        wanted = ProcessPriorities.from_global_defs(msg.model.get("global_defs") or {}, "vrrp")
        new_plans = {p.name: p for p in plan(config)}
        self.host.configure(config)
        self.priorities.apply(wanted)
        self.verdicts = VerdictGate(checkd_checks(config))
        rules_changed = self.health.configure(config, new_plans.values())
        now = self.now()
        reload = self.config_hash is not None
        self.router_id = config.global_defs.router_id or socket.gethostname()
        self.dynamic_interfaces = config.global_defs.dynamic_interfaces
        uptime = time.clock_gettime(time.CLOCK_BOOTTIME)
        self.starter.delay(now, startup_delay(config.global_defs, uptime))
        for name, runner in list(self.runners.items()):
            new = new_plans.get(name)
            if new == self.plans.get(name):
                continue
            if new is not None and runner.compatible(new):
                self.health.refresh(runner, new)
                runner.update(new, now)
            elif new is None:
                self._stop_runner(name, now, reason="removed from the configuration", removed=True)
            else:
                self._stop_runner(name, now, reason="interface, VRID or version changed")
        if rules_changed:
            # An interval or init_fail changed: a verdict may be stale (or a silent check
            # failed) under the new rule although no instance's plan changed.
            for runner in self.runners.values():
                self.health.refresh(runner)
                runner.trackers_changed(now)
        self.plans = new_plans
        self.config_hash = digest
        self.starter.configured(new_plans)
        log.info("vrrpd.config", generation=msg.generation, instances=len(new_plans))
        if reload and config.global_defs.fifo_write_vrrp_states_on_reload:
            # keepalived re-writes the states of the instances that survived the reload
            for runner in self.runners.values():
                m = runner.machine
                if m.state is not State.INIT:
                    self.host.fifo_write(notify.fifo_line(runner.name, m.state.value, m.priority))
        self._start_pending(now)

    # ---- instances ---------------------------------------------------------------------------

    def _start_pending(self, now: float) -> None:
        for p, link, primary in self.starter.ready(now, self.plans, self.links):
            try:
                runner = self._make_runner(p, link, primary)
            except SocketError as exc:
                self.starter.not_started(p, str(exc), now)
                continue
            self.runners[p.name] = runner
            self.sockets.listen(p, runner)
            log.info(
                "vrrpd.instance.started",
                instance=p.name,
                interface=p.interface,
                vrid=p.vrid,
                version=p.version,
                family=p.family,
                primary=str(primary),
            )
            self.health.refresh(runner)
            self.starter.started(runner, now)
        self.host.groups.form(self.plans)
        self.starter.schedule_retry()
        if self.plans and not self.links and now >= self.starter.resume_until:
            self._ask_for_links()

    def _ask_for_links(self) -> None:
        """netd re-sends its retained ``net.link.*`` when vrrpd subscribes; if none has come
        by the time the resume window closes, that re-send was lost (nothing repeats it on a
        timer, docs/bus.md) and no instance could ever start: ask again, every second, until
        a link is heard."""
        if self._links_asked is not None or self._sub is None:
            return
        log.warning("vrrpd.links.missing", detail="no net.link from netd yet; asking again")
        self._sub.resync("net.link.*", "net.held")
        self._links_asked = self.loop.call_later(LINKS_ASK_AGAIN, self._links_asked_due)

    def _links_asked_due(self) -> None:
        self._links_asked = None
        if self.plans and not self.links and not self.host.stopping:
            self._ask_for_links()

    def _make_runner(self, p: InstancePlan, link: Link, primary: IPAddress) -> Runner:
        # use_vmac: adverts go out of and come in on the VMAC (see
        # InstancePlan.advert_interface) unless vmac_xmit_base; the source address is still
        # the base interface's primary.
        on = self.links[p.advert_interface]
        sender = self.sockets.open(p, on, primary)
        runner = Runner(self.host, p, link, primary, sender)
        if p.auth_type == AuthType.AH:
            self.sockets.open_ah(runner, on)
        return runner

    def _stop_runner(self, name: str, now: float, reason: str, *, removed: bool = False) -> None:
        runner = self.runners[name]
        self.host.groups.leave(runner)
        del self.runners[name]
        self.starter.stopped(name)
        # keepalived's -V applies to the daemon's stop, not to an instance a reload removes.
        release = self.release_at_stop or not self.host.stopping
        runner.stop(reason, now, removed=removed, release=release)
        self.sockets.unlisten(runner.plan)
        self.host.forget_state(name)
        log.info("vrrpd.instance.stopped", instance=name, reason=reason)

    def _timer_fired(self, instance: str, timer: str, now: float) -> None:
        if timer == _MASTER_DOWN and not self.sockets.master_down_due(instance, self.host.timers):
            return  # the master's advert, read from a paused socket, re-armed the timer
        runner = self.runners.get(instance)
        if runner is not None:
            runner.timer_fired(timer, now)

    # ---- links and health --------------------------------------------------------------------

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
                runner.set_link(link)
            if not state_changed:
                continue
            if runner.plan.interface == link.name or any(
                t.kind is TrackerKind.INTERFACE and t.name == link.name
                for t in runner.plan.trackers
            ):
                self.health.refresh(runner)
                runner.trackers_changed(now)
        if sources_changed:
            if old is not None and not state_changed:
                # track_src_ip: the configured source address may have come or gone.
                for runner in self.runners.values():
                    if runner.plan.track_src_ip and runner.plan.interface == link.name:
                        runner.trackers_changed(now)
            if old is not None:
                self._follow_source(link)
        if sources_changed or (state_changed and self.starter.waiting):
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
                sender = self.sockets.sender_for(p, self.links[p.advert_interface], new)
            except SocketError as exc:
                log.error("vrrpd.socket.error", instance=p.name, reason=str(exc))
                continue
            old_sender, old_primary = runner.sender, runner.primary
            runner.move_source(new, sender)
            log.info(
                "vrrpd.instance.source", instance=p.name, old=str(old_primary), primary=str(new)
            )
            self.sockets.release(old_sender, self.runners.values())

    def _link_recreated(self, link: Link, old_index: int, now: float) -> None:
        """An interface deleted and created again (new ifindex): sockets bound to the old one
        neither hear nor send. With ``dynamic_interfaces`` (and always for a VMAC, which netd
        re-creates itself) the instances on it restart on new sockets; otherwise they stay in
        FAULT, as keepalived's do (see ``Runner.trackers_changed``)."""
        name = link.name
        on_it = [
            r for r in self.runners.values() if name in (r.plan.interface, r.plan.advert_interface)
        ]
        if not on_it:
            return
        follow = [
            r
            for r in on_it
            if self.dynamic_interfaces or (r.plan.vmac is not None and r.plan.vmac["name"] == name)
        ]
        log.warning(
            "vrrpd.interface.recreated",
            interface=name,
            old_ifindex=old_index,
            ifindex=link.ifindex,
            restarting=[r.name for r in follow],
            faulted=[r.name for r in on_it if r not in follow],
        )
        if not follow:
            return
        self.sockets.follow(link, self.runners.values())
        for runner in follow:
            runner.rebind(link.ifindex)
        self._start_pending(now)

    def _verdict(self, event: BusEvent, verdict: messages.Verdict) -> None:
        """A verdict, unless it claims a check checkd runs and comes from someone else
        (``vrrpd.verdicts``): that is refused and logged with the sender."""
        refused = self.verdicts.refusal(event.topic, verdict, event.env.src)
        if refused is None:
            self.health_changed(verdict)
        elif self._refusals.due(verdict.name, self.now()) is not None:
            log.warning(
                "vrrpd.health.refused",
                topic=event.topic,
                src=event.env.src,
                pid=event.env.pid,
                reason=refused,
            )

    def health_changed(self, verdict: messages.Verdict) -> None:
        self.health.changed(verdict)
        now = self.now()
        for runner in self.runners.values():
            if self.health.tracks(runner.plan, verdict.name):
                self.health.refresh(runner)
                runner.trackers_changed(now)

    async def _renew_loop(self) -> None:
        """Renew held intents well within their lease; age out verdicts nobody re-sends."""
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if self.health.newly_stale():
                now = self.now()
                for runner in self.runners.values():
                    self.health.refresh(runner)
                    runner.trackers_changed(now)
            leases: dict[str, tuple[int, float]] = {}
            for runner in self.runners.values():
                renewal = runner.renewal()
                if renewal is not None:
                    leases[runner.name] = renewal
            if leases:
                self.host.publish_renewals(leases)

    def _hold_at_stop(self) -> None:
        leases = {r.name: (r.intent_generation, STOP_HOLD) for r in self.runners.values() if r.held}
        if leases:
            self.host.publish_renewals(leases)
            log.info("vrrpd.vips.kept", instances=sorted(leases), hold=STOP_HOLD)

    # ---- shutdown ----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """keepalived's stop: priority-0 adverts from masters, withdraw, STOP notifications."""
        self.host.begin_stopping()
        self.starter.cancel()
        if self._links_asked is not None:
            self._links_asked.cancel()
            self._links_asked = None
        now = self.now()
        if not self.release_at_stop:
            self._hold_at_stop()
        for name in list(self.runners):
            self._stop_runner(name, now, reason="daemon stopping")
        await self.host.close()
        self.sockets.close()
