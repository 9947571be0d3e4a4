"""Topic names and matching.

ZeroMQ subscriptions are byte prefixes, so subscribing to ``health.web1`` also delivers
``health.web10``. Subscribers therefore subscribe with the prefix and filter again here:
a pattern is either an exact topic (``health.web1``) or a prefix pattern ending in ``*``
(``health.*``, or ``*`` for everything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Dotted words; names from keepalived.conf may carry '-', ':', '@' and '/'.
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@/+-]*$")
MAX_TOPIC_LEN = 255

PUBLIC_ROOTS = ("config", "health", "check", "vrrp", "net", "hb", "log", "bus")


def is_valid(topic: str) -> bool:
    return len(topic) <= MAX_TOPIC_LEN and bool(_TOPIC_RE.match(topic))


def health(name: str) -> str:
    return f"health.{name}"


def vrrp_state(instance: str) -> str:
    return f"vrrp.state.{instance}"


def heartbeat(component: str) -> str:
    return f"hb.{component}"


def log(component: str) -> str:
    return f"log.{component}"


FENCE_ROOT = "bus.fence."


def synced(publisher: str) -> str:
    return f"bus.synced.{publisher}"


def fence(token: str) -> str:
    """A subscription no message is ever sent on: publishers answer it with a
    ``bus.synced.<publisher>`` marker once they have re-sent what came before it."""
    return f"{FENCE_ROOT}{token}"


@dataclass(frozen=True, slots=True)
class Pattern:
    """One subscription: an exact topic, or a prefix when written with a trailing ``*``."""

    text: str

    @property
    def is_prefix(self) -> bool:
        return self.text.endswith("*")

    @property
    def zmq_prefix(self) -> bytes:
        """What to hand to ``zmq.SUBSCRIBE`` (the broadest prefix that can match)."""
        return self.text.rstrip("*").encode()

    def matches(self, topic: str) -> bool:
        if self.is_prefix:
            return topic.startswith(self.text.rstrip("*"))
        return topic == self.text


def patterns(texts: list[str] | tuple[str, ...]) -> tuple[Pattern, ...]:
    """Normalise user patterns; no pattern at all means everything."""
    return tuple(Pattern(t) for t in texts) or (Pattern("*"),)


def matches_any(pats: tuple[Pattern, ...], topic: str) -> bool:
    return any(p.matches(topic) for p in pats)
