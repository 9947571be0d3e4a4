"""When each real-server checker probes next: one timer heap for every checker, clock-free.

Thousands of checkers share one event loop, so none of them owns a task or a timer: the
heap holds ``(due time, key)`` pairs and the runner (``checkd.lvs_runner``) sleeps until the
earliest. Standard library ``heapq``; a rescheduled or removed key leaves its old entry in
the heap, which is skipped when it surfaces (cheaper than deleting from the middle).

Spreading (docs/checkers.md, "Scheduling"): keepalived fires every checker 1 s after start-up
plus a random part of ``warmup``, so a large configuration probes in one burst. Here each
checker starts at 1 s plus a *phase*: a fraction of its ``warmup`` (or, without one, of its
``delay_loop``) derived from its stable id, so checkers spread evenly over the period and land
in the same place after every restart. After that a checker runs again ``delay`` seconds after
its last attempt ended (``delay_loop``, or ``delay_before_retry`` while retrying, from
``checkd.checker_state``), which keeps the spread.
"""

from __future__ import annotations

import heapq
import zlib

from checkd.checker_state import BOOTSTRAP_DELAY


def phase(key: str, period: float) -> float:
    """A fixed point in ``[0, period)`` for ``key``: the same id always gets the same phase."""
    if period <= 0:
        return 0.0
    return zlib.crc32(key.encode()) / 2**32 * period


def start_delay(key: str, delay_loop: float, warmup: float) -> float:
    """Seconds from start-up (or the checker's arrival by reload) to its first probe."""
    return BOOTSTRAP_DELAY + phase(key, warmup if warmup > 0 else delay_loop)


class TimerHeap:
    """Keys due at times; ``pop_due`` hands out the ones whose time has come, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = 0  # ties keep insertion order and never compare keys

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def at(self, key: str) -> float | None:
        return self._due.get(key)

    def push(self, key: str, when: float) -> None:
        """Schedule ``key`` at ``when``, replacing any earlier schedule for it."""
        self._due[key] = when
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, key))
        if len(self._heap) > 4 * len(self._due) + 64:
            self._compact()

    def cancel(self, key: str) -> None:
        self._due.pop(key, None)

    def next_at(self) -> float | None:
        """The earliest due time, or None when nothing is scheduled."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[str]:
        """Every key due at or before ``now``, unscheduled; push them again to repeat."""
        out: list[str] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return out
            _, _, key = heapq.heappop(self._heap)
            del self._due[key]
            out.append(key)

    def _drop_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._due.get(e[2]) == e[0]]
        heapq.heapify(self._heap)
