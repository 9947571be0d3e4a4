"""The single timer heap behind vrrpd's machines: latest deadline wins, cancels stick."""

from __future__ import annotations

import asyncio

from vrrpd.timers import TimerHeap


def test_only_the_latest_deadline_of_a_timer_fires_and_cancelled_ones_never() -> None:
    async def scenario() -> list[tuple[str, str]]:
        fired: list[tuple[str, str]] = []
        heap = TimerHeap(lambda inst, timer, now: fired.append((inst, timer)))
        now = asyncio.get_running_loop().time()
        heap.set("VI_1", "adver", now + 0.01)
        heap.set("VI_1", "adver", now + 0.03)  # re-armed: the 0.01 entry is stale
        heap.set("VI_2", "master_down", now + 0.02)
        heap.set("VI_3", "adver", now + 0.015)
        heap.cancel("VI_3", "adver")
        heap.set("VI_4", "adver", now + 0.01)
        heap.cancel_instance("VI_4")
        await asyncio.sleep(0.06)
        heap.close()
        return fired

    assert asyncio.run(scenario()) == [("VI_2", "master_down"), ("VI_1", "adver")]


def test_a_timer_set_from_inside_a_firing_callback_is_honoured() -> None:
    async def scenario() -> int:
        count = 0
        heap: TimerHeap

        def fire(inst: str, timer: str, now: float) -> None:
            nonlocal count
            count += 1
            if count < 3:
                heap.set(inst, timer, now + 0.005)

        heap = TimerHeap(fire)
        heap.set("VI_1", "adver", asyncio.get_running_loop().time() + 0.005)
        await asyncio.sleep(0.08)
        heap.close()
        return count

    assert asyncio.run(scenario()) == 3
