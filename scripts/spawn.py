"""Starting a prepared script and stopping it with everything it started.

Each script is its own process group (so a timeout or a stop kills the script and all its
children), with stdin on /dev/null, PDEATHSIG=SIGTERM (a daemon killed with -9 leaves no
orphans), cwd ``/`` and keepalived's environment scrubbing. ``preexec_fn`` is only safe in a
process without other threads at fork time, which every caller guarantees (see
``watchdog.scripts``).

Events are logged under the caller's name (``component``): a script vrrpd started logs
``vrrpd.script.kill``, never ``checkd.script.kill``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal

import structlog

from scripts.prepare import Prepared

log = structlog.get_logger(__name__)

KILL_GRACE = 2.0
CANCEL_GRACE = 1.0  # at reload/stop keepalived gives tracked scripts 1 s after SIGTERM
_SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")
_PR_SET_PDEATHSIG = 1


async def spawn(
    prepared: Prepared, *extra_args: str, capture: bool = True
) -> asyncio.subprocess.Process:
    """Start the script as its user, in its own process group, with keepalived's environment.

    ``extra_args`` are appended to the configured command line (keepalived appends the FIFO
    path for a ``notify_fifo_script``). With ``capture`` the caller reads stdout+stderr;
    otherwise they go to /dev/null, as keepalived sends them.
    """
    exe, who = prepared.exe, prepared.identity
    switch = who.uid != os.getuid() or who.gid != os.getgid()
    output = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        exe.path,
        *exe.argv[1:],
        *extra_args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=output,
        stderr=asyncio.subprocess.STDOUT if capture else asyncio.subprocess.DEVNULL,
        cwd="/",
        env=_script_env(),
        process_group=0,
        user=who.uid if switch else None,
        group=who.gid if switch else None,
        extra_groups=list(who.groups) if switch else None,
        preexec_fn=_die_with_parent,
    )


async def terminate(proc: asyncio.subprocess.Process, grace: float, *, component: str) -> None:
    """SIGTERM the group, SIGKILL it if the leader is not gone within ``grace``.

    ``component`` names the caller in the ``<component>.script.kill`` event.
    """
    signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        log.warning(f"{component}.script.kill", pgid=proc.pid, signal="SIGKILL", after=grace)
    # Children that ignored SIGTERM die with the group even when the leader already exited.
    signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def signal_group(pgid: int, sig: int) -> None:
    """Signal a script's process group; one that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _script_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}


_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a daemon killed with -9 takes its scripts along.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
