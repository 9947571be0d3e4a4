"""Running a prepared script once, to completion or timeout, keeping the start of its output.

keepalived sends script output to /dev/null; the runner keeps the first ``OUTPUT_LIMIT`` bytes
of stdout+stderr so callers can log them with a failed run, because "my script works by hand
but fails under keepalived" is the most common script complaint.

A run that outlives ``timeout`` gets SIGTERM on its group, then SIGKILL after ``kill_grace``;
it counts as a failure. Cancelling the run (reload, shutdown) gives the script keepalived's
1 s after SIGTERM. Events are logged under the caller's name: ``<component>.script.timeout``
and ``<component>.script.kill``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass

import structlog

from scripts.prepare import Prepared
from scripts.spawn import CANCEL_GRACE, KILL_GRACE, signal_group, spawn, terminate

log = structlog.get_logger(__name__)

OUTPUT_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class RunResult:
    rc: int  # exit status, or -N when killed by signal N
    duration: float
    timed_out: bool = False
    output: bytes = b""

    @property
    def success(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.rc < 0:
            return f"killed by {_signal_name(-self.rc)}"
        return f"exited with status {self.rc}"


async def run_once(
    prepared: Prepared,
    timeout: float,
    *,
    component: str,
    kill_grace: float = KILL_GRACE,
    name: str = "",
    log_timeout: bool = True,
) -> RunResult:
    """Run the script once; never raises for the script's own failures or hangs.

    ``component`` names the caller in the events logged here; ``log_timeout`` False leaves the
    timeout to the caller's own event (the watchdog logs it with the outcome).
    """
    started = time.monotonic()
    proc = await spawn(prepared)
    assert proc.stdout is not None
    reader = asyncio.create_task(_read_bounded(proc.stdout))
    timed_out = False
    try:
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # races with the process exiting, which would make the check uncancellable.
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            timed_out = True
            if log_timeout:
                log.warning(
                    f"{component}.script.timeout",
                    name=name,
                    timeout=timeout,
                    pgid=proc.pid,
                    action="SIGTERM to process group",
                )
            await terminate(proc, kill_grace, component=component)
    except asyncio.CancelledError:
        # Reload or shutdown: the script goes with its owner, but gets keepalived's 1 s.
        await terminate(proc, min(kill_grace, CANCEL_GRACE), component=component)
        raise
    finally:
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
        output = await _finish_reader(reader)
    duration = time.monotonic() - started
    rc = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    return RunResult(rc, duration, timed_out, output)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        # Real-time signals have no enum member; the runner must not need the bus for a name.
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"


async def _read_bounded(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(4096):
        if len(kept) < OUTPUT_LIMIT:
            kept += chunk[: OUTPUT_LIMIT - len(kept)]
    return bytes(kept)


async def _finish_reader(reader: asyncio.Task[bytes]) -> bytes:
    # A background grandchild may keep the pipe open after the script exits: do not wait on it.
    done, _ = await asyncio.wait({reader}, timeout=0.5)
    if not done:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        return b""
    return reader.result()
