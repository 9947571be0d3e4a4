"""How long a ``health.<name>`` verdict counts, and what a check counts as before any (pure).

A verdict is a level: its publisher re-sends it, and one nobody re-sends stops counting. It
then counts as failed, as if the check had failed (docs/design.md, "Failure semantics": a
dead checker must not leave a stale "ok" behind). How long it counts after vrrpd receives
it (docs/bus.md, "Staleness"):

* its own ``ttl``, when it carries one, whatever the configuration says. checkd's script,
  file and process verdicts do: three of its re-send periods (``checkd.verdict``), so a dead
  checkd is noticed within 15 s at most and within 3 s for a 1 s script;
* otherwise, for a ``vrrp_script`` fed by an external checker: ``2 * interval + timeout``
  (``timeout`` defaults to the interval: three intervals), at least :data:`FLOOR`. A checker
  that runs its check and publishes once per ``interval`` publishes at most
  ``interval + timeout`` apart (a run may take up to ``timeout``): the rule forgives one lost
  message on top of a quick run, and scheduling jitter, yet notices a dead checker within
  about three intervals. The floor keeps a sub-second script from failing on a bus hiccup
  (the broker restarted);
* otherwise (``track_file``, ``track_process``, a virtual server's ``vs:*`` quorum although
  a ``vrrp_script vs:<key> { }`` declares it, names no ``vrrp_script`` declares: only checkd
  publishes those) :data:`RESEND_GRACE`, three of checkd's default re-send periods.

Before the first verdict a check reports nothing (its tracker adds nothing, an unweighted
one holds the instance in FAULT: ``vrrpd.priority``), except a ``vrrp_script`` with
``init_fail`` that checkd does not run (no ``script`` line): it counts as failed until its
external checker first reports, as keepalived's script starts failed. checkd publishes its
own scripts' ``init_fail`` verdict at once when the node starts (restarted alone, it starts
them from the verdicts vrrpd holds instead: docs/bus.md, "Staleness").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bus.publisher import REPEAT_INTERVAL
from core import Config
from vrrpd.verdicts import POOL_PREFIX

__all__ = [
    "DEFAULT",
    "FLOOR",
    "RESEND_GRACE",
    "Lifetime",
    "fresh_for",
    "lifetimes",
    "script_lifetime",
]

#: the shortest time a verdict without ``ttl`` counts
FLOOR = 3.0
#: checks without an interval: checkd re-sends their verdicts every 5 s; three periods
RESEND_GRACE = 3 * REPEAT_INTERVAL


@dataclass(frozen=True, slots=True)
class Lifetime:
    """One check's rule: seconds a verdict without ``ttl`` counts, and whether the check
    counts as failed before its first verdict."""

    fresh_for: float = RESEND_GRACE
    init_fail: bool = False


DEFAULT = Lifetime()


def script_lifetime(interval: float, timeout: float, *, init_fail: bool = False) -> Lifetime:
    return Lifetime(max(2 * interval + timeout, FLOOR), init_fail)


def lifetimes(config: Config) -> dict[str, Lifetime]:
    """Every ``vrrp_script``'s rule by name; other checks take :data:`DEFAULT`, as do the
    ``vs:<key>`` scripts, whose verdicts checkd re-sends every 5 s whatever their interval."""
    return {
        s.name: script_lifetime(
            s.interval, s.effective_timeout, init_fail=s.init_fail and s.script is None
        )
        for s in config.vrrp_scripts
        if not s.name.startswith(POOL_PREFIX)
    }


def fresh_for(rules: Mapping[str, Lifetime], name: str, ttl: float | None) -> float:
    """Seconds a verdict for ``name`` (with its ``ttl``, if any) counts after it arrives."""
    if ttl is not None:
        return ttl
    return rules.get(name, DEFAULT).fresh_for
