"""Rate-limited notices: what a peer or a publisher can trigger with every message is logged at
most once per key every few seconds, the next notice saying how many were held back.

Used for notices about input nobody here controls (a flood of adverts, a publisher sending
garbage): the log must name the culprit without letting it flood the log (RFC 9568 asks
the same of VRRP's notices; docs/bus.md, untrusted input)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

import structlog

log = structlog.get_logger(__name__)


class NoticeLimiter:
    """At most one notice per key every ``every`` seconds; counts the ones it holds back."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: dict[Hashable, tuple[float, int]] = {}

    def due(self, key: Hashable, now: float) -> int | None:
        """None when a notice for ``key`` went out less than ``every`` ago (this one is
        counted); otherwise how many were held back since that last one."""
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            self._last[key] = (last[0], last[1] + 1)
            return None
        self._last[key] = (now, 0)
        return 0 if last is None else last[1]


class InvalidInput:
    """A component's refusals of bus messages its own decode rejects: each counted by topic
    root, logged as ``<component>.input.invalid`` once per (root, sender) every ``every``
    seconds with how many went unlogged (docs/bus.md, untrusted input)."""

    def __init__(self, component: str, every: float = 5.0) -> None:
        self.event = f"{component}.input.invalid"
        self.counts: Counter[str] = Counter()
        self._notices = NoticeLimiter(every)

    def refused(self, topic: str, src: str, exc: Exception, now: float) -> None:
        root = topic.split(".", 1)[0]
        self.counts[root] += 1
        held_back = self._notices.due((root, src), now)
        if held_back is not None:
            log.error(
                self.event,
                topic=topic,
                src=src,
                reason=f"{type(exc).__name__}: {exc}",
                count=self.counts[root],
                held_back=held_back,
            )
