"""The trackers' inputs: checkd's verdicts on ``health.<name>`` and netd's links.

Keeps the latest verdict per check and turns it into each tracker's status for
:func:`vrrpd.priority.evaluate`. A verdict not re-published within :data:`HEALTH_GRACE`
counts as failed: its publisher went silent (docs/architecture.md, "Failure semantics").
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog

from bus import messages
from vrrpd.links import Link
from vrrpd.plan import InstancePlan
from vrrpd.priority import Tracker, TrackerKind
from vrrpd.runner import Runner

__all__ = ["HEALTH_GRACE", "Health"]

log = structlog.get_logger(__name__)

HEALTH_GRACE = 15.0  # a verdict not re-published for this long counts as failed


class Health:
    """Verdicts by check name; interface trackers read ``links`` (netd's, by name)."""

    def __init__(self, links: Mapping[str, Link]) -> None:
        self._links = links
        self.seen: dict[str, tuple[float, messages.Verdict]] = {}
        self._stale_logged: set[str] = set()

    def changed(self, verdict: messages.Verdict) -> None:
        """Record a ``health.<name>`` verdict."""
        self.seen[verdict.name] = (time.monotonic(), verdict)
        self._stale_logged.discard(verdict.name)

    @staticmethod
    def tracks(p: InstancePlan, check: str) -> bool:
        """Does ``p`` track the check (not an interface) named ``check``?"""
        return any(t.name == check and t.kind is not TrackerKind.INTERFACE for t in p.trackers)

    def refresh(self, runner: Runner, plan: InstancePlan | None = None) -> None:
        """Tell ``runner`` its trackers' status (under ``plan``, by default its own)."""
        p = runner.plan if plan is None else plan
        status = {tracker: self.status(tracker) for tracker in p.trackers}
        disabled = {
            t
            for t in p.trackers
            if t.kind is not TrackerKind.INTERFACE
            and (seen := self.seen.get(t.name)) is not None
            and seen[1].disabled
        }
        runner.track(status, disabled)

    def status(self, tracker: Tracker) -> bool | int | None:
        if tracker.kind is TrackerKind.INTERFACE:
            link = self._links.get(tracker.name)
            return None if link is None else link.up
        seen = self.seen.get(tracker.name)
        if seen is None:
            return None
        at, verdict = seen
        if time.monotonic() - at > HEALTH_GRACE:
            return False  # its publisher went silent: treated as failed (docs/design.md)
        if tracker.kind is TrackerKind.FILE:
            value = verdict.value
            return value if value is not None else (0 if verdict.ok else 1)
        return verdict.ok

    def newly_stale(self) -> list[str]:
        """Checks whose verdict just outlived :data:`HEALTH_GRACE` (each logged once)."""
        stale = []
        for name, (at, _body) in self.seen.items():
            if time.monotonic() - at > HEALTH_GRACE and name not in self._stale_logged:
                self._stale_logged.add(name)
                log.error(
                    "vrrpd.health.stale",
                    name=name,
                    grace=HEALTH_GRACE,
                    detail="no verdict re-published; treating it as failed",
                )
                stale.append(name)
        return stale
