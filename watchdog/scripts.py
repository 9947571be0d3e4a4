"""``startup_script`` / ``shutdown_script``: run once before the children start, after they stop.

keepalived's parent runs ``startup_script`` after writing its pid file and before it forks a
child, and ``shutdown_script`` after every child has exited; each is bounded by its own
``*_timeout`` (default 10 s), then gets SIGTERM and SIGKILL. Its result changes nothing: the
daemon starts (or ends) either way, but the outcome is logged.

The scripts run like vrrp_scripts and notify scripts, through the ground-floor script runner
(``scripts``): keepalived's argument splitting, the script's own ``user [group]`` or
``script_user``, refused under ``enable_script_security`` when the path is unsafe, in their own
process group, with the first bytes of their output logged when they fail.

They run outside the watchdog's event loop (before its bus component starts and after it has
closed), so no libzmq thread exists when ``scripts.spawn`` forks: its ``preexec_fn`` is
only safe in a process without other threads. There is no bus then either (the bus is one of
the children), so these outcomes go to the watchdog's log output only.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from core import load, script_spec
from core.model import Config
from scripts import KILL_GRACE, RunResult, ScriptRefused, ScriptSpec, prepare, run_once

log = structlog.get_logger(__name__)

COMPONENT = "watchdog"

KINDS = ("startup_script", "shutdown_script")


@dataclass(frozen=True, slots=True)
class Hook:
    kind: str  # startup_script | shutdown_script
    spec: ScriptSpec
    timeout: float


def hooks(config: Config) -> dict[str, Hook]:
    """The configured start/stop scripts, with keepalived's choice of user."""
    g = config.global_defs
    out: dict[str, Hook] = {}
    for kind, script, timeout in (
        ("startup_script", g.startup_script, g.startup_script_timeout),
        ("shutdown_script", g.shutdown_script, g.shutdown_script_timeout),
    ):
        if script is not None:
            out[kind] = Hook(kind, script_spec(config, kind, script), float(timeout))
    return out


def read_hooks(path: str | os.PathLike[str], config_id: str | None = None) -> dict[str, Hook]:
    """Parse the config file as the watchdog sees it (core re-reads it and reports problems)."""
    result = load(Path(path), config_id=config_id, script_env=None)
    return hooks(result.config)


def run_hook(hook: Hook | None, kill_grace: float = KILL_GRACE) -> RunResult | None:
    """Run one hook to completion (blocking); None when there is none or it was refused."""
    if hook is None:
        return None
    return asyncio.run(run_hook_async(hook, kill_grace))


async def run_hook_async(hook: Hook, kill_grace: float = KILL_GRACE) -> RunResult | None:
    command = hook.spec.command
    try:
        prepared = prepare(hook.spec)
    except (ScriptRefused, OSError) as exc:
        log.error("watchdog.script.refused", script=hook.kind, command=command, reason=str(exc))
        return None
    warnings = list(prepared.warnings)
    if not hook.spec.script_security:
        # keepalived 2.2.7 says "SECURITY VIOLATION - start/shutdown scripts are being
        # executed but script_security not enabled" for any such script.
        warnings.append("start/shutdown scripts run but enable_script_security is not set")
    for warning in warnings:
        log.warning("watchdog.script.insecure", script=hook.kind, detail=warning)
    log.info(
        "watchdog.script.start",
        script=hook.kind,
        command=command,
        user=prepared.identity.user,
        timeout=hook.timeout,
    )
    try:
        # The timeout is logged below, with its outcome, as watchdog.script.timeout.
        result = await run_once(
            prepared,
            hook.timeout,
            component=COMPONENT,
            kill_grace=kill_grace,
            name=hook.kind,
            log_timeout=False,
        )
    except OSError as exc:
        log.error("watchdog.script.exec_failed", script=hook.kind, command=command, error=str(exc))
        return None
    fields: dict[str, object] = {}
    if not result.success and result.output:
        fields["output"] = result.output.decode("utf-8", "replace")
    if result.timed_out:
        log.error(
            "watchdog.script.timeout",
            script=hook.kind,
            command=command,
            timeout=hook.timeout,
            outcome=f"SIGTERM, then SIGKILL after {kill_grace:g} s",
            rc=result.rc,
            **fields,
        )
    else:
        (log.info if result.success else log.warning)(
            "watchdog.script.done",
            script=hook.kind,
            command=command,
            rc=result.rc,
            detail=result.describe(),
            duration=round(result.duration, 3),
            **fields,
        )
    return result
