"""How a component process runs: nice value, realtime priority, locked memory, CPUs.

keepalived's ``vrrp_priority``, ``vrrp_rt_priority``, ``vrrp_rlimit_rttime``,
``vrrp_no_swap`` and ``vrrp_cpu_affinity`` (and their ``checker_`` twins) set how its VRRP
and checker processes run, so that elections and checks keep their timing on a busy machine.
vrrpd and checkd apply the same settings from ``global_defs``, at their start and whenever a
reload changes them: what the previous settings changed is put back first, then the new
ones are set (keepalived's ``restore_priority``). docs/operations.md, "Process priorities".

Linux keeps scheduling, nice value and CPU affinity per thread: they are set on every thread
of the process (libzmq's I/O thread carries the bus traffic), and threads started later
inherit them. Scripts the component runs must not inherit a raised priority: the scheduling
policy carries ``SCHED_RESET_ON_FORK``, with which the kernel starts every child under the
normal policy and a negative nice value at 0, as keepalived resets them in its script child.

Where this differs from keepalived, because a Python event loop is not keepalived's: the
realtime CPU-time limit (``RLIMIT_RTTIME``) is set only when configured; keepalived's default
of 10 ms without blocking is shorter than some of our callbacks (a reload of a large
configuration), and the hard limit kills the process. ``no_swap`` locks pages as they are
first used (``MCL_ONFAULT``) rather than every page mapped, which would fault in each
thread's whole 8 MiB stack.
"""

from __future__ import annotations

import ctypes
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

__all__ = ["LinuxKernel", "PriorityKeeper", "ProcessPriorities", "SchedulingKernel"]

log = structlog.get_logger(__name__)

_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4


@dataclass(frozen=True, slots=True)
class ProcessPriorities:
    """One process's settings; the defaults change nothing."""

    nice: int | None = None
    #: SCHED_RR priority 1..99 (the nice value is not applied then, as in keepalived)
    realtime: int | None = None
    #: RLIMIT_RTTIME hard limit in microseconds (half of it is the soft limit: SIGXCPU)
    rlimit_rttime: int | None = None
    no_swap: bool = False
    cpus: tuple[int, ...] = ()

    @classmethod
    def from_global_defs(cls, defs: Mapping[str, Any], process: str) -> ProcessPriorities:
        """``process`` (``vrrp`` or ``checker``)'s settings from ``global_defs`` in its wire
        form (``config.current``; defaults omitted). ValueError names a malformed field."""

        def number(key: str, lo: int, hi: int) -> int | None:
            value = defs.get(f"{process}_{key}")
            if value is None:
                return None
            if type(value) is not int or not lo <= value <= hi:
                raise ValueError(f"global_defs {process}_{key} {value!r} is not in [{lo}, {hi}]")
            return value

        cpus = defs.get(f"{process}_cpu_affinity", ())
        if not isinstance(cpus, list | tuple) or not all(
            type(c) is int and 0 <= c < 4096 for c in cpus
        ):
            raise ValueError(f"global_defs {process}_cpu_affinity {cpus!r} is not CPU numbers")
        return cls(
            nice=number("priority", -20, 19),
            realtime=number("rt_priority", 1, 99),
            rlimit_rttime=number("rlimit_rttime", 2, 2**32 - 1),
            no_swap=defs.get(f"{process}_no_swap") is True,
            cpus=tuple(cpus),
        )


class SchedulingKernel(Protocol):
    """The system calls, a seam for tests (``LinuxKernel`` is the real one)."""

    def threads(self) -> list[int]: ...
    def nice(self) -> int: ...
    def set_nice(self, tid: int, value: int) -> None: ...
    def set_policy(self, tid: int, policy: int, priority: int) -> None: ...
    def cpus(self) -> frozenset[int]: ...
    def set_cpus(self, tid: int, cpus: frozenset[int]) -> None: ...
    def rttime(self) -> tuple[int, int]: ...
    def set_rttime(self, soft: int, hard: int) -> None: ...
    def lock_memory(self, locked: bool) -> None: ...


class LinuxKernel:
    def threads(self) -> list[int]:
        return [int(tid) for tid in os.listdir("/proc/self/task")]

    def nice(self) -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)

    def set_nice(self, tid: int, value: int) -> None:
        os.setpriority(os.PRIO_PROCESS, tid, value)  # Linux: ``who`` is a thread id

    def set_policy(self, tid: int, policy: int, priority: int) -> None:
        os.sched_setscheduler(tid, policy, os.sched_param(priority))

    def cpus(self) -> frozenset[int]:
        return frozenset(os.sched_getaffinity(0))

    def set_cpus(self, tid: int, cpus: frozenset[int]) -> None:
        os.sched_setaffinity(tid, cpus)

    def rttime(self) -> tuple[int, int]:
        return resource.getrlimit(resource.RLIMIT_RTTIME)

    def set_rttime(self, soft: int, hard: int) -> None:
        resource.setrlimit(resource.RLIMIT_RTTIME, (soft, hard))

    def lock_memory(self, locked: bool) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = (
            libc.mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT)
            if locked
            else libc.munlockall()
        )
        if rc != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))


class PriorityKeeper:
    """Applies one process's settings, putting back what the previous ones changed."""

    def __init__(self, component: str, kernel: SchedulingKernel | None = None) -> None:
        self.component = component
        self.kernel = kernel if kernel is not None else LinuxKernel()
        self.applied = ProcessPriorities()
        # what the process started with, to go back to when a reload drops a setting
        self._nice = self.kernel.nice()
        self._cpus = self.kernel.cpus()
        self._rttime = self.kernel.rttime()

    def apply(self, wanted: ProcessPriorities) -> list[str]:
        """Set ``wanted``; the problems met (each logged), empty when all took."""
        if wanted == self.applied:
            return []
        problems: list[str] = []
        realtime = wanted.realtime is not None
        nice = self._nice if realtime or wanted.nice is None else wanted.nice
        if realtime:
            policy, priority = os.SCHED_RR | os.SCHED_RESET_ON_FORK, wanted.realtime or 0
        else:
            reset = os.SCHED_RESET_ON_FORK if nice < 0 else 0
            policy, priority = os.SCHED_OTHER | reset, 0
        cpus = frozenset(wanted.cpus) or self._cpus
        for tid in self.kernel.threads():
            self._try(problems, "scheduling policy", self.kernel.set_policy, tid, policy, priority)
            self._try(problems, "nice value", self.kernel.set_nice, tid, nice)
            self._try(problems, "CPU affinity", self.kernel.set_cpus, tid, cpus)
        if realtime and wanted.rlimit_rttime is not None:
            limit = wanted.rlimit_rttime
            self._try(problems, "RLIMIT_RTTIME", self.kernel.set_rttime, limit // 2, limit)
        elif self.applied.rlimit_rttime is not None and self.applied.realtime is not None:
            self._try(problems, "RLIMIT_RTTIME", self.kernel.set_rttime, *self._rttime)
        if wanted.no_swap != self.applied.no_swap:
            self._try(problems, "memory lock", self.kernel.lock_memory, wanted.no_swap)
        self.applied = wanted
        fields = {
            "nice": None if realtime else wanted.nice,
            "realtime": wanted.realtime,
            "rlimit_rttime": wanted.rlimit_rttime if realtime else None,
            "no_swap": wanted.no_swap,
            "cpus": list(wanted.cpus) or None,
        }
        settings = {k: v for k, v in fields.items() if v not in (None, False)}
        if problems:
            log.warning(f"{self.component}.priorities.refused", problems=problems, **settings)
        else:
            log.info(f"{self.component}.priorities", **settings)
        return problems

    @staticmethod
    def _try(problems: list[str], what: str, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except ProcessLookupError:
            pass  # a thread that ended meanwhile
        except OSError as exc:
            problem = f"{what}: {exc.strerror or exc}"
            if problem not in problems:
                problems.append(problem)
