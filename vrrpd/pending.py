"""Instances that cannot start yet: why, when to try again, and what ``vrrp.state`` says.

An instance needs its interface, an address to send from and its sockets before its election
can start. Until then it is in FAULT, as keepalived's is, with the reason in ``faults`` of
``vrrp.state.<instance>`` (so ``pykeepalivedctl status`` shows it). vrrpd.starter tries again on
every ``net.link`` change that can fix it (an address appearing or leaving DAD, the link
coming up) and, for what no netlink event announces, after a bounded back-off.

Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backoff", "Pending", "PendingStarts", "fault_state"]

FIRST_RETRY = 0.5
MAX_RETRY = 8.0


@dataclass(slots=True)
class Backoff:
    """Doubling delays from ``first`` up to ``cap``; :meth:`reset` starts over."""

    first: float = FIRST_RETRY
    cap: float = MAX_RETRY
    attempts: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * (1 << min(self.attempts, 16)))
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


@dataclass(slots=True)
class Pending:
    reason: str
    retry_at: float
    backoff: Backoff = field(default_factory=Backoff)


class PendingStarts:
    """The instances waiting to start, each with its reason and its next retry."""

    def __init__(self, first: float = FIRST_RETRY, cap: float = MAX_RETRY) -> None:
        self.first, self.cap = first, cap
        self._by_name: dict[str, Pending] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def reason(self, name: str) -> str | None:
        entry = self._by_name.get(name)
        return None if entry is None else entry.reason

    def failed(self, name: str, reason: str, now: float) -> bool:
        """Record a failed start; True when the reason is new (publish and log it).

        A new reason restarts the back-off: something changed, so soon is worth trying.
        """
        entry = self._by_name.get(name)
        if entry is None or entry.reason != reason:
            backoff = Backoff(self.first, self.cap)
            self._by_name[name] = Pending(reason, now + backoff.next_delay(), backoff)
            return True
        entry.retry_at = now + entry.backoff.next_delay()
        return False

    def started(self, name: str) -> bool:
        """The instance started (or left the config); True if it was waiting."""
        return self._by_name.pop(name, None) is not None

    def next_retry(self) -> float | None:
        return min((e.retry_at for e in self._by_name.values()), default=None)

    def names(self) -> list[str]:
        return sorted(self._by_name)


def fault_state(
    *,
    instance: str,
    reason: str,
    priority: int,
    vrid: int,
    interface: str,
    family: int,
    version: int,
    vips: list[str],
) -> dict[str, Any]:
    """``vrrp.state`` of an instance that has not started: FAULT, with why."""
    return {
        "instance": instance,
        "state": "FAULT",
        "priority": priority,
        "base_priority": priority,
        "vrid": vrid,
        "interface": interface,
        "family": family,
        "version": version,
        "master": None,
        "vips": vips,
        "faults": [reason],
        "transitions": 0,
        "old": "INIT",
        "new": "FAULT",
        "cause": reason,
        "cause_kind": "fault",
    }
