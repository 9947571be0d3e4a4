"""Deadlines of many attempts under way: one FIFO per duration, one loop timer.

Deadlines given with the same duration come due in the order they were given, so a FIFO per
duration stays sorted without a heap, and the earliest head of all is the one loop timer. An
entry is plain numbers (deadline, key, serial), which the garbage collector stops tracking,
and names no object: an attempt that ends early leaves its entry behind, recognised as stale
by the owner's ``live(key, serial)`` when it reaches the head. Used by the TCP_CHECK connector
(``checkd.checkers.tcp_connects``) and the HTTP_GET fetcher (``checkd.checkers.http_fetches``).

Stale heads are dropped at most ``DROP_BATCH`` per wake-up: at 10,000 checks a second with a
2 s timeout a FIFO holds some 20,000 finished entries when its timer fires, and dropping them
all in one callback held the event loop for milliseconds (schedule drift, bench/checks.py).
The timer then fires at the first head kept, which is never after a live entry's deadline.

A FIFO is three deques of plain numbers (deadline, key, serial) rather than one deque of
tuples: a tuple is tracked by the garbage collector from its creation until the first young
collection untracks it, and every one released (untracked long before) takes the young count
down again, so with one tuple in and one out per attempt the young generation filled with
some 11,000 of them between collections, each young collection walking them all (several
milliseconds, bench/checks.py --diagnose). Floats and ints are never tracked.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

#: Stale heads dropped per wake-up (a few hundred microseconds of work).
DROP_BATCH = 512

#: ``live(key, serial)``: whether the entry still stands for an attempt under way.
Live = Callable[[int, int], bool]
#: ``expired(key, serial)``: a live entry's deadline has passed.
Expired = Callable[[int, int], None]


class _Fifo:
    """One duration's entries, oldest first, as three deques in step."""

    __slots__ = ("deadlines", "keys", "serials")

    def __init__(self) -> None:
        self.deadlines: deque[float] = deque()
        self.keys: deque[int] = deque()
        self.serials: deque[int] = deque()

    def append(self, deadline: float, key: int, serial: int) -> None:
        self.deadlines.append(deadline)
        self.keys.append(key)
        self.serials.append(serial)

    def popleft(self) -> tuple[int, int]:
        self.deadlines.popleft()
        return self.keys.popleft(), self.serials.popleft()


class Deadlines:
    """Deadlines in the event loop's clock; ``expired`` is called for each live one that passes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, live: Live, expired: Expired) -> None:
        self._loop = loop
        self._live = live
        self._expired = expired
        self._fifos: dict[float, _Fifo] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, duration: float, key: int, serial: int) -> None:
        """``key``/``serial`` is due to expire ``duration`` seconds from now."""
        deadline = self._loop.time() + duration
        queue = self._fifos.get(duration)
        if queue is None:
            queue = self._fifos[duration] = _Fifo()
        queue.append(deadline, key, serial)
        if self._timer is None or deadline < self._timer.when():
            self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fifos.clear()

    def _expire(self) -> None:
        self._timer = None
        now = self._loop.time()
        live, expired = self._live, self._expired
        for duration, queue in list(self._fifos.items()):
            deadlines = queue.deadlines
            while deadlines and deadlines[0] <= now:
                key, serial = queue.popleft()
                if live(key, serial):
                    expired(key, serial)
            if not deadlines and self._fifos.get(duration) is queue:
                del self._fifos[duration]
        self._arm()

    def _arm(self) -> None:
        """The timer at the earliest head, after dropping some stale heads."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live = self._live
        budget = DROP_BATCH
        earliest: float | None = None
        for queue in self._fifos.values():
            deadlines, keys, serials = queue.deadlines, queue.keys, queue.serials
            while deadlines and budget and not live(keys[0], serials[0]):
                queue.popleft()
                budget -= 1
            if deadlines and (earliest is None or deadlines[0] < earliest):
                earliest = deadlines[0]
        if earliest is not None:
            self._timer = self._loop.call_at(earliest, self._expire)
