"""checkd.checkers.deadlines: every live entry expires once, in order, and no finished one
does, however many finished entries (more than one wake-up drops) stand before it."""

from __future__ import annotations

import asyncio

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
