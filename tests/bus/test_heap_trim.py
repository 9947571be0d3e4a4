"""bus.heap: when a component hands its free heap pages back (docs/benchmarks.md)."""

from __future__ import annotations

from bus.heap import FIRST_TRIM_BEAT, TRIM_EVERY_BEATS, HeapTrim, _malloc_trim


def test_trims_after_the_start_burst_then_once_a_minute() -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    heap = HeapTrim(trim)
    trimmed = [beat for beat in range(1, 150) if heap.beat()]
    first = FIRST_TRIM_BEAT
    assert trimmed == [first, first + TRIM_EVERY_BEATS, first + 2 * TRIM_EVERY_BEATS]
    assert calls == [0, 0, 0]  # pad 0: keep nothing spare at the top of the heap


def test_glibc_offers_malloc_trim() -> None:
    # Debian's C library is glibc: the trim must be found, not silently skipped.
    trim = _malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)
