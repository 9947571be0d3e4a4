"""One timer heap for every instance, behind a single asyncio timer handle.

Machines re-arm their timers on every advert; allocating an asyncio handle each time would put
an allocation and a cancellation on the hot path. Instead deadlines go into a heap with lazy
deletion (the latest deadline per (instance, timer) wins; older heap entries are skipped when
they surface) and only the earliest deadline holds a loop handle.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable

Key = tuple[str, str]  # (instance, timer name)


class TimerHeap:
    def __init__(self, fire: Callable[[str, str, float], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[float, str, str]] = []
        self._due: dict[Key, float] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None

    def set(self, instance: str, timer: str, deadline: float) -> None:
        self._due[(instance, timer)] = deadline
        heapq.heappush(self._heap, (deadline, instance, timer))
        if self._handle_at is None or deadline < self._handle_at:
            self._arm(deadline)

    def cancel(self, instance: str, timer: str) -> None:
        self._due.pop((instance, timer), None)

    def cancel_instance(self, instance: str) -> None:
        for key in [k for k in self._due if k[0] == instance]:
            del self._due[key]

    def _arm(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(deadline, self._run)
        self._handle_at = deadline

    def _run(self) -> None:
        self._handle = self._handle_at = None
        now = asyncio.get_running_loop().time()
        while self._heap and self._heap[0][0] <= now:
            deadline, instance, timer = heapq.heappop(self._heap)
            if self._due.get((instance, timer)) == deadline:
                del self._due[(instance, timer)]
                self._fire(instance, timer, now)
        # Drop stale heads so the next handle is for a live deadline.
        while self._heap and self._due.get(self._heap[0][1:]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        if self._heap and self._handle is None:
            self._arm(self._heap[0][0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._heap.clear()
        self._due.clear()
