"""Whether a freshly started vrrpd resumes an instance netd still holds for it (pure).

A quick vrrpd restart (``kill -9``, the watchdog restarts it at once) finds netd still holding
the instance's VIPs: netd keeps them for a lease after the last renewal. Starting as BACKUP
would withdraw them and take them back one Master_Down_Interval later, two transitions and a
gap for nothing. Instead vrrpd.starter asks :func:`decide` with netd's retained
``net.applied.vrrp:<instance>`` report; on :attr:`Verdict.RESUME` it feeds
:class:`vrrpd.machine.Resume` rather than ``Startup``.

"Still holds" means: the report lists installed items, and its ``fingerprint`` (which netd
copies from the intent it holds) equals the fingerprint of the instance as configured now.
The fingerprint covers what netd installs and the VRRP identity (interface, family, VRID,
version, VMAC, VIPs, eVIPs, routes, rules): if any of those changed while vrrpd was down, the
held items are not ours to keep and the instance starts as usual (netd's lease then withdraws
what nobody claims). Priority, interval, preemption and trackers are not in it: a change to
those is handled as a reload is, in the state the instance is in, by the protocol.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum

from bus import messages
from vrrpd.plan import InstancePlan

__all__ = ["Decision", "Verdict", "decide", "fingerprint"]

#: how long after vrrpd starts an instance waits for netd's report before starting as usual
#: (netd re-sends its retained reports the moment vrrpd subscribes: milliseconds); an instance
#: netd's ``net.held`` does not name waits no longer than it takes ``net.held`` to arrive
RESUME_WINDOW = 0.5


class Verdict(StrEnum):
    RESUME = "resume"
    START = "start"
    WAIT = "wait"  # no report from netd yet


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str


def fingerprint(plan: InstancePlan) -> str:
    """A short digest of what must be unchanged for held items to be resumed."""
    identity = {
        "interface": plan.interface,
        "family": plan.family,
        "vrid": plan.vrid,
        "version": plan.version,
        "vmac": plan.vmac,
        "items": list(plan.net_items),
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decide(applied: messages.Applied | None, wanted: str, *, waiting: bool) -> Decision:
    """Resume, start as usual, or (while ``waiting`` is allowed) wait for netd's report.

    ``applied`` is the last ``net.applied.vrrp:<instance>`` report (None: none seen yet) and
    ``wanted`` the instance's current :func:`fingerprint`.
    """
    if applied is None:
        if waiting:
            return Decision(Verdict.WAIT, "no report from netd yet")
        return Decision(Verdict.START, "netd reported nothing held for it")
    items = applied.items
    if items is None or items <= 0:
        return Decision(Verdict.START, "netd holds nothing for it")
    held = applied.fingerprint
    if held != wanted:
        why = "no fingerprint" if not held else "a different configuration"
        return Decision(Verdict.START, f"netd holds items of {why}")
    return Decision(Verdict.RESUME, f"netd still holds its {items} item(s)")
