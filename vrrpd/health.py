"""The trackers' inputs: checkd's verdicts on ``health.<name>`` and netd's links.

Keeps the latest verdict per check, with when it arrived, and turns it into each tracker's
status for :func:`vrrpd.priority.evaluate`. A verdict that has outlived its time
(``vrrpd.freshness``: its ``ttl``, or the check's interval) counts as failed: its publisher
went silent (docs/architecture.md, "Failure semantics"); the next verdict counts again. A
status assumed rather than reported (stale, or an ``init_fail`` script never reported) says
so (``assumed``), for ``pykeepalivedctl status``.

Silence only means "the checker is gone" while the bus demonstrably delivers (as netd's
leases, ``netd.leases``): the broker's own heartbeat (``hb.bus``) comes every second, so
once nothing at all has arrived for :data:`BUS_SILENT_AFTER` the silence is the bus's, and
no verdict goes stale until :data:`HOLD_AFTER_BUS` after the bus is heard again (time for the
re-sends it kept back). A hung broker is replaced after 3.5 s: without the hold, every 1 s
script's verdict (3 s) would count as failed meanwhile. A verdict already stale stays so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import structlog

from bus import messages
from core import Config
from vrrpd import freshness
from vrrpd.links import Link
from vrrpd.plan import InstancePlan
from vrrpd.priority import Tracker, TrackerKind
from vrrpd.runner import Runner

__all__ = ["NEVER_REPORTED", "STALE", "Health"]

log = structlog.get_logger(__name__)

STALE = "stale"
NEVER_REPORTED = "never reported"

BUS_SILENT_AFTER = 1.5  # hb.bus comes every second: beyond this the bus itself is silent
HOLD_AFTER_BUS = 2.0  # after a silence, time for the publishers' re-sends to arrive

Status = bool | int | None


class Health:
    """Verdicts by check name; interface trackers read ``links`` (netd's, by name)."""

    def __init__(
        self, links: Mapping[str, Link], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._links = links
        self._clock = clock
        self._rules: dict[str, freshness.Lifetime] = {}
        # only these are logged when stale: health.* also carries verdicts for checkd alone
        # (a real server's, health.rs:<vs>/<rs>)
        self._tracked: frozenset[str] = frozenset()
        self.seen: dict[str, tuple[float, messages.Verdict]] = {}
        self._stale: set[str] = set()  # outlived their time: failed until the next verdict
        self._stale_logged: set[str] = set()
        self._bus_seen = clock()
        self._hold_until = self._bus_seen

    def configure(self, config: Config, plans: Iterable[InstancePlan]) -> bool:
        """Take the checks' intervals and ``init_fail`` from a new configuration, and which
        checks its instances track; True when a rule changed (every tracker's status must be
        read again)."""
        rules = freshness.lifetimes(config)
        changed = rules != self._rules
        self._rules = rules
        self._tracked = frozenset(
            t.name for p in plans for t in p.trackers if t.kind is not TrackerKind.INTERFACE
        )
        return changed

    def heard(self) -> None:
        """Something arrived from the bus (vrrpd subscribes to ``hb.bus`` for this)."""
        now = self._clock()
        if now - self._bus_seen > BUS_SILENT_AFTER:
            self._hold_until = now + HOLD_AFTER_BUS
            log.info("vrrpd.bus.heard_again", silent_for=round(now - self._bus_seen, 3))
        self._bus_seen = now

    def changed(self, verdict: messages.Verdict) -> None:
        """Record a ``health.<name>`` verdict."""
        self.seen[verdict.name] = (self._clock(), verdict)
        self._stale.discard(verdict.name)
        if verdict.name in self._stale_logged:
            self._stale_logged.discard(verdict.name)
            log.info("vrrpd.health.fresh", name=verdict.name, ok=verdict.ok)

    @staticmethod
    def tracks(p: InstancePlan, check: str) -> bool:
        """Does ``p`` track the check (not an interface) named ``check``?"""
        return any(t.name == check and t.kind is not TrackerKind.INTERFACE for t in p.trackers)

    def refresh(self, runner: Runner, plan: InstancePlan | None = None) -> None:
        """Tell ``runner`` its trackers' status (under ``plan``, by default its own)."""
        p = runner.plan if plan is None else plan
        status: dict[Tracker, Status] = {}
        assumed: dict[Tracker, str] = {}
        for tracker in p.trackers:
            status[tracker], why = self.reading(tracker)
            if why is not None:
                assumed[tracker] = why
        disabled = {
            t
            for t in p.trackers
            if t.kind is not TrackerKind.INTERFACE
            and (seen := self.seen.get(t.name)) is not None
            and seen[1].disabled
        }
        runner.track(status, disabled, assumed)

    def reading(self, tracker: Tracker) -> tuple[Status, str | None]:
        """The tracker's status, and why it was assumed (:data:`STALE`,
        :data:`NEVER_REPORTED`) when no fresh report says it."""
        if tracker.kind is TrackerKind.INTERFACE:
            link = self._links.get(tracker.name)
            return (None if link is None else link.up), None
        seen = self.seen.get(tracker.name)
        if seen is None:
            if self._rules.get(tracker.name, freshness.DEFAULT).init_fail:
                return False, NEVER_REPORTED  # keepalived: an init_fail script starts failed
            return None, None
        if self._expired(tracker.name, *seen):
            return False, STALE  # its publisher went silent: treated as failed (docs/design.md)
        verdict = seen[1]
        if tracker.kind is TrackerKind.FILE:
            value = verdict.value
            return (value if value is not None else (0 if verdict.ok else 1)), None
        return verdict.ok, None

    def newly_stale(self) -> list[str]:
        """Tracked checks whose verdict just outlived its time (each logged once)."""
        stale = []
        for name, (at, verdict) in self.seen.items():
            if name not in self._tracked or name in self._stale_logged:
                continue
            if not self._expired(name, at, verdict):
                continue
            self._stale_logged.add(name)
            log.error(
                "vrrpd.health.stale",
                name=name,
                age=round(self._clock() - at, 3),
                fresh_for=self._fresh_for(verdict),
                detail="no verdict re-published; treating it as failed",
            )
            stale.append(name)
        return stale

    def _expired(self, name: str, at: float, verdict: messages.Verdict) -> bool:
        """Has the verdict received at ``at`` outlived its time (while the bus delivered)?"""
        if name in self._stale:
            return True
        now = self._clock()
        if now - at <= self._fresh_for(verdict) or self._bus_silent(now):
            return False
        self._stale.add(name)  # for good: a later bus silence must not revive it
        return True

    def _bus_silent(self, now: float) -> bool:
        """Silent now, or heard again too recently for the held-back re-sends to be in."""
        return now - self._bus_seen > BUS_SILENT_AFTER or now < self._hold_until

    def _fresh_for(self, verdict: messages.Verdict) -> float:
        return freshness.fresh_for(self._rules, verdict.name, verdict.ttl)
