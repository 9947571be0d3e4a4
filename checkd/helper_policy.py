"""When checkd forks its connect helper: only when its one loop can no longer keep the schedule.

The helper (``checkd.checkers.connect_helper``) takes the TCP_CHECKs' system calls off the
loop, at a price: some 10 % more CPU in all (the batches both ways, the helper's own loop;
docs/benchmarks.md). A loop that keeps its checkers on time does not need it, and 10,000
TCP_CHECKs a second alone keep it so on two cores (drift p99 ~3 ms at half a core). What tells
the loop is short of time is the schedule itself: when more than ``share`` of the attempts
started in a ``window`` were over ``late`` behind their due time, and the TCP_CHECKs make at
least ``min_rate`` attempts a second (below that the helper would take too little off the
loop to matter), the helper is forked, provided the machine has the CPU it would need: idle
time on checkd's CPUs over the window of at least ``cost`` seconds per attempt. On a machine
already busy (the loop late because it waits for a CPU) another process competing for the
same cores only makes the loop wait longer (bench/checks.py with a busy process beside it:
docs/benchmarks.md). The first round after a configuration is not judged
(its results rebuild every pool member; docs/checkers.md, "Scheduling"), nor the window a
reload falls in.

Pure but for ``idle_seconds`` (a read of /proc/stat): the runner counts
(``LateStarts.note``) and asks at the end of each window (``calls_for_helper``).
``python -m checkd --connect-helper on|off`` (a component run alone, for debugging), tests and
the bench force either answer (``always``, ``never``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_POLICY", "POLICIES", "HelperPolicy", "LateStarts", "idle_seconds"]


@dataclass(frozen=True, slots=True)
class HelperPolicy:
    min_rate: float = 2000.0  # TCP_CHECK attempts a second (the sum of 1/delay_loop)
    late: float = 0.010  # seconds behind its due time that make a start late
    share: float = 0.01  # of the window's starts (so: a drift p99 over ``late``)
    window: float = 2.0  # seconds
    cost: float = 45e-6  # CPU seconds the helper spends on one attempt (docs/benchmarks.md)

    @classmethod
    def always(cls) -> HelperPolicy:
        """Fork the helper at the first window after the first round, whatever the load."""
        return cls(min_rate=0.0, late=-1.0, share=0.0, cost=0.0)

    @classmethod
    def never(cls) -> HelperPolicy:
        return cls(min_rate=math.inf)


DEFAULT_POLICY = HelperPolicy()
#: by the name ``python -m checkd --connect-helper`` and bench/checks.py ``--helper`` take
POLICIES = {"auto": DEFAULT_POLICY, "on": HelperPolicy.always(), "off": HelperPolicy.never()}


class LateStarts:
    """Attempts started in the current window, and how many of them were late."""

    __slots__ = ("late", "limit", "started")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = 0
        self.late = 0

    def note(self, lateness: float) -> None:
        self.started += 1
        if lateness > self.limit:
            self.late += 1

    def calls_for_helper(self, policy: HelperPolicy, tcp_rate: float, idle: float) -> bool:
        """Whether this window says the loop is short of time for this many TCP_CHECKs a
        second, with ``idle`` CPUs' worth of idle time (0.5: half a core) to give the helper."""
        if tcp_rate < policy.min_rate or self.started == 0:
            return False
        return self.late > policy.share * self.started and idle >= tcp_rate * policy.cost


def idle_seconds(cpus: Iterable[int], stat: str = "/proc/stat") -> float:
    """Idle time (idle and iowait) of these CPUs since boot, in seconds: the runner takes
    the difference over each window."""
    wanted = {f"cpu{n}" for n in cpus}
    ticks = 0
    with open(stat) as lines:
        for line in lines:
            fields = line.split()
            if fields and fields[0] in wanted:
                ticks += int(fields[4]) + int(fields[5])
    return ticks / os.sysconf("SC_CLK_TCK")
