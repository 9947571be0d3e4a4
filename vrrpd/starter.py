"""When each configured instance starts, whether it starts afresh or resumes, and what it
reports while it cannot start yet.

* ``vrrp_startup_delay``/``vrrp_delay_after_boot``: no instance starts before the delay after
  vrrpd's first config has passed;
* an instance starts once netd has reported its interface (and its VMAC, which netd creates
  when asked) with an address to send adverts from, and its sockets open. Until then it is
  in FAULT with the reason (:mod:`vrrpd.pending`), and is tried again on every ``net.link``
  change of its interface and after a back-off;
* within :data:`vrrpd.resume.RESUME_WINDOW` of vrrpd's start, a new instance waits in INIT for
  netd's ``net.applied.vrrp:<instance>`` and resumes what netd still holds for it
  (:func:`vrrpd.resume.decide`; docs/architecture.md, "A quick vrrpd restart resumes") — unless
  netd's ``net.held`` does not name it: then no report is coming and it starts at once (a cold
  start does not sit out the window).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

import structlog

from bus import messages
from vrrpd.links import Link
from vrrpd.machine import Resume, Startup
from vrrpd.packet import IPAddress
from vrrpd.pending import PendingStarts, fault_state
from vrrpd.plan import InstancePlan
from vrrpd.resume import RESUME_WINDOW, Verdict, decide
from vrrpd.runner import MIN_LEASE, Runner

__all__ = ["StartOutputs", "Starter"]

log = structlog.get_logger(__name__)


class StartOutputs(Protocol):
    """What the start-up part publishes (:class:`vrrpd.outputs.Outputs` in the daemon)."""

    @property
    def stopping(self) -> bool: ...

    def publish_intent(self, instance: str, body: Mapping[str, Any]) -> None:
        """An intent before the election: it holds nothing but names the VMAC to create."""
        ...

    def publish_waiting(self, instance: str, body: Mapping[str, Any]) -> None:
        """``vrrp.state`` of an instance that cannot start yet (FAULT, with why)."""
        ...

    def forget_state(self, instance: str) -> None:
        """No more ``vrrp.state`` for ``instance`` (gone from the config, or vrrpd stops)."""
        ...


class Starter:
    """Start-up decisions for the instances in ``runners``; ``start_pending(now)`` starts
    whatever may start now (called when the delay, the resume window or a back-off ends)."""

    def __init__(
        self,
        runners: Mapping[str, Runner],
        outputs: StartOutputs,
        start_pending: Callable[[float], None],
    ) -> None:
        self._runners = runners
        self._outputs = outputs
        self._start_pending = start_pending
        #: netd's last net.applied.vrrp:<instance> report, by instance (see vrrpd.resume)
        self.applied: dict[str, messages.Applied] = {}
        #: instances started within RESUME_WINDOW still waiting in INIT for netd's report
        self.awaiting: set[str] = set()
        #: the instances netd's net.held says it holds items for (None: not heard yet)
        self.held: frozenset[str] | None = None
        self.resume_until = float("-inf")
        #: vrrp_startup_delay: no instance starts before this loop time (set by the first config)
        self.start_after: float | None = None
        self._delayed_start: asyncio.TimerHandle | None = None
        #: instances that could not start yet (FAULT until they can; see vrrpd.pending)
        self.pending = PendingStarts()
        self._retry: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # ---- the start-up delay and the resume window ----------------------------------------------

    def open_window(self, now: float) -> None:
        """vrrpd starts: instances started from now to RESUME_WINDOW later may resume."""
        self.resume_until = now + RESUME_WINDOW
        self.loop.call_at(self.resume_until, self._window_closed)

    def delay(self, now: float, delay: float) -> None:
        """``vrrp_startup_delay``/``vrrp_delay_after_boot``: instances start ``delay`` after
        vrrpd's first config (only the first one counts)."""
        if self.start_after is not None:
            return
        self.start_after = now + delay
        if delay > 0:
            log.info("vrrpd.startup.delayed", seconds=delay)
            self._delayed_start = self.loop.call_at(self.start_after, self._delay_over)

    def may_wait(self, name: str, now: float) -> bool:
        """Whether instance ``name`` may still wait for netd's report: within the window,
        unless netd's ``net.held`` said it holds nothing for it (no report is coming)."""
        if now >= self.resume_until:
            return False
        return self.held is None or name in self.held

    def _delay_over(self) -> None:
        self.start_after = float("-inf")  # call_at may fire a clock tick early
        self._start_pending(self.loop.time())

    # ---- which instances may start -------------------------------------------------------------

    def ready(
        self, now: float, plans: Mapping[str, InstancePlan], links: Mapping[str, Link]
    ) -> list[tuple[InstancePlan, Link, IPAddress]]:
        """The instances not running yet that may start now: each plan with its interface
        and the address to send adverts from. The others wait in FAULT with the reason
        (:meth:`not_started`); asks netd for missing VMACs."""
        if self.start_after is not None and now < self.start_after:
            return []  # vrrp_startup_delay: the delayed call starts them
        ready = []
        taken = {v for q in plans.values() for v in q.vips}
        for name, p in plans.items():
            if name in self._runners:
                continue
            link = links.get(p.interface)
            if link is None:
                # Only once netd has spoken (it reports every link at start): before that,
                # at a slow boot, "not found" would be a false alarm.
                if links and now >= self.resume_until:
                    self.not_started(p, f"interface {p.interface} not found", now)
                continue
            if p.advert_interface not in links:
                if self.may_wait(p.name, now):
                    # A VMAC netd still has is reported at once; an empty intent sent now
                    # would withdraw the VIPs a quick restart is about to resume.
                    continue
                self._ask_for_vmac(p)  # netd creates it; its net.link starts us
                continue
            primary = p.unicast_src or link.primary(p.family, exclude=taken)
            if primary is None:
                self.not_started(p, link.why_no_source(p.family), now)
                continue
            ready.append((p, link, primary))
        return ready

    def not_started(self, p: InstancePlan, reason: str, now: float) -> None:
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
        self._outputs.publish_waiting(p.name, body)

    @property
    def waiting(self) -> bool:
        """Some instance waits in FAULT for its interface (see :meth:`not_started`)."""
        return bool(self.pending.names())

    def schedule_retry(self) -> None:
        """The back-off retry of waiting instances, for failures no net.link announces."""
        at = self.pending.next_retry()
        if self._retry is not None:
            if at is not None and self._retry.when() == at:
                return
            self._retry.cancel()
            self._retry = None
        if at is not None and not self._outputs.stopping:
            self._retry = self.loop.call_at(at, self._retry_due)

    def _retry_due(self) -> None:
        self._retry = None
        self._start_pending(self.loop.time())

    def _ask_for_vmac(self, p: InstancePlan) -> None:
        """Before the election starts: an intent holding nothing but naming the VMAC."""
        log.info(
            "vrrpd.instance.waiting",
            instance=p.name,
            interface=p.advert_interface,
            reason="waiting for netd to create the VMAC",
        )
        self._outputs.publish_intent(
            p.name, p.intent(generation=0, held=False, lease=MIN_LEASE, accept=True).encode()
        )

    def configured(self, plans: Collection[str]) -> None:
        """A new configuration: instances that waited and are gone from it report nothing."""
        for name in self.pending.names():
            if name not in plans and self.pending.started(name):
                self._outputs.forget_state(name)

    # ---- starting ------------------------------------------------------------------------------

    def started(self, runner: Runner, now: float) -> None:
        """A new runner's sockets are open: start its election (or resume), and replace the
        FAULT it reported while it waited."""
        self.begin(runner, now)
        if self.pending.started(runner.name):
            runner.publish_state()

    def begin(self, runner: Runner, now: float) -> None:
        """Start a new runner's election, or resume what netd still holds for it."""
        if now >= self.resume_until and runner.name not in self.awaiting:
            # Long after start-up (a reload adding or re-creating an instance): the report
            # may predate this vrrpd's own withdrawal; resuming is for a restart only.
            runner.feed(Startup(), now)
            runner.trackers_changed(now)
            return
        decision = decide(
            self.applied.get(runner.name),
            runner.fingerprint,
            waiting=self.may_wait(runner.name, now),
        )
        if decision.verdict is Verdict.WAIT:
            # Trackers are evaluated in INIT meanwhile: the decision sees faults and priority.
            self.awaiting.add(runner.name)
            runner.trackers_changed(now)
            return
        self.awaiting.discard(runner.name)
        if decision.verdict is Verdict.RESUME:
            log.info("vrrpd.instance.resuming", instance=runner.name, reason=decision.reason)
            runner.feed(Resume(decision.reason), now)
        else:
            log.info("vrrpd.instance.not_resumed", instance=runner.name, reason=decision.reason)
            runner.feed(Startup(), now)
        runner.trackers_changed(now)

    def stopped(self, name: str) -> None:
        """Instance ``name`` stopped: it waits for nothing any more."""
        self.awaiting.discard(name)

    def applied_changed(self, msg: messages.Applied) -> None:
        """netd's ``net.applied.vrrp:<instance>`` report."""
        instance = msg.owner.removeprefix("vrrp:")
        self.applied[instance] = msg
        runner = self._runners.get(instance)
        if runner is None:
            return
        if instance in self.awaiting:
            self.begin(runner, self.loop.time())
        elif runner.machine.resuming:
            decision = decide(msg, runner.fingerprint, waiting=False)
            if decision.verdict is not Verdict.RESUME:
                # The lease ran out while we listened: resuming would re-add what netd just
                # withdrew, and the peer is about to take over.
                log.info("vrrpd.instance.not_resumed", instance=instance, reason=decision.reason)
                runner.feed(Startup(), self.loop.time())

    def held_changed(self, msg: messages.Held) -> None:
        """netd's ``net.held``: the instances it does not name need not wait any longer."""
        self.held = frozenset(o.removeprefix("vrrp:") for o in msg.owners if o.startswith("vrrp:"))
        now = self.loop.time()
        if now >= self.resume_until:
            return  # the window is over: nobody waits
        for name in sorted(self.awaiting - self.held):
            runner = self._runners.get(name)
            if runner is not None:
                self.begin(runner, now)
        self._start_pending(now)  # VMACs held back for the window: ask netd for them now

    def _window_closed(self) -> None:
        if self._outputs.stopping:
            return
        now = self.loop.time()
        for name in sorted(self.awaiting):
            runner = self._runners.get(name)
            if runner is not None:
                self.begin(runner, now)
            self.awaiting.discard(name)
        self._start_pending(now)  # instances whose VMAC never showed up: ask netd for it

    def cancel(self) -> None:
        """vrrpd stops: nothing starts any more, and the waiting instances report nothing."""
        if self._delayed_start is not None:
            self._delayed_start.cancel()
        if self._retry is not None:
            self._retry.cancel()
        for name in self.pending.names():
            self.pending.started(name)
            self._outputs.forget_state(name)
