"""keepalived's notify FIFOs and the reader scripts started for them, for vrrpd and checkd.

``notify_fifo`` / ``vrrp_notify_fifo`` / ``lvs_notify_fifo PATH [user [group]]`` get one line
per state change. As keepalived's ``fifo_open``/``fifo_close`` (core/notify.c):

* the FIFO is created when missing, mode 0644 less the umask, and given to its owner: the
  FIFO's own ``user [group]``, else ``script_user``, else ``keepalived_script``, else the
  daemon's own user;
* it is opened read-write, non-blocking, close-on-exec and without following a symlink, so a
  missing or slow reader costs lines, never a stall; a path that turns out not to be a FIFO
  owned by the daemon or by the FIFO's owner is refused (it may have been planted);
* ``*_notify_fifo_script CMD`` is started with the FIFO path appended as its last argument and
  runs for as long as the FIFO is open; at close it gets SIGTERM (its process group SIGKILL
  after :data:`scripts.CANCEL_GRACE`), then the FIFO is unlinked if it was created here (first,
  so a reader that loops reopening the path cannot reopen it), then closed.

keepalived starts the reader just before it opens the FIFO; here the FIFO is opened first in
the same step. No line can be written in between, so only a FIFO that cannot be used tells the
two apart: keepalived starts its reader anyway, on a FIFO it will never write; here none is
started.

Which FIFOs a process opens, with which reader, is the caller's (``core.fifos``). Events are
logged under the caller's name: ``<component>.fifo.*`` for the FIFO, ``<component>.script.*``
for its reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from scripts.errors import FifoError, ScriptRefused
from scripts.identity import Identity, resolve_identity
from scripts.prepare import prepare
from scripts.spawn import CANCEL_GRACE, signal_group, spawn, terminate
from scripts.spec import ScriptSpec

log = structlog.get_logger(__name__)

#: keepalived's mkfifo mode: S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH
FIFO_MODE = 0o644


@dataclass(frozen=True, slots=True)
class FifoSetup:
    """One FIFO as configured: compared across reloads, so an unchanged FIFO stays open.

    ``keyword`` is the configuration keyword (``notify_fifo``, ``lvs_notify_fifo``, ...) that
    names it in logs. ``user``/``group``/``user_source`` are the owner as
    :func:`scripts.choose_user` gives it (None: ``keepalived_script`` or the daemon's user).
    """

    keyword: str
    path: str
    user: str | None = None
    group: str | None = None
    user_source: str = "script"
    reader: ScriptSpec | None = None


class NotifyFifo:
    """The FIFO itself: created when missing, written without ever blocking."""

    def __init__(self, path: str, owner: Identity) -> None:
        self.path = path
        self.created = False
        #: why the FIFO created here could not be given to its owner (keepalived logs it and
        #: carries on with the FIFO, as here; the caller logs it under its own name)
        self.chown_error: str | None = None
        try:
            os.mkfifo(path, FIFO_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise FifoError(f"cannot create {path}: {exc.strerror}") from exc
        else:
            self.created = True
            if (owner.uid, owner.gid) != (os.getuid(), os.getgid()):
                try:
                    os.chown(path, owner.uid, owner.gid)
                except OSError as exc:
                    self.chown_error = f"chown to {owner.uid}:{owner.gid}: {exc.strerror}"
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            self._unlink()
            raise FifoError(f"cannot open {path}: {exc.strerror}") from exc
        st = os.fstat(self.fd)
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid not in (os.getuid(), owner.uid):
            os.close(self.fd)
            raise FifoError(
                f"{path} is not a FIFO owned by uid {os.getuid()} or {owner.uid}: not using it"
            )
        self.lost = 0
        self._full = False

    def write(self, data: bytes) -> bool:
        """Write one line; False when the pipe is full (no reader keeping up): it is lost."""
        try:
            os.write(self.fd, data)
        except BlockingIOError:
            self.lost += 1
            self._full = True
            return False
        self._full = False
        return True

    @property
    def full(self) -> bool:
        """The last write was lost."""
        return self._full

    def close(self) -> None:
        self._unlink()
        os.close(self.fd)

    def _unlink(self) -> None:
        if self.created:
            self.created = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class FifoChannel:
    """One configured FIFO with its optional reader script, open until :meth:`close`.

    Raises :class:`FifoError` when the FIFO cannot be used (nothing is left running then).
    """

    def __init__(self, setup: FifoSetup, component: str) -> None:
        self.setup = setup
        self.component = component
        try:
            owner = resolve_identity(setup.user, setup.group, source=setup.user_source)
        except ScriptRefused as exc:
            raise FifoError(f"no owner for {setup.path}: {exc}") from exc
        self.fifo = NotifyFifo(setup.path, owner)
        if self.fifo.chown_error is not None:
            log.warning(
                f"{component}.fifo.chown_failed", fifo=setup.path, error=self.fifo.chown_error
            )
        log.info(
            f"{component}.fifo.opened",
            keyword=setup.keyword,
            fifo=setup.path,
            created=self.fifo.created,
            owner=owner.user,
        )
        self._shut = False
        self._proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None
        if setup.reader is not None:
            self.reader = asyncio.create_task(
                self._run_reader(setup.reader), name=f"fifo-reader:{setup.path}"
            )

    def write(self, line: str) -> None:
        if self._shut:
            return
        was_full = self.fifo.full
        if not self.fifo.write(line.encode()) and not was_full:
            # Once per run of lost lines: a reader that stopped reading would flood the log.
            log.warning(
                f"{self.component}.fifo.full",
                keyword=self.setup.keyword,
                fifo=self.setup.path,
                lost=self.fifo.lost,
                detail="no reader is keeping up: lines are lost until it reads again",
            )

    def shut(self) -> None:
        """Close the FIFO now, in keepalived's order: SIGTERM to the reader, unlink the FIFO if
        it was created here, close it. The path is free for a new FIFO at once; :meth:`close`
        then waits for the reader to go (SIGKILL after the grace)."""
        if self._shut:
            return
        self._shut = True
        if self._proc is not None and self._proc.returncode is None:
            signal_group(self._proc.pid, signal.SIGTERM)
        removed = self.fifo.created
        self.fifo.close()
        log.info(
            f"{self.component}.fifo.closed",
            keyword=self.setup.keyword,
            fifo=self.setup.path,
            removed=removed,
            lost=self.fifo.lost,
        )

    async def close(self) -> None:
        """:meth:`shut`, then wait until the reader (and its process group) is gone."""
        self.shut()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)

    async def _run_reader(self, spec: ScriptSpec) -> None:
        script = f"{self.setup.keyword}_script"
        try:
            prepared = prepare(spec)
        except (ScriptRefused, OSError) as exc:
            log.error(
                f"{self.component}.script.refused",
                script=script,
                fifo=self.setup.path,
                command=spec.command,
                reason=str(exc),
            )
            return
        for warning in prepared.warnings:
            log.warning(
                f"{self.component}.script.insecure",
                script=script,
                fifo=self.setup.path,
                detail=warning,
            )
        try:
            proc = await spawn(prepared, self.setup.path, capture=False)
        except OSError as exc:
            log.error(
                f"{self.component}.script.exec_failed",
                script=script,
                fifo=self.setup.path,
                command=spec.command,
                error=str(exc),
            )
            return
        self._proc = proc
        log.info(
            f"{self.component}.script.start",
            script=script,
            fifo=self.setup.path,
            command=spec.command,
            pid=proc.pid,
            user=prepared.identity.user,
        )
        try:
            rc = await proc.wait()
        except asyncio.CancelledError:
            await terminate(proc, CANCEL_GRACE, component=self.component)
            raise
        # keepalived does not restart a reader that exits; say so loudly, since every
        # later line now waits in the pipe buffer with nobody reading it.
        log.error(
            f"{self.component}.script.exited",
            script=script,
            fifo=self.setup.path,
            command=spec.command,
            rc=rc,
            detail="no reader until the next reload that changes the FIFO, or a restart",
        )


class NotifyFifos:
    """The FIFOs one process has open, each line written to every one, kept across reloads.

    :meth:`configure` takes the configuration's setups: an unchanged FIFO stays open with its
    reader; a changed or removed one is shut at once (so its path can be opened again in the
    same call) and its reader waited for in the background; a new one is opened. A FIFO that
    cannot be used is logged as ``<component>.fifo.failed`` and left out; the others work.
    """

    def __init__(self, component: str) -> None:
        self.component = component
        self.channels: dict[str, FifoChannel] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def configure(self, setups: Iterable[FifoSetup]) -> None:
        wanted = {s.path: s for s in setups}
        for path, channel in list(self.channels.items()):
            if wanted.get(path) != channel.setup:
                del self.channels[path]
                channel.shut()
                task = asyncio.create_task(channel.close(), name=f"fifo-close:{path}")
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        for path, setup in wanted.items():
            if path in self.channels:
                continue
            try:
                self.channels[path] = FifoChannel(setup, self.component)
            except FifoError as exc:
                log.error(
                    f"{self.component}.fifo.failed",
                    keyword=setup.keyword,
                    fifo=path,
                    reason=str(exc),
                )

    def __bool__(self) -> bool:
        return bool(self.channels)

    def write(self, line: str) -> None:
        for channel in self.channels.values():
            channel.write(line)

    async def close(self) -> None:
        """Close every FIFO and wait for every reader, including those of earlier reloads."""
        channels = list(self.channels.values())
        self.channels.clear()
        for channel in channels:
            channel.shut()
        await asyncio.gather(*(c.close() for c in channels), *self._closing, return_exceptions=True)
