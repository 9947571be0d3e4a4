"""Which ``health.*`` verdicts vrrpd takes, and from whom (pure).

Any local root process may publish on the bus, which is how external checkers feed a
``vrrp_script`` that has no ``script`` line (docs/bus.md). A check checkd runs itself (a
``vrrp_script`` with a command, ``track_file``, ``track_process``, a virtual server's
``vs:<name>`` quorum) has one writer, checkd (docs/design.md: who owns what), so a verdict for
it from any other sender is refused, and logged with the sender the envelope names. A verdict
whose ``name`` is not its topic's is refused too: it would change another check's status under
the cover of a topic nobody watches.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus import messages
from core import Config

__all__ = ["CHECKD", "POOL_PREFIX", "VerdictGate", "checkd_checks"]

#: the envelope ``src`` of checkd's messages (its component name)
CHECKD = "checkd"
#: a virtual server's quorum verdict, ``vs:<key>``: checkd publishes it, whatever the config
POOL_PREFIX = "vs:"


def checkd_checks(config: Config) -> frozenset[str]:
    """Names of the checks checkd runs and publishes for this configuration."""
    return frozenset(
        [s.name for s in config.vrrp_scripts if s.script is not None]
        + [f.name for f in config.track_files]
        + [p.name for p in config.track_processes]
    )


@dataclass(frozen=True, slots=True)
class VerdictGate:
    owned: frozenset[str] = frozenset()

    def refusal(self, topic: str, verdict: messages.Verdict, src: str) -> str | None:
        """Why this verdict must not be applied, or None to take it."""
        if topic != f"health.{verdict.name}":
            return f"topic {topic} carries a verdict named {verdict.name!r}"
        owned = verdict.name in self.owned or verdict.name.startswith(POOL_PREFIX)
        if owned and src != CHECKD:
            return f"{verdict.name} is a check checkd runs; only checkd's verdicts count"
        return None
