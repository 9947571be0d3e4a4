"""Opt-in: let the kernel merge the identical pages of the watchdog and its forked children.

A child forked from the watchdog's image copies every image page it writes to, and CPython
3.11 writes to every object it touches (reference counts, the specializing interpreter's
counters): about 30 % of each child's private pages end up identical to the watchdog's
again, and most of the rest differ from it in a few words (docs/benchmarks.md, "Memory,
2026-12-06"; ``bench/cow_pages.py``). Kernel samepage merging (KSM) finds pages with the same
content and maps one copy, read-only, in every process again.

With ``PYKEEPALIVED_KSM=1`` in its environment the watchdog marks itself mergeable
(``prctl(PR_SET_MEMORY_MERGE)``, Linux 6.4+) before its first fork; its forked children
inherit the mark. Merging happens only where the administrator runs the kernel's scanner
(``echo 1 > /sys/kernel/mm/ksm/run``), which costs that thread's CPU, and merged pages are
shared with every other mergeable process on the machine (the usual KSM caveat about timing
side channels between them). Off by default; with ``PYKEEPALIVED_SPAWN=exec`` it does nothing.
"""

from __future__ import annotations

import ctypes
import os

import structlog

log = structlog.get_logger(__name__)

KSM_ENV = "PYKEEPALIVED_KSM"
PR_SET_MEMORY_MERGE = 67  # <linux/prctl.h>, Linux 6.4


def wanted() -> bool:
    return os.environ.get(KSM_ENV, "") == "1"


def mark_mergeable() -> bool:
    """Mark this process (and the children it forks from now on) mergeable; False, logged,
    where the kernel does not offer it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) == 0:
        log.info("watchdog.ksm.merge")
        return True
    errno = ctypes.get_errno()
    log.warning("watchdog.ksm.unavailable", reason=os.strerror(errno))
    return False
