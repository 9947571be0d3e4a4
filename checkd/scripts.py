"""vrrp_script: run a command every ``interval`` with keepalived's semantics, all in asyncio.

Each run is its own process group (so a timeout kills the script and everything it started),
with stdin on /dev/null, PDEATHSIG=SIGTERM (a killed checkd leaves no orphans), cwd ``/`` and
keepalived's environment scrubbing. keepalived sends output to /dev/null; checkd keeps the first
``OUTPUT_LIMIT`` bytes of stdout+stderr and logs them with a failed run, because "my script
works by hand but fails under keepalived" is the most common script complaint.

A run that outlives ``timeout`` gets SIGTERM on its group, then SIGKILL after ``kill_grace``;
it counts as a failure. Runs never overlap: a tick that falls while a run is still going is
skipped and logged (``checkd.script.overrun``), as keepalived does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bus.signals import signal_name
from checkd import command, security
from checkd.errors import ScriptRefused
from checkd.hysteresis import RiseFall
from checkd.plan import ScriptSpec
from checkd.verdict import Verdict

log = structlog.get_logger(__name__)

OUTPUT_LIMIT = 1024
KILL_GRACE = 2.0
CANCEL_GRACE = 1.0  # at reload/stop keepalived gives tracked scripts 1 s after SIGTERM
_SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")
_PR_SET_PDEATHSIG = 1


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
            return f"killed by {signal_name(-self.rc)}"
        return f"exited with status {self.rc}"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A script ready to exec, checked once per (re)configuration."""

    exe: command.Executable
    identity: security.Identity
    warnings: tuple[str, ...] = ()


def prepare(spec: ScriptSpec) -> Prepared:
    """Resolve the program and the user, apply script security; ScriptRefused says why not."""
    identity = security.resolve_identity(spec.user, spec.group, source=spec.user_source)
    if spec.script_security and identity.source == "self":
        # keepalived (and core's check) treat this as a config error and do not run it.
        raise ScriptRefused(
            "enable_script_security is set but no user to run the script as: user "
            f"{security.DEFAULT_SCRIPT_USER!r} does not exist; fix: set script_user in "
            "global_defs or a user on the script"
        )
    exe = command.resolve(spec.command)
    if not exe.via_shell and not security.can_execute(exe.path, identity):
        raise ScriptRefused(f"{exe.path} is not executable by user {identity.user}")
    warnings: tuple[str, ...] = ()
    # keepalived checks a setuid/setgid-root program whoever it runs as: exec makes it root.
    setid = None if exe.via_shell else security.setid_root(exe.path)
    if identity.privileged or setid:
        problems = security.unsafe_components(exe.configured_path, exe.path)
        if problems:
            detail = "; ".join(problems)
            who = f"{identity.user} (uid {identity.uid})"
            if not identity.privileged:
                who += f", {setid}"
            if spec.script_security:
                fix = "" if setid else "; or set script_user to an unprivileged user"
                raise ScriptRefused(f"refusing to run {exe.path} as {who}: {detail}{fix}")
            warnings = (
                f"unsafe permissions for {exe.path} run as {who}: {detail} "
                "(runs anyway: enable_script_security is off)",
            )
    return Prepared(exe, identity, warnings)


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


async def run_once(
    prepared: Prepared,
    timeout: float,
    *,
    kill_grace: float = KILL_GRACE,
    name: str = "",
) -> RunResult:
    """Run the script once; never raises for the script's own failures or hangs."""
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
            log.warning(
                "checkd.script.timeout",
                name=name,
                timeout=timeout,
                pgid=proc.pid,
                action="SIGTERM to process group",
            )
            await terminate(proc, kill_grace)
    except asyncio.CancelledError:
        # Reload or shutdown: the script goes with the check, but gets keepalived's 1 s.
        await terminate(proc, min(kill_grace, CANCEL_GRACE))
        raise
    finally:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL)
        output = await _finish_reader(reader)
    duration = time.monotonic() - started
    rc = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    return RunResult(rc, duration, timed_out, output)


def _script_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}


_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a checkd killed with -9 takes its scripts along.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the group, SIGKILL it if the leader is not gone within ``grace``."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        log.warning("checkd.script.kill", pgid=proc.pid, signal="SIGKILL", after=grace)
    # Children that ignored SIGTERM die with the group even when the leader already exited.
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


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


Emit = Callable[[Verdict], None]


class ScriptCheck:
    """One vrrp_script: runs forever (until cancelled), emitting a verdict after every run."""

    def __init__(
        self,
        spec: ScriptSpec,
        *,
        previous: Verdict | None = None,
        kill_grace: float = KILL_GRACE,
    ) -> None:
        self.spec = spec
        self.kill_grace = kill_grace
        if previous is not None and previous.kind == "script" and not previous.disabled:
            # A reload must not reset a passing script to failed (user-pain 1.3).
            self.state = RiseFall.resumed(spec.rise, spec.fall, ok=previous.ok)
            self.last: Verdict | None = self._verdict(previous.reason, previous.rc)
        else:
            self.state = RiseFall.start(spec.rise, spec.fall, init_fail=spec.init_fail)
            self.last = self._verdict("init_fail", None) if spec.init_fail else None
        self.runs = 0
        self.overruns = 0

    def _verdict(self, reason: str, rc: int | None, *, disabled: bool = False) -> Verdict:
        return Verdict(
            name=self.spec.name,
            kind="script",
            ok=self.state.ok and not disabled,
            reason=reason,
            weight=self.spec.weight,
            reverse=self.spec.reverse,
            rc=rc,
            disabled=disabled,
        )

    async def run(self, emit: Emit) -> None:
        spec = self.spec
        if self.last is not None:
            emit(self.last)
        try:
            prepared = prepare(spec)
        except ScriptRefused as exc:
            log.error("checkd.script.disabled", name=spec.name, reason=str(exc))
            self.last = self._verdict(f"disabled: {exc}", None, disabled=True)
            emit(self.last)
            return
        for warning in prepared.warnings:
            log.warning("checkd.script.unsafe", name=spec.name, detail=warning)
        log.info(
            "checkd.script.start",
            name=spec.name,
            path=prepared.exe.path,
            argv=list(prepared.exe.argv),
            via_shell=prepared.exe.via_shell,
            user=prepared.identity.user,
            uid=prepared.identity.uid,
            gid=prepared.identity.gid,
            user_source=prepared.identity.source,
            interval=spec.interval,
            timeout=spec.effective_timeout,
            path_env=os.environ.get("PATH", ""),
        )
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        last_rc: int | None = None
        while True:
            result = await self._run(prepared)
            self.runs += 1
            if result.rc != last_rc:
                log.info("checkd.script.rc_changed", name=spec.name, rc=result.rc, previous=last_rc)
                last_rc = result.rc
            changed = self.state.record(result.success)
            if changed:
                log.info(
                    "checkd.script.state",
                    name=spec.name,
                    ok=self.state.ok,
                    detail=result.describe(),
                )
            self.last = self._verdict(result.describe(), result.rc)
            emit(self.last)
            next_at += spec.interval
            now = loop.time()
            if next_at < now:
                skipped = int((now - next_at) // spec.interval) + 1
                self.overruns += skipped
                log.warning(
                    "checkd.script.overrun",
                    name=spec.name,
                    skipped=skipped,
                    total=self.overruns,
                    duration=round(result.duration, 3),
                    interval=spec.interval,
                )
                next_at += skipped * spec.interval
            await asyncio.sleep(next_at - now)

    async def _run(self, prepared: Prepared) -> RunResult:
        spec = self.spec
        try:
            result = await run_once(
                prepared, spec.effective_timeout, kill_grace=self.kill_grace, name=spec.name
            )
        except OSError as exc:
            # exec itself failed (file vanished, permissions changed since prepare).
            log.error("checkd.script.exec_failed", name=spec.name, error=str(exc))
            return RunResult(rc=127, duration=0.0)
        fields: dict[str, object] = {}
        if not result.success and result.output:
            fields["output"] = result.output.decode("utf-8", "replace")
        log.info(
            "checkd.script.result",
            name=spec.name,
            rc=result.rc,
            duration=round(result.duration, 3),
            timed_out=result.timed_out,
            **fields,
        )
        return result
