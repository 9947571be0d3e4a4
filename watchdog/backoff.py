"""keepalived's respawn rate limit, as a pure policy.

A child that ran for at least ``HEALTHY_RUN`` seconds is restarted at once and the delay is reset.
A child that keeps dying young is restarted after 0 s, then 1 s, doubling each time, capped at
``MAX_DELAY`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

HEALTHY_RUN = 60.0
MAX_DELAY = 60.0


@dataclass(slots=True)
class Backoff:
    healthy_run: float = HEALTHY_RUN
    max_delay: float = MAX_DELAY
    _next: float = 0.0

    def delay_after(self, ran_for: float) -> float:
        """Seconds to wait before restarting a child that exited after ``ran_for`` seconds."""
        if ran_for >= self.healthy_run:
            self._next = 0.0
        delay = self._next
        self._next = min(self.max_delay, 1.0 if delay == 0 else delay * 2)
        return delay
