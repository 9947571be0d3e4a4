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
import signal
import time
from collections.abc import Callable, Mapping
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
    Shutdown,
    Startup,
    TimerName,
)
from vrrpd.packet import IPAddress
from vrrpd.plan import InstancePlan, notify_specs, plan
from vrrpd.priority import Tracker, TrackerKind
from vrrpd.runner import MIN_LEASE, Runner
from vrrpd.sockets import Receiver, Sender, SocketError
from vrrpd.syncgroup import GroupNotify, SyncGroup
from vrrpd.timers import TimerHeap

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
        self._rx_last: dict[Receiver, float] = {}
        self._rx_paused: dict[Receiver, asyncio.TimerHandle] = {}

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
        return len(datagrams)

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
        for handle in self._rx_paused.values():
            handle.cancel()
        self._rx_paused.clear()
        for receiver in self.receivers.values():
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(receiver.fileno())
            receiver.close()
        for sender in self.senders.values():
            sender.close()
