"""A health verdict and its ``health.<name>`` body (docs/bus.md).

checkd publishes the raw observation (``rc``, ``value``, ``count``) next to ``ok`` and the
check's own ``weight``/``reverse``: vrrpd applies weights itself because an instance's
``track_* { NAME weight W }`` may override the object's weight.

Proof of life (docs/bus.md, "Delivery"): checkd re-sends each verdict every
:func:`resend_period` (a script's ``interval``, kept within 1..5 s; 5 s for the others) and
says in ``ttl`` that it holds for :data:`TTL_PERIODS` of them: vrrpd counts it as failed
once that has passed without a re-send (a dead checkd), yet a lost message or two and a
late timer cost nothing. The re-send comes from a timer, not from the script's run, so a
run that takes up to its ``timeout`` does not make the verdict look abandoned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bus import messages
from bus.publisher import REPEAT_INTERVAL
from checkd.plan import Kind, ScriptSpec, Spec

#: a verdict holds for this many re-send periods: two re-sends may go missing
TTL_PERIODS = 3
#: the shortest re-send period: a sub-second script is not re-sent faster than this
MIN_RESEND = 1.0


def resend_period(spec: Spec) -> float:
    """Seconds between re-sends of ``spec``'s verdict."""
    if isinstance(spec, ScriptSpec):
        return min(max(spec.interval, MIN_RESEND), REPEAT_INTERVAL)
    return REPEAT_INTERVAL


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    kind: Kind
    ok: bool
    reason: str
    weight: int
    reverse: bool = False
    rc: int | None = None  # scripts: last exit code (-N: killed by signal N)
    value: int | None = None  # files: the integer read
    count: int | None = None  # processes: matching processes now
    disabled: bool = False  # the check cannot run at all (reason says why)

    def body(self, *, ttl: float | None = None) -> dict[str, Any]:
        return messages.Verdict(
            name=self.name,
            ok=self.ok,
            kind=str(self.kind),
            reason=self.reason,
            weight=self.weight,
            reverse=self.reverse,
            rc=self.rc,
            value=self.value,
            count=self.count,
            disabled=True if self.disabled else None,
            ttl=ttl,
        ).encode()


def topic(name: str) -> str:
    return f"health.{name}"
