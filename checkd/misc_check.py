"""MISC_CHECK: a real server's health decided by a script, through the ground-floor runner.

The script runs as keepalived would run it (``scripts``: its own process group, the user
chosen from the checker's ``user``, the script's own ``user`` or global ``script_user``,
``enable_script_security``'s checks); at ``misc_timeout`` the whole group gets SIGTERM and then
SIGKILL, and the attempt counts as failed. With ``misc_dynamic`` the exit status also sets the
real server's weight (``checkd.pool_messages.misc_dynamic_weight``): 0 keeps the configured
weight, 2..255 make it status - 2, anything else is a failure. Standard library plus the runner.
"""

from __future__ import annotations

from dataclasses import dataclass

import scripts
from checkd.checker_state import mail_body
from checkd.pool_messages import Event, ProbeResult, misc_dynamic_weight
from core.model import Checker

COMPONENT = "checkd"


@dataclass(frozen=True, slots=True)
class MiscOutcome:
    """One run's result as the pool hears it, with the reason an operator reads."""

    ok: bool
    reason: str
    events: tuple[Event, ...]
    rc: int | None = None  # the exit status (-N: signal N), None when it timed out or never ran


def misc_spec(
    checker: Checker,
    name: str,
    *,
    script_user: tuple[str, str | None] | None,
    script_security: bool,
) -> scripts.ScriptSpec:
    """What the runner needs for this checker's ``misc_path``."""
    if checker.misc_path is None or not checker.misc_path.command.strip():
        raise scripts.ScriptRefused("MISC_CHECK has no misc_path")
    own: tuple[str, str | None] | None = None
    if checker.user is not None:
        own = (checker.user.user, checker.user.group)
    elif checker.misc_path.user is not None:
        own = (checker.misc_path.user, checker.misc_path.group)
    user, group, source = scripts.choose_user(own, script_user)
    return scripts.ScriptSpec(
        name=name,
        command=checker.misc_path.command,
        user=user,
        group=group,
        user_source=source,
        script_security=script_security,
    )


def misc_outcome(checker_id: str, result: scripts.RunResult, *, dynamic: bool) -> MiscOutcome:
    """The pool's events for one finished run (pure)."""
    if result.timed_out:
        mail = mail_body("MISC_CHECK", False, "timed out")
        return MiscOutcome(False, "timed out", (ProbeResult(checker_id, False, mail),))
    reason = result.describe()
    if dynamic:
        weight = misc_dynamic_weight(checker_id, result.rc)
        if weight is not None:
            up = ProbeResult(checker_id, True, mail_body("MISC_CHECK", True))
            detail = "" if not weight.absolute else f", weight {weight.weight}"
            return MiscOutcome(True, reason + detail, (weight, up), result.rc)
    ok = result.rc == 0
    mail = mail_body("MISC_CHECK", ok)
    return MiscOutcome(ok, reason, (ProbeResult(checker_id, ok, mail),), result.rc)


async def run_misc(
    prepared: scripts.Prepared,
    checker_id: str,
    timeout: float,
    *,
    dynamic: bool,
    kill_grace: float = scripts.KILL_GRACE,
) -> MiscOutcome:
    """Run the script once, bounded by ``timeout``; never raises for the script's failures."""
    try:
        result = await scripts.run_once(
            prepared, timeout, component=COMPONENT, kill_grace=kill_grace, name=checker_id
        )
    except OSError as exc:
        # exec itself failed (the file vanished or its permissions changed since prepare).
        reason = f"cannot run: {exc}"
        return MiscOutcome(False, reason, (ProbeResult(checker_id, False),))
    return misc_outcome(checker_id, result, dynamic=dynamic)
