"""Effective priority and tracker faults, as keepalived sums them (pure).

The driver keeps the latest status of every tracker an instance uses and, whenever one changes,
calls :func:`evaluate`; when the returned priority differs it feeds
``PriorityChanged(verdict.priority, verdict.reason)`` to the machine, and for each fault source
that appeared or disappeared ``FaultChanged(source, faulty)``.

Rules (keepalived 2.2.7):

* effective priority = clamp(base + Σ contributions, 1, 254); an owner (255) never moves.
* weight W > 0: +W while the tracked object is OK; W < 0: W (i.e. -|W|) while it is failed.
* ``reverse`` swaps the direction: W > 0 gives -W while OK; W < 0 gives +|W| while failed.
* W = 0: failure puts the instance in FAULT (with ``reverse``: OK does).
* track_file: the file's integer value * W is added (``reverse`` negates W), at most +253;
  with W = 0 a non-zero value is a fault (with ``reverse``: a zero value); a weighted result
  below -253 is a fault.
* A tracker that has not reported yet (status ``None``) adds nothing; if it is unweighted it
  holds the instance in FAULT until it reports (keepalived: weight-0 scripts must report once
  before the instance can leave init). A status vrrpd assumed (``vrrpd.health``: a stale
  verdict, an ``init_fail`` script never reported) counts as reported; ``assumed`` says why,
  for the operator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Contribution",
    "PriorityVerdict",
    "Tracker",
    "TrackerKind",
    "evaluate",
]

_MIN_FILE_RESULT = -253


class TrackerKind(StrEnum):
    INTERFACE = "track_interface"
    SCRIPT = "track_script"
    FILE = "track_file"
    PROCESS = "track_process"
    BFD = "track_bfd"


@dataclass(frozen=True, slots=True)
class Tracker:
    """One tracked object as an instance uses it (the instance's weight already applied)."""

    kind: TrackerKind
    name: str
    weight: int = 0
    reverse: bool = False

    @property
    def label(self) -> str:
        return f"{self.kind.value} {self.name}"


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one tracker does to the priority now: the breakdown ``status`` shows."""

    tracker: Tracker
    status: bool | int | None  # None: no report yet
    delta: int
    fault: bool
    assumed: str | None = None  # why the status was assumed, not reported (stale...)

    def to_wire(self) -> dict[str, object]:
        out: dict[str, object] = {
            "tracker": self.tracker.label,
            "weight": self.tracker.weight,
            "reverse": self.tracker.reverse,
            "status": self.status,
            "delta": self.delta,
            "fault": self.fault,
        }
        if self.assumed is not None:
            out["assumed"] = self.assumed
        return out


@dataclass(frozen=True, slots=True)
class PriorityVerdict:
    priority: int
    faults: frozenset[str]
    reason: str
    contributions: tuple[Contribution, ...] = ()


def _contribution(tracker: Tracker, status: bool | int | None) -> tuple[int, bool]:
    """(priority delta, is a fault) for one tracker."""
    if status is None:
        return 0, tracker.weight == 0
    w = tracker.weight
    if tracker.kind is TrackerKind.FILE:
        # keepalived clamps the file's value to -254..254 and the weighted result to
        # -254..253, and treats -254 as a fault (vrrp_track.c update_track_file_status).
        value = min(max(int(status), -254), 254)
        if w == 0:
            return 0, (value != 0) != tracker.reverse
        delta = value * (-w if tracker.reverse else w)
        if delta < _MIN_FILE_RESULT:
            return 0, True
        return min(delta, 253), False
    ok = bool(status)
    if w == 0:
        return 0, ok if tracker.reverse else not ok
    if w > 0:
        if not ok:
            return 0, False
        return (-w if tracker.reverse else w), False
    if ok:
        return 0, False
    return (-w if tracker.reverse else w), False


def evaluate(
    base: int,
    trackers: Iterable[Tracker],
    status: Mapping[Tracker, bool | int | None],
    assumed: Mapping[Tracker, str] | None = None,
) -> PriorityVerdict:
    """Effective priority and fault sources for ``base`` priority and tracker ``status``.

    ``status`` maps a tracker to True/False (OK/failed), an int (track_file value) or None
    (no report yet); a tracker missing from the mapping counts as None. ``assumed`` names
    the trackers whose status was assumed, with why; it only labels the breakdown.
    """
    why = assumed or {}
    total = base
    faults: set[str] = set()
    parts: list[str] = []
    contributions = []
    for tracker in trackers:
        now = status.get(tracker)
        delta, fault = _contribution(tracker, now)
        contributions.append(Contribution(tracker, now, delta, fault, why.get(tracker)))
        if fault:
            faults.add(tracker.label)
        if delta:
            total += delta
            parts.append(f"{tracker.label} {delta:+d}")
    priority = 255 if base == 255 else min(max(total, 1), 254)
    reason = ", ".join(parts) if parts else "no tracker adjustment"
    return PriorityVerdict(priority, frozenset(faults), reason, tuple(contributions))
