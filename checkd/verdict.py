"""A health verdict and its ``health.<name>`` body (docs/bus.md).

checkd publishes the raw observation (``rc``, ``value``, ``count``) next to ``ok`` and the
check's own ``weight``/``reverse``: vrrpd applies weights itself because an instance's
``track_* { NAME weight W }`` may override the object's weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bus import messages
from checkd.plan import Kind


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

    def body(self) -> dict[str, Any]:
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
        ).encode()


def topic(name: str) -> str:
    return f"health.{name}"
