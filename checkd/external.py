"""Real-server verdicts from checkers outside checkd: ``health.rs:<vs>/<rs>``.

Like a ``vrrp_script`` without a ``script`` line, a real server can be checked by any program
that publishes on the bus (docs/bus.md, "External checkers"; docs/checkers.md, "External
verdicts"). This module reads one such message, untrusted input (docs/design.md), into an
``ExternalReport`` or says why it is refused; gives the time a verdict without ``ttl`` stays
fresh; and keeps the once-per-name bookkeeping that stops a misbehaving publisher from flooding
the log. The pool takes the verdict as ``checkd.pool_messages.ExternalVerdict``; the runner
(``checkd.lvs_runner``) times staleness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bus import MessageRejected, messages
from checkd.checkers.result import DEFAULT_CONNECT_TIMEOUT
from checkd.checkplan import RealServerPlan, VirtualServerPlan
from checkd.errors import CheckdError
from checkd.pool_state import WEIGHT_MAX

#: the topics external real-server verdicts come on: ``health.rs:<vs key>/<rs key>``, the keys
#: of ``check.rs.<vs key>/<rs key>`` (``checkd.pool_topics``)
PREFIX = "health.rs:"
PATTERN = PREFIX + "*"
# A verdict without ``ttl`` is fresh for at least this long, whatever the delay_loop: a bus
# re-send or a loaded external checker may be a second or two late.
STALE_FLOOR = 3.0
# Names remembered for the once-per-name log lines; later ones are only counted together.
MAX_NOTED = 1024


class ExternalRefused(CheckdError):
    """An external verdict that cannot be taken (its reason says why)."""


@dataclass(frozen=True, slots=True)
class ExternalReport:
    key: str  # ``<vs key>/<rs key>``
    ok: bool
    reason: str
    ttl: float | None  # seconds it is fresh after receipt; None: ``stale_after``
    weight: int | None  # with ok: the real server's whole weight (misc_dynamic's rule)


def read_report(topic: str, body: dict[str, Any]) -> ExternalReport:
    """One ``health.rs:*`` message, or ``ExternalRefused``."""
    try:
        verdict = messages.Verdict.decode(topic, body)
    except MessageRejected as exc:
        raise ExternalRefused(exc.detail) from None
    if topic != f"health.{verdict.name}":
        # as vrrpd refuses it: a name that is not the topic's would change another server
        raise ExternalRefused(f"topic {topic} carries a verdict named {verdict.name!r}")
    key = topic.removeprefix(PREFIX)
    if "/" not in key:
        raise ExternalRefused(f"{topic} names no real server (health.rs:<vs>/<rs>)")
    if verdict.weight is not None and not 0 <= verdict.weight <= WEIGHT_MAX:
        raise ExternalRefused(f"weight {verdict.weight} is outside 0..{WEIGHT_MAX}")
    reason = verdict.reason or ("ok" if verdict.ok else "failed")
    return ExternalReport(key, verdict.ok, reason, verdict.ttl, verdict.weight)


def stale_after(vs: VirtualServerPlan, rs: RealServerPlan) -> float:
    """Seconds a verdict without ``ttl`` stays fresh: two rounds of the ``delay_loop`` a
    checker of this real server would have, plus its ``connect_timeout`` (both inherited as a
    checker's are, real server then virtual server), at least ``STALE_FLOOR``. An external
    checker is expected to publish every round; one lost or late message is not a failure,
    a second one is. A check with its own pace says so with ``ttl``."""
    src, vs_src = rs.source, vs.source
    delay_loop = src.delay_loop if src.delay_loop is not None else vs_src.delay_loop
    timeout = next(
        (t for t in (src.connect_timeout, vs_src.connect_timeout) if t is not None),
        DEFAULT_CONNECT_TIMEOUT,
    )
    return max(STALE_FLOOR, 2 * delay_loop + timeout)


class Noted:
    """Names seen: ``first`` is true the first time a name comes, so it is logged once; every
    time is counted. At most ``MAX_NOTED`` names are kept (untrusted publishers choose them);
    the rest are counted under ``others``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.others = 0

    def first(self, name: str) -> bool:
        seen = self.counts.get(name)
        if seen is not None:
            self.counts[name] = seen + 1
            return False
        if len(self.counts) >= MAX_NOTED:
            self.others += 1
            return False
        self.counts[name] = 1
        return True

    def clear(self) -> None:
        self.counts.clear()
        self.others = 0

    def summary(self) -> dict[str, Any]:
        return {"names": dict(self.counts), "others": self.others}
