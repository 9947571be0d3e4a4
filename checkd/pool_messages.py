"""What the pool hears (events) and what it asks the daemon to do (actions), as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from checkd.pool_state import WEIGHT_MAX
from core.model import Script

ScriptRole = Literal["notify_up", "notify_down", "quorum_up", "quorum_down"]


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunScript:
    """Run a notify script; at shutdown (``stopping``) keepalived waits for it, up to 1 s."""

    script: Script
    role: ScriptRole
    target: str  # the real or virtual server id
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class FifoLine:
    """A line for ``notify_fifo`` and ``lvs_notify_fifo``, newline included and nothing after
    it, as keepalived's releases write it (docs/checkers.md, "Notifications")."""

    text: str


@dataclass(frozen=True, slots=True)
class Mail:
    """An smtp_alert; the mailer drops it when no notification_email/smtp_server is set."""

    subject: str
    body: str
    # Whose queue it goes through (``RS <rs id>`` or ``VS <vs id>``, like the FIFO lines):
    # one owner's mails go out in the order they were made.
    owner: str


@dataclass(frozen=True, slots=True)
class LogEvent:
    event: str  # dotted name, e.g. checkd.rs.down
    message: str  # keepalived's own log text
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


Action = RunScript | FifoLine | Mail | LogEvent


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's result, counted with the checker's retries (checkd.checker_state)."""

    checker_id: str
    success: bool
    # The smtp_alert body should this result change the checker's verdict
    # (checker_state.mail_body gives keepalived's text for each kind of checker).
    mail: str | None = None


@dataclass(frozen=True, slots=True)
class CheckerVerdict:
    """A verdict a checker reached itself (HTTP URL lists, MISC_CHECK, FILE_CHECK, BFD)."""

    checker_id: str
    up: bool
    mail: str | None = None


@dataclass(frozen=True, slots=True)
class CheckerWeight:
    """A checker's new contribution to its real server's weight (misc_dynamic, FILE_CHECK).

    ``absolute``: ``weight`` is the real server's whole weight (misc_dynamic exit 2..255).
    """

    checker_id: str
    weight: int
    absolute: bool = False


@dataclass(frozen=True, slots=True)
class ExternalVerdict:
    """A verdict on a real server from a checker outside checkd (docs/checkers.md, "External
    verdicts"): one more checker of the real server, ``external_id(rs_id)``, added at its first
    verdict. It is final (the checker outside did its own retries); with ``up`` its ``weight``,
    when given, is the real server's whole weight, as a ``misc_dynamic`` exit status sets it,
    and without one the configured weight stands again. Staleness is the daemon's to decide: it
    sends ``up=False`` when the verdict has aged out."""

    rs_id: str
    up: bool
    weight: int | None = None
    mail: str | None = None


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


Event = ProbeResult | CheckerVerdict | CheckerWeight | ExternalVerdict | Shutdown

#: the kind of the checker an ``ExternalVerdict`` stands for (``check.rs.*``, status, dump)
EXTERNAL = "EXTERNAL"


def external_id(rs_id: str) -> str:
    """The id of a real server's external checker: named like a configured one
    (``<rs id> KIND#n``, docs/checkers.md "Names"), and one per real server, as its verdicts
    come on one topic."""
    return f"{rs_id} {EXTERNAL}#0"


def misc_dynamic_weight(checker_id: str, status: int) -> CheckerWeight | None:
    """A misc_dynamic exit status as a weight event (None: the status is a failure).

    0 leaves the configured weight; 2..255 make the real server's weight status - 2.
    """
    if status == 0:
        return CheckerWeight(checker_id, 0)
    if 2 <= status <= 255:
        return CheckerWeight(checker_id, status - 2, absolute=True)
    return None


def file_check_weight(value: int, weight: int, reverse: bool) -> int | None:
    """A FILE_CHECK value as a weight contribution (None: the value means failure)."""
    if weight == 0:
        return 0 if value == 0 else None
    product = value * weight * (-1 if reverse else 1)
    return None if product <= -(2**31) else max(min(product, WEIGHT_MAX), -(2**31))
