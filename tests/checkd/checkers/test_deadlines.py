"""checkd.checkers.deadlines: every live entry expires once, in order, and no finished one
does, however many finished entries (more than one wake-up drops) stand before it."""

from __future__ import annotations

import asyncio
import gc

from checkd.checkers import deadlines
from checkd.checkers.deadlines import Deadlines
from tests.checkd.support import until


def test_live_entries_expire_once_in_order_behind_many_finished_ones() -> None:
    count = deadlines.DROP_BATCH * 5 + 7  # several wake-ups' worth of finished heads
    live = {k for k in range(count) if k % 97 == 0 or k == count - 1}
    expired: list[tuple[int, int]] = []

    async def scenario() -> None:
        d = Deadlines(
            asyncio.get_running_loop(),
            lambda key, serial: key in live and serial == key + 1,
            lambda key, serial: expired.append((key, serial)),
        )
        try:
            for key in range(count):
                # two durations: two FIFOs, the earliest head of either is the timer
                d.add(0.05 if key % 2 else 0.02, key, key + 1)
            await until(lambda: len(expired) == len(live), 10, "every live deadline")
        finally:
            d.close()

    asyncio.run(scenario())
    assert sorted(expired) == sorted((k, k + 1) for k in live)
    # within one duration, in the order they were given
    for parity in (0, 1):
        keys = [k for k, _ in expired if k % 2 == parity]
        assert keys == sorted(keys)


def test_a_stale_serial_does_not_expire() -> None:
    """A descriptor reused by a later attempt: the old entry names the old serial."""
    expired: list[int] = []
    current = {3: 2}  # key 3 now belongs to serial 2

    async def scenario() -> None:
        d = Deadlines(
            asyncio.get_running_loop(),
            lambda key, serial: current.get(key) == serial,
            lambda key, serial: expired.append(serial),
        )
        try:
            d.add(0.01, 3, 1)
            d.add(0.02, 3, 2)
            await until(lambda: bool(expired), 10, "the live deadline")
        finally:
            d.close()

    asyncio.run(scenario())
    assert expired == [2]


def test_an_entry_is_nothing_the_young_collections_walk() -> None:
    """An entry per attempt (some 10,000 a second): none may be an object the collector
    tracks, or the young generation fills with them between collections."""
    loop = asyncio.new_event_loop()
    d = Deadlines(loop, lambda key, serial: True, lambda key, serial: None)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        d.add(2.0, 0, 0)  # the FIFO and the loop timer exist before counting
        gc.collect()
        before = len(gc.get_objects(0))
        for key in range(1, 2_001):
            d.add(2.0, key, key)
        grown = len(gc.get_objects(0)) - before
    finally:
        if was_enabled:
            gc.enable()
        d.close()
        loop.close()
    # a tuple per entry left 2,000 tracked objects here
    assert grown < 10, f"{grown} new objects for the collector per 2,000 entries"
