"""keepalived's notify FIFO and the reader script it starts for it.

``vrrp_notify_fifo`` / ``notify_fifo PATH [user [group]]`` gets one line per state change
(see :func:`vrrpd.notify.fifo_line`). keepalived creates the FIFO when it is missing (0600,
chowned to the given user), opens it read-write and non-blocking so a missing reader costs
lines, never a stall, and unlinks it at close if it created it. ``*_notify_fifo_script CMD``
is started with the FIFO path appended as its last argument, runs for as long as the FIFO is
open, and gets SIGTERM when the FIFO is closed (stop, or a reload that changes it). The
script runs like every other script, through the ground-floor runner (``scripts``): its user
resolution and script security, events logged as ``vrrpd.script.*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import dataclass

import structlog

from scripts import (
    CANCEL_GRACE,
    ScriptRefused,
    ScriptSpec,
    prepare,
    resolve_identity,
    spawn,
    terminate,
)

log = structlog.get_logger(__name__)

COMPONENT = "vrrpd"


@dataclass(frozen=True, slots=True)
class FifoSetup:
    """What the configuration asks for: compared across reloads to keep an unchanged FIFO."""

    path: str
    user: str | None = None
    group: str | None = None
    reader: ScriptSpec | None = None


class NotifyFifo:
    """The FIFO itself: created when missing, written without ever blocking."""

    def __init__(self, path: str, user: str | None = None, group: str | None = None) -> None:
        self.path = path
        self.created = False
        if not os.path.exists(path):
            os.mkfifo(path, 0o600)
            self.created = True
            if user is not None:
                try:
                    who = resolve_identity(user, group)
                except ScriptRefused as exc:
                    os.unlink(path)
                    raise OSError(f"cannot give {path} to its owner: {exc}") from exc
                os.chown(path, who.uid, who.gid)
        elif not stat.S_ISFIFO(os.stat(path).st_mode):
            raise OSError(f"{path} exists and is not a FIFO")
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.lost = 0

    def write(self, line: str) -> None:
        try:
            os.write(self.fd, line.encode())
        except BlockingIOError:
            self.lost += 1

    def close(self) -> None:
        os.close(self.fd)
        if self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class FifoChannel:
    """One configured FIFO with its optional reader script, open until :meth:`close`."""

    def __init__(self, setup: FifoSetup) -> None:
        self.setup = setup
        self.fifo = NotifyFifo(setup.path, setup.user, setup.group)
        self.reader: asyncio.Task[None] | None = None
        if setup.reader is not None:
            self.reader = asyncio.create_task(
                self._run_reader(setup.reader), name=f"fifo-reader:{setup.path}"
            )

    def write(self, line: str) -> None:
        self.fifo.write(line)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        self.fifo.close()

    async def _run_reader(self, spec: ScriptSpec) -> None:
        try:
            prepared = prepare(spec)
        except (ScriptRefused, OSError) as exc:
            log.error(
                "vrrpd.notify_fifo.script_refused",
                fifo=self.setup.path,
                command=spec.command,
                reason=str(exc),
            )
            return
        for warning in prepared.warnings:
            log.warning("vrrpd.notify_fifo.script_insecure", fifo=self.setup.path, detail=warning)
        proc = await spawn(prepared, self.setup.path, capture=False)
        log.info(
            "vrrpd.notify_fifo.script_started",
            fifo=self.setup.path,
            command=spec.command,
            pid=proc.pid,
            user=prepared.identity.user,
        )
        try:
            rc = await proc.wait()
        except asyncio.CancelledError:
            await terminate(proc, CANCEL_GRACE, component=COMPONENT)
            raise
        # keepalived does not restart a reader that exits; say so loudly, since every
        # later line now waits in the pipe buffer with nobody reading it.
        log.error(
            "vrrpd.notify_fifo.script_exited",
            fifo=self.setup.path,
            command=spec.command,
            rc=rc,
            detail="no reader until the next reload that changes the FIFO, or a restart",
        )
