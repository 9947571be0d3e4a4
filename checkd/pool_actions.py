"""Carrying out what the pools ask for (``checkd.pool_messages``): scripts, FIFO lines, mails,
log events.

* ``RunScript`` (notify_up/notify_down/quorum_up/quorum_down) goes through the ground-floor
  runner (``scripts``) in the background, so a slow script never delays a probe; it is bounded
  by ``NOTIFY_TIMEOUT`` (keepalived sets none; an endless notify script would otherwise pile
  up), after which its whole process group is killed. At shutdown checkd waits for them up to
  1 s, as keepalived does.
* ``FifoLine`` is written to every notify FIFO checkd has open: global_defs' ``notify_fifo``
  and ``lvs_notify_fifo``, as keepalived's checker process opens them, with their reader
  scripts (``core.checker_fifos`` says which; ``scripts.NotifyFifos`` keeps them open across
  reloads). Without any, the line is logged (``checkd.fifo.line``).
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
from collections.abc import Iterable

import structlog

import mail
import scripts
from checkd.pool_messages import Action, FifoLine, LogEvent, Mail, RunScript
from core import checker_fifos
from core.model import Config

log = structlog.get_logger(__name__)

COMPONENT = "checkd"
NOTIFY_TIMEOUT = 30.0
STOP_WAIT = 1.0


class ActionRunner:
    """``with_vrrpd`` False: no vrrpd runs beside this checkd (``pykeepalived -C``), so checkd
    starts the reader of every FIFO it opens (docs/operations.md, "Notify FIFOs")."""

    def __init__(self, *, notify_timeout: float = NOTIFY_TIMEOUT, with_vrrpd: bool = True) -> None:
        self.notify_timeout = notify_timeout
        self.with_vrrpd = with_vrrpd
        self.fifos = scripts.NotifyFifos(COMPONENT)
        self._script_user: tuple[str, str | None] | None = None
        self._script_security = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.mailer = mail.Mailer(COMPONENT)

    def configure(self, config: Config) -> None:
        g = config.global_defs
        self.fifos.configure(checker_fifos(config, with_vrrpd=self.with_vrrpd))
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
        if self.fifos:
            self.fifos.write(text)
        else:
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
        await self.fifos.close()
        await self.mailer.close()
