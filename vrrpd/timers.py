"""One timer heap for every instance, behind a single asyncio timer handle.

Machines re-arm their timers on every advert; allocating an asyncio handle each time would put
an allocation and a cancellation on the hot path. Instead deadlines go into a heap and only the
earliest holds a loop handle. The latest deadline per (instance, timer) wins, and a deadline
that only moves later (a backup's master-down timer, pushed back by every advert) does not
touch the heap: its queued entry surfaces at the old time and is queued again at the new one.
Entries superseded by an earlier deadline, or cancelled, are skipped when they surface.
A timer name may be allowed to fire a little early when the heap wakes for another timer
anyway (``early``): timers that tolerate it then share wake-ups.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Mapping

Key = tuple[str, str]  # (instance, timer name)


class TimerHeap:
    def __init__(
        self, fire: Callable[[str, str, float], None], early: Mapping[str, float] | None = None
    ) -> None:
        self._fire = fire
        #: per timer name, how long before its deadline it may fire when the heap wakes for
        #: another one anyway (adverts: sending one a little early is harmless, and hundreds
        #: of instances then share a wake-up instead of waking the loop once each)
        self._early = dict(early or {})
        self._max_early = max(self._early.values(), default=0.0)
        self._heap: list[tuple[float, str, str]] = []
        self._due: dict[Key, float] = {}
        #: the live heap entry per key (the one whose deadline is here); others are stale
        self._queued: dict[Key, float] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None

    def set(self, instance: str, timer: str, deadline: float) -> None:
        key = (instance, timer)
        self._due[key] = deadline
        queued = self._queued.get(key)
        if queued is not None and queued <= deadline:
            return  # that entry surfaces first and is queued again at the deadline
        self._queued[key] = deadline
        heapq.heappush(self._heap, (deadline, instance, timer))
        if self._handle_at is None or deadline < self._handle_at:
            self._arm(deadline)

    def cancel(self, instance: str, timer: str) -> None:
        self._due.pop((instance, timer), None)

    def cancel_instance(self, instance: str) -> None:
        for key in [k for k in self._due if k[0] == instance]:
            del self._due[key]

    def armed(self, instance: str, timer: str) -> bool:
        return (instance, timer) in self._due

    def _arm(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(deadline, self._run)
        self._handle_at = deadline

    def _surface(self, now: float | None) -> tuple[Key, float] | None:
        """Pop the head entry: (key, deadline) when it fires now, else None (dropped as
        stale or cancelled, or queued again at its moved deadline)."""
        at, instance, timer = heapq.heappop(self._heap)
        key = (instance, timer)
        if self._queued.get(key) != at:
            return None
        del self._queued[key]
        due = self._due.get(key)
        if due is None:
            return None
        if now is not None and due <= now:
            return key, due
        self._queued[key] = due
        heapq.heappush(self._heap, (due, instance, timer))
        return None

    def _run(self) -> None:
        self._handle = self._handle_at = None
        now = asyncio.get_running_loop().time()
        held: list[tuple[float, str, str]] = []
        while self._heap and self._heap[0][0] <= now + self._max_early:
            at, _, timer = self._heap[0]
            limit = now + self._early.get(timer, 0.0)
            if at > limit:
                held.append(heapq.heappop(self._heap))  # soon, but not allowed to fire early
                continue
            fired = self._surface(limit)
            if fired is not None:
                (instance, timer), _ = fired
                del self._due[(instance, timer)]
                self._fire(instance, timer, now)
        for entry in held:
            heapq.heappush(self._heap, entry)
        # Settle the head so the next handle is for a live deadline, not a stale or moved one.
        while self._heap and self._due.get(self._heap[0][1:]) != self._heap[0][0]:
            self._surface(None)
        self._arm_for_head()

    def _arm_for_head(self) -> None:
        # A callback that re-armed its own timer armed the handle at that (later) deadline:
        # the head may be due sooner, and must not wait for it.
        if self._heap and (self._handle_at is None or self._heap[0][0] < self._handle_at):
            self._arm(self._heap[0][0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._heap.clear()
        self._due.clear()
        self._queued.clear()
