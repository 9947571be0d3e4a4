"""Start, watch and restart the component processes.

A child is restarted when it exits (keepalived's back-off, see ``backoff``) or when it stops
sending ``hb.<name>`` from its event loop while the bus itself is heard: a silent bus means we
cannot judge anyone else, so only the bus is restarted then.

A component started on demand (``watchdog.ondemand``: checkd) runs only while the configuration
gives it work: the watchdog follows ``config.current`` and starts it when a reload adds such
work, and stops it (without a restart) when a reload removes the last of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from dataclasses import dataclass, field

import structlog

import core
from bus import MessageRejected, messages
from bus.component import Component
from bus.envelope import Event as BusEvent
from bus.signals import SIGJSON, SIGSTATS_CLEAR, signal_name
from watchdog import ondemand, pidfile
from watchdog.backoff import Backoff
from watchdog.children import PERMANENT_EXIT_CODES, ChildSpec, launch_order
from watchdog.readiness import Readiness, Say
from watchdog.sdnotify import Notifier
from watchdog.spawn import ChildProcess, Launcher

log = structlog.get_logger(__name__)

HEARTBEAT_TIMEOUT = 3.5  # about three missed 1 s heartbeats (Paranoid Pirate liveness)
# systemd's watchdog pings stop sooner than that, so they stop before a hung child is replaced.
PING_SILENCE = 2.0
STARTUP_GRACE = 10.0  # a child's first heartbeat may take this long (imports, config)
STOP_WAIT = 5.0  # keepalived's child_wait_time default
JUDGE_RETRY = 0.5  # the next look when a judgement is due but cannot be made yet
JUDGE_SLACK = 0.01
METRICS_FRESH_WAIT = 0.25  # longest a scrape waits for vrrpd's re-sent states

# Which children each forwarded signal goes to (keepalived: USR2, JSON and STATS_CLEAR go to
# VRRP only).
SIGNAL_ROUTES: dict[int, tuple[str, ...]] = {
    signal.SIGHUP: ("core",),
    signal.SIGUSR1: ("core", "netd", "checkd", "vrrpd"),
    signal.SIGUSR2: ("vrrpd",),
    SIGJSON: ("vrrpd",),
    SIGSTATS_CLEAR: ("vrrpd",),
}


@dataclass(slots=True)
class Child:
    spec: ChildSpec
    proc: ChildProcess | None = None
    started: float = 0.0
    last_heartbeat: float | None = None
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    wanted: bool = True  # False: an on-demand component the configuration gives no work
    keeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class PermanentFailure(Exception):
    """A child exited with a code keepalived treats as permanent; the daemon must stop."""


class Supervisor:
    def __init__(
        self,
        comp: Component,
        specs: list[ChildSpec],
        *,
        respawn: bool = True,
        metrics: tuple[str, int] | None = None,
        stop_wait: float = STOP_WAIT,
        needed: frozenset[str] = ondemand.ON_DEMAND,
        image: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """``needed``: the on-demand components the configuration needs at start; ``image``:
        modules they load on demand that it makes them load at once (preloaded with them)."""
        self.image = image
        self.comp = comp
        self.metrics = metrics
        self.stop_wait = stop_wait
        self.children = {
            s.name: Child(s, wanted=s.name not in ondemand.ON_DEMAND or s.name in needed)
            for s in specs
        }
        self.respawn = respawn
        self.launcher = Launcher()
        self._stopping = False
        self._demand = asyncio.Lock()
        self.failure: PermanentFailure | None = None
        self.notifier = Notifier()
        self.readiness = Readiness(tuple(c.name for c in self.children.values() if c.wanted))
        for signum, targets in SIGNAL_ROUTES.items():
            comp.on_signal(signum, functools.partial(self.forward, signum, targets))
        comp.on_signal(signal.SIGHUP, lambda: self._tell_systemd(self.readiness.reload_requested()))

    async def run(self) -> None:
        # Everything first, then the forks: a module imported after some child was forked
        # would copy the pages it shares with that child (~12 MiB more in a 1-instance group).
        # Except checkd, not on the way to the first advert: imported and forked last, it no
        # longer delays the advert, for ~1 MiB more (docs/benchmarks.md, footprint). Forking
        # the bus and core before importing netd's and vrrpd's modules was tried: +1.9 MiB
        # and no faster (docs/benchmarks.md, "Start-up since").
        preloaded, order = launch_order(tuple(c.name for c in self.children.values() if c.wanted))
        self.launcher.preload(preloaded, self._image_of(preloaded))
        for name in order:
            await self._start_kept(self.children[name])
        monitors = [asyncio.create_task(self._watch_heartbeats(), name="heartbeats")]
        if any(name in ondemand.ON_DEMAND for name in self.children):
            monitors.append(asyncio.create_task(self._follow_config(), name="ondemand"))
        if self.notifier.enabled:
            monitors.append(asyncio.create_task(self._follow_for_systemd(), name="sdnotify"))
        if self.notifier.watchdog_interval:
            monitors.append(asyncio.create_task(self._ping_systemd(), name="sdwatchdog"))
        if self.metrics:
            monitors.append(asyncio.create_task(self._serve_metrics(*self.metrics), name="metrics"))
        try:
            # Runs until the component harness cancels us (TERM/INT, or comp.stop() after a
            # permanent failure); waiting on comp.stopping here would race that cancellation.
            await asyncio.Future()
        finally:
            self._stopping = True
            self.notifier.stopping()
            for task in monitors:
                task.cancel()
            await self._stop_all()
            keepers = [c.keeper for c in self.children.values() if c.keeper is not None]
            for task in keepers:
                task.cancel()
            await asyncio.gather(*monitors, *keepers, return_exceptions=True)
            self.notifier.close()

    def _image_of(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(module for name, module in self.image if name in names)

    def forward(self, signum: int, targets: tuple[str, ...]) -> None:
        for name in targets:
            child = self.children.get(name)
            if child and child.running and child.proc:
                log.info("watchdog.signal.forwarded", child=name, signal=signal_name(signum))
                child.proc.send_signal(signum)

    async def _follow_for_systemd(self) -> None:
        """Turn the bus's view of the group into READY/RELOADING/STATUS for systemd."""
        sub = self.comp.subscribe(
            "hb.*", "config.current", "config.rejected", "config.reload", "vrrp.state.*"
        )
        r = self.readiness
        while True:
            for event in await sub.recv_batch():
                body, topic = event.body, event.topic
                if topic.startswith("hb."):
                    says = r.heartbeat(str(body.get("name", "")))
                elif topic == "config.current":
                    says = r.config_current(int(body["generation"]))
                elif topic == "config.rejected":
                    says = r.config_rejected()
                elif topic == "config.reload":
                    says = r.reload_requested()
                else:
                    says = r.vrrp_state(str(body["instance"]), str(body["state"]))
                self._tell_systemd(says)

    def _tell_systemd(self, says: list[Say]) -> None:
        for say in says:
            if say == "ready":
                self.notifier.ready(self.readiness.status_line())
                log.info("watchdog.sdnotify.ready", status=self.readiness.status_line())
            elif say == "reloading":
                self.notifier.reloading()
            else:
                self.notifier.status(self.readiness.status_line())

    async def _ping_systemd(self) -> None:
        """WATCHDOG=1 only while every child runs and heart-beats: a hung group is restarted."""
        interval = self.notifier.watchdog_interval
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            if all(self._pingable(c) for c in self.children.values() if c.wanted):
                self.notifier.watchdog()

    def _pingable(self, child: Child) -> bool:
        if not child.running:
            return False
        if child.last_heartbeat is None:
            return self._fresh(child)  # starting: its start-up grace applies
        return time.monotonic() - child.last_heartbeat < PING_SILENCE

    async def _serve_metrics(self, host: str, port: int) -> None:
        from watchdog import metrics  # prometheus-client is loaded only when metrics are on

        sub = self.comp.subscribe("vrrp.state.*", "health.*")
        view = metrics.BusView()
        applied = asyncio.Event()

        async def fresh() -> None:
            """vrrpd re-sends its states (counters current) when asked: ask, and wait a
            moment for the first of them rather than serve the previous scrape's."""
            applied.clear()
            sub.resync("vrrp.state.*")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(applied.wait(), METRICS_FRESH_WAIT)

        collector = metrics.DaemonCollector(
            view,
            restarts=lambda: {c.name: c.restarts for c in self.children.values()},
            bus_drops=lambda: sub.stats.dropped,
            bus_gaps=lambda: sub.stats.gaps,
        )
        try:
            server = await metrics.serve(collector, host, port, fresh)
        except OSError as exc:
            # The daemon runs on without metrics rather than not at all.
            log.error("watchdog.metrics.failed", host=host, port=port, reason=str(exc))
            return
        async with server:
            while True:
                for event in await sub.recv_batch():
                    view.apply(event.topic, event.body)
                applied.set()

    async def _follow_config(self) -> None:
        """Start or stop the on-demand components as each new configuration needs them."""
        sub = self.comp.subscribe("config.current")
        seen: str | None = None
        while True:
            for event in await sub.recv_batch():
                try:
                    current = messages.ConfigCurrent.decode(event.topic, event.body)
                    if current.hash == seen:
                        continue  # the periodic re-send of the same configuration
                    needed = ondemand.needed(core.from_wire(dict(current.model)))
                except (MessageRejected, core.WireFormatError) as exc:
                    log.error("watchdog.ondemand.config_rejected", reason=str(exc))
                    continue
                seen = current.hash
                for child in self.children.values():
                    if child.name in ondemand.ON_DEMAND:
                        await self._want(child, child.name in needed)

    async def _want(self, child: Child, wanted: bool) -> None:
        async with self._demand:
            if child.wanted == wanted or self._stopping:
                return
            child.wanted = wanted
            log.info("watchdog.ondemand.changed", child=child.name, wanted=wanted)
            self._tell_systemd(self.readiness.wanted(child.name, wanted))
            if wanted:
                # A keeper still waiting out a back-off restarts it itself.
                if child.keeper is None or child.keeper.done():
                    child.backoff = Backoff()
                    await self._start_kept(child)
            else:
                await self._stop(child)

    async def _start_kept(self, child: Child) -> None:
        """Start ``child`` and the task that restarts it whenever it exits."""
        await self._spawn(child)
        child.keeper = asyncio.create_task(self._keep(child), name=f"keep.{child.name}")

    async def _spawn(self, child: Child) -> None:
        child.proc = await self.launcher.start(child.spec)
        child.started = time.monotonic()
        child.last_heartbeat = None
        self._tell_systemd(self.readiness.child_restarted(child.name))
        if child.spec.pidfile:
            pidfile.write(child.spec.pidfile, child.proc.pid)
        log.info(
            "watchdog.child.started",
            child=child.name,
            child_pid=child.proc.pid,
            restarts=child.restarts,
        )

    async def _keep(self, child: Child) -> None:
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            ran = time.monotonic() - child.started
            if child.spec.pidfile:
                pidfile.remove(child.spec.pidfile, child.proc.pid)
            if self._stopping or not child.wanted:
                return
            cause = f"signal {signal_name(-code)}" if code < 0 else f"exit {code}"
            log.warning(
                "watchdog.child.exited",
                child=child.name,
                child_pid=child.proc.pid,
                cause=cause,
                ran_for=round(ran, 3),
            )
            if code in PERMANENT_EXIT_CODES or not self.respawn:
                why = "permanent error" if code in PERMANENT_EXIT_CODES else "respawn disabled"
                log.error("watchdog.terminating", child=child.name, cause=cause, why=why)
                self.failure = PermanentFailure(f"{child.name} exited ({cause}): {why}")
                self.comp.stop()
                return
            delay = child.backoff.delay_after(ran)
            if delay:
                log.warning("watchdog.child.delayed", child=child.name, delay=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.comp.stopping.wait(), delay)
                if self.comp.stopping.is_set() or not child.wanted:
                    return
            child.restarts += 1
            await self._spawn(child)

    async def _watch_heartbeats(self) -> None:
        sub = self.comp.subscribe("hb.*")
        checker = asyncio.create_task(self._judge_heartbeats())
        try:
            await sub.serve(self._heartbeats)
        finally:
            checker.cancel()

    def _heartbeats(self, events: list[BusEvent]) -> None:
        for event in events:
            try:
                beat = messages.Heartbeat.decode(event.topic, event.body)
            except MessageRejected:
                continue  # the subscriber already checked its required fields
            child = self.children.get(beat.name)
            if child is not None and child.proc and event.env.pid == child.proc.pid:
                now = time.monotonic()
                if child.name == "bus" and not self._fresh(child, startup=False):
                    self._bus_returned(now)
                child.last_heartbeat = now

    async def _judge_heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._until_next_judgement())
            bus = self.children.get("bus")
            # Only a heartbeat actually received from the bus proves the others could be heard.
            bus_heard = bus is None or self._fresh(bus, startup=False)
            for child in self.children.values():
                if child.name != "bus" and not bus_heard:
                    continue
                if child.running and not self._fresh(child):
                    log.error(
                        "watchdog.child.hung",
                        child=child.name,
                        silent_for=round(self._silence(child), 3),
                    )
                    assert child.proc is not None
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.kill()

    def _until_next_judgement(self) -> float:
        """Sleep until the first moment a running child's silence could count as a hang,
        rather than look every 0.5 s: an idle group wakes the watchdog for its heartbeats
        only. A moment already past (the bus is silent, so the others are not judged) is
        looked at again in JUDGE_RETRY."""
        now = time.monotonic()
        due = [self._judgement_at(c) for c in self.children.values() if c.running]
        if not due:
            return HEARTBEAT_TIMEOUT  # a child spawned meanwhile has a startup grace longer
        return min(HEARTBEAT_TIMEOUT, max(JUDGE_RETRY, min(due) - now))

    def _judgement_at(self, child: Child) -> float:
        """When ``_fresh(child)`` turns false if nothing is heard (a hair after, not on, the
        boundary: ``_fresh`` compares strictly)."""
        if child.last_heartbeat is None:
            return child.started + STARTUP_GRACE + JUDGE_SLACK
        return child.last_heartbeat + HEARTBEAT_TIMEOUT + JUDGE_SLACK

    def _silence(self, child: Child) -> float:
        now = time.monotonic()
        return now - (child.last_heartbeat or child.started)

    def _fresh(self, child: Child, *, startup: bool = True) -> bool:
        """Heard from recently (or, with ``startup``, still within its start-up grace)."""
        if child.last_heartbeat is None:
            return startup and time.monotonic() - child.started < STARTUP_GRACE
        return time.monotonic() - child.last_heartbeat < HEARTBEAT_TIMEOUT

    def _bus_returned(self, now: float) -> None:
        """The bus is back after a silence: nobody could be heard meanwhile, so restart every
        child's heartbeat window instead of judging them on the gap."""
        log.info("watchdog.bus.heard_again")
        for child in self.children.values():
            if child.name != "bus" and child.running:
                child.last_heartbeat = now

    async def _stop_all(self) -> None:
        for child in reversed(list(self.children.values())):
            await self._stop(child)

    async def _stop(self, child: Child) -> None:
        """TERM, then KILL after ``stop_wait``; its keeper, seeing why, does not restart it."""
        if child.running and child.proc is not None:
            child.proc.terminate()
            try:
                await asyncio.wait_for(child.proc.wait(), self.stop_wait)
            except TimeoutError:
                log.error("watchdog.child.kill", child=child.name, reason="failed to die")
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await child.proc.wait()
            log.info("watchdog.child.stopped", child=child.name, code=child.proc.returncode)
            if child.spec.pidfile:
                pidfile.remove(child.spec.pidfile, child.proc.pid)
