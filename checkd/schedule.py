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
from collections import deque

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
    """Keys due at times; ``pop_due`` hands out the ones whose time has come, earliest first
    (keys due at the same time together, in the order they were first scheduled there).

    The heap holds bare due times, and a dict maps each time to its key (or, for the rare
    times several keys share, to a deque of them): no tuple per entry. A tuple is tracked by
    the garbage collector from its creation until a young collection untracks it, and with
    one pushed and one popped per check the young generation filled with thousands of them
    between collections, each collection walking them all (docs/benchmarks.md). A key
    rescheduled or cancelled stays where it was, skipped when its time surfaces because its
    due time (``_due``) is no longer that one (cheaper than deleting from the middle).
    """

    def __init__(self) -> None:
        self._heap: list[float] = []
        self._at: dict[float, str] = {}  # a time with one key pushed for it
        self._ties: dict[float, deque[str]] = {}  # a time with several
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def at(self, key: str) -> float | None:
        return self._due.get(key)

    def push(self, key: str, when: float) -> None:
        """Schedule ``key`` at ``when``, replacing any earlier schedule for it."""
        self._due[key] = when
        ties = self._ties.get(when)
        if ties is not None:
            ties.append(key)  # the heap has this time already
            return
        first = self._at.get(when)
        if first is not None:
            del self._at[when]
            self._ties[when] = deque((first, key))
            return
        self._at[when] = key
        heapq.heappush(self._heap, when)
        if len(self._heap) > 4 * len(self._due) + 64:
            self._compact()

    def cancel(self, key: str) -> None:
        self._due.pop(key, None)

    def next_at(self) -> float | None:
        """The earliest due time, or None when nothing is scheduled."""
        self._drop_stale()
        return self._heap[0] if self._heap else None

    def pop_due(self, now: float) -> list[str]:
        """Every key due at or before ``now``, unscheduled; push them again to repeat."""
        out: list[str] = []
        heap, due = self._heap, self._due
        while heap and heap[0] <= now:
            when = heapq.heappop(heap)
            key = self._at.pop(when, None)
            keys = (key,) if key is not None else self._ties.pop(when, ())
            for key in keys:
                if due.get(key) == when:  # live, and only once (a key pushed twice here)
                    del due[key]
                    out.append(key)
        return out

    def _live(self, when: float) -> bool:
        key = self._at.get(when)
        if key is not None:
            return self._due.get(key) == when
        return any(self._due.get(k) == when for k in self._ties.get(when, ()))

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            when = heapq.heappop(heap)
            self._at.pop(when, None)
            self._ties.pop(when, None)

    def _compact(self) -> None:
        self._heap, self._at, self._ties = [], {}, {}
        due, self._due = self._due, {}
        for key, when in due.items():
            self.push(key, when)
