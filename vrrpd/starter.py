"""When each configured instance starts, and whether it starts afresh or resumes.

* ``vrrp_startup_delay``/``vrrp_delay_after_boot``: no instance starts before the delay after
  vrrpd's first config has passed;
* an instance starts once netd has reported its interface (and its VMAC, which netd creates
  when asked) with an address to send adverts from;
* within :data:`vrrpd.resume.RESUME_WINDOW` of vrrpd's start, a new instance waits in INIT for
  netd's ``net.applied.vrrp:<instance>`` and resumes what netd still holds for it
  (:func:`vrrpd.resume.decide`; docs/architecture.md, "A quick vrrpd restart resumes").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from vrrpd.host import RunnerHost
from vrrpd.links import Link
from vrrpd.machine import Resume, Startup
from vrrpd.packet import IPAddress
from vrrpd.plan import InstancePlan
from vrrpd.resume import RESUME_WINDOW, Verdict, decide
from vrrpd.runner import MIN_LEASE, Runner

__all__ = ["Starter"]

log = structlog.get_logger(__name__)


class Starter:
    """Start-up decisions for the instances in ``runners``; ``start_pending(now)`` starts
    whatever may start now (called when the delay or the resume window ends)."""

    def __init__(
        self,
        runners: Mapping[str, Runner],
        host: RunnerHost,
        start_pending: Callable[[float], None],
    ) -> None:
        self._runners = runners
        self._host = host
        self._start_pending = start_pending
        #: netd's last net.applied.vrrp:<instance> report, by instance (see vrrpd.resume)
        self.applied: dict[str, Mapping[str, Any]] = {}
        #: instances started within RESUME_WINDOW still waiting in INIT for netd's report
        self.awaiting: set[str] = set()
        self.resume_until = float("-inf")
        #: vrrp_startup_delay: no instance starts before this loop time (set by the first config)
        self.start_after: float | None = None
        self._delayed_start: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

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

    def _delay_over(self) -> None:
        self.start_after = float("-inf")  # call_at may fire a clock tick early
        self._start_pending(self.loop.time())

    def cancel(self) -> None:
        """vrrpd stops: nothing starts any more."""
        if self._delayed_start is not None:
            self._delayed_start.cancel()

    def pending(
        self, now: float, plans: Mapping[str, InstancePlan], links: Mapping[str, Link]
    ) -> list[tuple[InstancePlan, Link, IPAddress]]:
        """The instances not running yet that may start now: each plan with its interface
        and the address to send adverts from. Asks netd for missing VMACs."""
        if self.start_after is not None and now < self.start_after:
            return []  # vrrp_startup_delay: the delayed call starts them
        ready = []
        for name, p in plans.items():
            if name in self._runners:
                continue
            link = links.get(p.interface)
            if link is None:
                continue
            if p.advert_interface not in links:
                if now < self.resume_until:
                    # A VMAC netd still has is reported at once; an empty intent sent now
                    # would withdraw the VIPs a quick restart is about to resume.
                    continue
                self._ask_for_vmac(p)  # netd creates it; its net.link starts us
                continue
            taken = {v for q in plans.values() for v in q.vips}
            primary = p.unicast_src or link.primary(p.family, exclude=taken)
            if primary is None:
                log.warning(
                    "vrrpd.instance.waiting",
                    instance=name,
                    interface=p.interface,
                    reason=f"no IPv{p.family} address to send adverts from",
                )
                continue
            ready.append((p, link, primary))
        return ready

    def _ask_for_vmac(self, p: InstancePlan) -> None:
        """Before the election starts: an intent holding nothing but naming the VMAC."""
        log.info(
            "vrrpd.instance.waiting",
            instance=p.name,
            interface=p.advert_interface,
            reason="waiting for netd to create the VMAC",
        )
        self._host.publish_intent(
            p.name,
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
                **p.vmac_fields,
            },
        )

    def begin(self, runner: Runner, now: float) -> None:
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

    def stopped(self, name: str) -> None:
        """Instance ``name`` stopped: it waits for nothing any more."""
        self.awaiting.discard(name)

    def applied_changed(self, body: Mapping[str, Any]) -> None:
        """netd's ``net.applied.vrrp:<instance>`` report."""
        instance = str(body["owner"]).removeprefix("vrrp:")
        self.applied[instance] = body
        runner = self._runners.get(instance)
        if runner is None:
            return
        if instance in self.awaiting:
            self.begin(runner, self.loop.time())
        elif runner.machine.resuming:
            decision = decide(body, runner.fingerprint, waiting=False)
            if decision.verdict is not Verdict.RESUME:
                # The lease ran out while we listened: resuming would re-add what netd just
                # withdrew, and the peer is about to take over.
                log.info("vrrpd.instance.not_resumed", instance=instance, reason=decision.reason)
                runner.feed(Startup(), self.loop.time())

    def _window_closed(self) -> None:
        if self._host.stopping:
            return
        now = self.loop.time()
        for name in sorted(self.awaiting):
            runner = self._runners.get(name)
            if runner is not None:
                self.begin(runner, now)
            self.awaiting.discard(name)
        self._start_pending(now)  # instances whose VMAC never showed up: ask netd for it
