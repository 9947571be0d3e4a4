"""The mail queue: alerts go out in the background, one ordered queue per owner.

``Mailer.send`` only composes the message and queues it, so the caller (vrrpd's VRRP path,
checkd's probes) never waits for SMTP. Each owner (an instance, a sync group, a real server,
a virtual server: whatever the caller names) has its own queue and worker, so mails about one
owner go out in the order they were made and one at a time, while owners never wait for each
other. A queue keeps at most ``BACKLOG`` mails; beyond that its oldest is dropped and logged.

Events carry the caller's name, passed in as ``component``: ``<component>.mail.sent`` with
the server's reply, ``<component>.mail.failed`` with the step, reply code and text,
``<component>.mail.dropped``. Mails still queued when the caller closes the mailer are dropped
(keepalived never delivers its shutdown-time mail either).
"""

from __future__ import annotations

import time

import structlog

from mail.errors import SmtpFailure
from mail.message import Message, compose
from mail.queues import KeyedQueues
from mail.settings import SmtpSettings
from mail.smtp import send

log = structlog.get_logger(__name__)

BACKLOG = 16


class Mailer:
    def __init__(self, component: str) -> None:
        self.component = component
        self.settings: SmtpSettings | None = None
        self._queues: KeyedQueues[tuple[Message, SmtpSettings]] = KeyedQueues(
            "mail", self._deliver_item
        )
        self.sent = 0
        self.failed = 0

    def configure(self, settings: SmtpSettings | None) -> None:
        """New settings apply to mails queued from now on; None: nothing is mailed."""
        self.settings = settings

    def send(self, owner: str, subject: str, body: str) -> Message | None:
        """Queue keepalived's mail; the message, or None when no server or recipient is set."""
        settings = self.settings
        if settings is None:
            return None
        message = compose(settings, owner, subject, body)
        dropped = self._queues.put(owner, (message, settings), backlog=BACKLOG)
        if dropped is not None:
            self.failed += 1
            log.error(
                f"{self.component}.mail.dropped",
                owner=owner,
                subject=dropped[0].subject,
                backlog=BACKLOG,
            )
        return message

    async def drain(self, timeout: float) -> None:
        await self._queues.drain(timeout)

    async def close(self) -> None:
        await self._queues.close()

    async def _deliver_item(self, item: tuple[Message, SmtpSettings]) -> None:
        await self._deliver(*item)

    async def _deliver(self, message: Message, s: SmtpSettings) -> None:
        started = time.monotonic()
        server = f"[{s.server}]:{s.port}"
        try:
            reply = await send(message, s.server, s.port, s.helo, s.timeout)
        except SmtpFailure as exc:
            self.failed += 1
            log.error(
                f"{self.component}.mail.failed",
                owner=message.owner,
                subject=message.subject,
                server=server,
                stage=exc.stage,
                code=exc.code,
                reply=exc.detail,
                duration=round(time.monotonic() - started, 3),
            )
            return
        self.sent += 1
        log.info(
            f"{self.component}.mail.sent",
            owner=message.owner,
            subject=message.subject,
            server=server,
            recipients=list(message.recipients),
            reply=reply,
            duration=round(time.monotonic() - started, 3),
        )
