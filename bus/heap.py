"""Give the C heap's free pages back to the kernel once a burst of work is over.

A component's busiest moments are its start and a reload: decoding the configuration and
building every instance's state at once. Objects above 512 bytes and the C libraries' buffers
come from glibc's malloc, which keeps the pages freed after such a burst for the next one; in a
daemon the next one may be months away, and meanwhile those pages count in its memory (with
255 instances, about 4 MiB over the node; docs/benchmarks.md, "Memory, 2026-12-06, later").
glibc's ``malloc_trim(0)`` hands back every whole free page, not only the top of the heap. It
walks malloc's free lists once (0.2 ms in a heap the size of vrrpd's at 255 instances), so a
component runs it from its heartbeat loop (``bus.component``): a few beats after its start,
then once a minute, which also catches a reload's burst. Where the C library has no
``malloc_trim`` (musl), it does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["HeapTrim"]

#: beats after the start before the first trim: the start-up's burst is over by then
FIRST_TRIM_BEAT = 3
#: beats between trims after that
TRIM_EVERY_BEATS = 60


def _malloc_trim() -> Callable[[int], int] | None:
    # The process's own symbols: libc is loaded already (find_library would run ldconfig).
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]  # ctypes' foreign functions are untyped


class HeapTrim:
    """Counts heartbeats and trims the heap on the schedule above."""

    def __init__(self, trim: Callable[[int], int] | None = None) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self._beats = 0

    def beat(self) -> bool:
        """One heartbeat went out; True when this one trimmed the heap."""
        self._beats += 1
        since_first = self._beats - FIRST_TRIM_BEAT
        due = since_first >= 0 and since_first % TRIM_EVERY_BEATS == 0
        if not due or self._trim is None:
            return False
        self._trim(0)
        return True
