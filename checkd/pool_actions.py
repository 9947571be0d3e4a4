"""Carrying out what the pools ask for (``checkd.pool_messages``): scripts, FIFO lines, mails,
log events.

* ``RunScript`` (notify_up/notify_down/quorum_up/quorum_down) goes through the ground-floor
  runner (``scripts``) in the background, so a slow script never delays a probe; it is bounded
  by ``NOTIFY_TIMEOUT`` (keepalived sets none; an endless notify script would otherwise pile
  up), after which its whole process group is killed. At shutdown checkd waits for them up to
  1 s, as keepalived does.
* ``FifoLine`` is written to global_defs' ``lvs_notify_fifo`` (else ``notify_fifo``) when it
  is configured and a reader holds it open; otherwise the line is logged
  (``checkd.fifo.line``). The FIFO's own script is not run by checkd.
* ``Mail`` goes to the ground-floor mail queue (``mail.Mailer``, the one vrrpd uses), one
  ordered queue per real or virtual server, sent in the background in keepalived's form to
  global_defs' ``smtp_server`` and ``notification_email``: logged as ``checkd.mail.sent`` or
  ``checkd.mail.failed`` (with the SMTP step and the server's reply). Without a server or a
  recipient nothing is mailed, as in keepalived. Mails still queued at shutdown are dropped
  (keepalived exits before sending its "Shutting down" mail too).
* ``LogEvent`` is logged under its own dotted name with keepalived's text as ``message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import Iterable

import structlog

import mail
import scripts
from checkd.pool_messages import Action, FifoLine, LogEvent, Mail, RunScript
from core.model import Config

log = structlog.get_logger(__name__)

COMPONENT = "checkd"
NOTIFY_TIMEOUT = 30.0
STOP_WAIT = 1.0


class Fifo:
    """A notify FIFO opened without blocking; lines are dropped (and logged) with no reader."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def write(self, line: str) -> bool:
        if self._fd is None and not self._open():
            return False
        assert self._fd is not None
        try:
            os.write(self._fd, line.encode())
        except OSError as exc:
            # The reader went away (EPIPE) or is not keeping up (EAGAIN): reopen next time.
            log.warning("checkd.fifo.write_failed", path=self.path, error=exc.strerror)
            self.close()
            return False
        return True

    def _open(self) -> bool:
        try:
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                log.warning("checkd.fifo.not_fifo", path=self.path)
                return False
            self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it right now
                log.warning("checkd.fifo.open_failed", path=self.path, error=exc.strerror)
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class ActionRunner:
    def __init__(self, *, notify_timeout: float = NOTIFY_TIMEOUT) -> None:
        self.notify_timeout = notify_timeout
        self._fifo: Fifo | None = None
        self._script_user: tuple[str, str | None] | None = None
        self._script_security = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.mailer = mail.Mailer(COMPONENT)

    def configure(self, config: Config) -> None:
        g = config.global_defs
        fifo = g.lvs_notify_fifo or g.notify_fifo
        path = fifo.command.strip() if fifo is not None else None
        if self._fifo is None or self._fifo.path != path:
            if self._fifo is not None:
                self._fifo.close()
            self._fifo = Fifo(path) if path else None
        self._script_user = (
            (g.script_user.user, g.script_user.group) if g.script_user is not None else None
        )
        self._script_security = g.enable_script_security
        self.mailer.configure(mail.smtp_settings(g))

    def perform(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, LogEvent):
                log.info(action.event, message=action.message, **dict(action.fields))
            elif isinstance(action, FifoLine):
                self._fifo_line(action.text)
            elif isinstance(action, Mail):
                self.mailer.send(action.owner, action.subject, action.body)
            elif isinstance(action, RunScript):
                self._start_script(action)

    def _fifo_line(self, text: str) -> None:
        if self._fifo is not None and self._fifo.write(text):
            return
        log.info("checkd.fifo.line", line=text.rstrip("\n"))

    def _start_script(self, action: RunScript) -> None:
        s = action.script
        own = (s.user, s.group) if s.user is not None else None
        user, group, source = scripts.choose_user(own, self._script_user)
        spec = scripts.ScriptSpec(
            name=f"{action.role} {action.target}",
            command=s.command,
            user=user,
            group=group,
            user_source=source,
            script_security=self._script_security,
        )
        try:
            prepared = scripts.prepare(spec)
        except scripts.ScriptError as exc:
            log.error(
                "checkd.notify.refused", role=action.role, target=action.target, reason=str(exc)
            )
            return
        task = asyncio.create_task(self._run(prepared, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, prepared: scripts.Prepared, action: RunScript) -> None:
        try:
            result = await scripts.run_once(
                prepared, self.notify_timeout, component=COMPONENT, name=action.role
            )
        except OSError as exc:
            log.error("checkd.notify.exec_failed", role=action.role, error=str(exc))
            return
        log.info(
            "checkd.notify.done",
            role=action.role,
            target=action.target,
            rc=result.rc,
            detail=result.describe(),
        )

    async def stop(self) -> None:
        """Let running notify scripts finish for up to 1 s (shutdown notifications), then go."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._fifo is not None:
            self._fifo.close()
        await self.mailer.close()
