"""SMTP alerts for VRRP transitions (``smtp_alert``), sent as keepalived 2.2.7 sends them.

What keepalived puts on the wire (captured from 2.2.7 against a test server)::

    HELO <smtp_helo_name | hostname>
    MAIL FROM:<notification_email_from | user@hostname>
    RCPT TO:<addr>                          (one per notification_email entry)
    DATA
    Date: Thu, 26 Nov 2026 00:39:16 +0000
    From: <from>
    Subject: [<router_id>] VRRP Instance VI_1 - Entering MASTER state
    X-Mailer: Keepalived
    To: a@example.org, Name <b@example.org>

    => VRRP Instance is now owning VRRP VIPs <=

    .
    QUIT

Any other state says "no longer owning"; a sync group's mail says "VRRP Group G1" and "=> All
VRRP group instances are now in MASTER state <=". Only MASTER, BACKUP and FAULT mail (FAULT
not with ``no_email_faults``); keepalived starts a mail at STOP but exits before sending it.

Differences on purpose: keepalived puts a quoted ``"Name <a@b>"`` recipient verbatim into
``RCPT TO:<Name <a@b>>``, which servers reject (501) and which loses the whole mail; here RCPT
gets the bare address and the To: header keeps the display name. Like keepalived, every SMTP
step (connect and each reply) is bounded by ``smtp_connect_timeout`` and a failed mail is not
retried (2.2.7 logs one line and drops it), but the failure is logged with the step, the
server's reply code and text.

Sending never touches the VRRP path: mails go through their own queue per instance or group
(in order, one connection at a time), separate from the notify scripts' queues, so a hanging
SMTP server delays neither scripts nor adverts. A queue keeps at most ``BACKLOG`` mails.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import pwd
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime

import structlog

from core.effective import vrrp_settings
from core.model import Config
from vrrpd.queues import KeyedQueues

log = structlog.get_logger(__name__)

DEFAULT_PORT = 25
BACKLOG = 16
MAIL_STATES = ("MASTER", "BACKUP", "FAULT")
_ADDRESS = re.compile(r"<([^<>]*)>\s*$")


class SmtpFailure(Exception):
    """One mail could not be delivered: at which step, and what the server said."""

    def __init__(self, stage: str, detail: str, code: int | None = None) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.detail = detail
        self.code = code


@dataclass(frozen=True, slots=True)
class MailSettings:
    server: str
    port: int
    helo: str
    sender: str
    recipients: tuple[str, ...]
    router_id: str
    timeout: float
    no_email_faults: bool
    instances: frozenset[str]  # instances with smtp_alert on
    groups: frozenset[str]  # sync groups with smtp_alert on

    def wants(self, scope: str, name: str, state: str) -> bool:
        if state not in MAIL_STATES or (state == "FAULT" and self.no_email_faults):
            return False
        return name in (self.groups if scope == "GROUP" else self.instances)


@dataclass(frozen=True, slots=True)
class Mail:
    owner: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    text: bytes  # the DATA payload, CRLF line ends, dot-stuffed, without the final "."


def mail_settings(config: Config, hostname: str | None = None) -> MailSettings | None:
    """Who gets mail for what, or None when nothing can be mailed (no server or no recipient)."""
    g = config.global_defs
    if g.smtp_server is None or not g.notification_email:
        return None
    host = hostname or socket.gethostname()
    default_alert = _first(g.smtp_alert_vrrp, g.smtp_alert)
    instances = frozenset(i.name for i in config.instances if vrrp_settings(config, i).smtp_alert)
    groups = frozenset(s.name for s in config.sync_groups if _first(s.smtp_alert, default_alert))
    return MailSettings(
        server=g.smtp_server.host,
        port=g.smtp_server.port or DEFAULT_PORT,
        helo=g.smtp_helo_name or host,
        sender=g.notification_email_from or f"{_user()}@{host}",
        recipients=tuple(g.notification_email),
        router_id=g.router_id or host,
        timeout=float(g.smtp_connect_timeout),
        no_email_faults=g.no_email_faults,
        instances=instances,
        groups=groups,
    )


def _first(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), False)


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "root"


def compose(
    settings: MailSettings, scope: str, name: str, state: str, when: datetime | None = None
) -> Mail:
    """keepalived's alert for ``scope`` INSTANCE or GROUP ``name`` entering ``state``."""
    if scope == "GROUP":
        subject = f"[{settings.router_id}] VRRP Group {name} - Entering {state} state"
        body = f"=> All VRRP group instances are now in {state} state <="
    else:
        subject = f"[{settings.router_id}] VRRP Instance {name} - Entering {state} state"
        owning = "now" if state == "MASTER" else "no longer"
        body = f"=> VRRP Instance is {owning} owning VRRP VIPs <="
    date = email.utils.format_datetime(when or datetime.now().astimezone())
    lines = [
        f"Date: {date}",
        f"From: {settings.sender}",
        f"Subject: {subject}",
        "X-Mailer: Keepalived",
        f"To: {', '.join(settings.recipients)}",
        "",
        body,
        "",
    ]
    text = "".join(f".{line}\r\n" if line.startswith(".") else f"{line}\r\n" for line in lines)
    return Mail(
        owner=f"{scope} {name}",
        subject=subject,
        sender=settings.sender,
        recipients=settings.recipients,
        text=text.encode("utf-8", "replace"),
    )


def envelope_address(recipient: str) -> str:
    """``Name <a@b>`` -> ``a@b`` for RCPT TO; a bare address stays as it is."""
    match = _ADDRESS.search(recipient)
    return match.group(1).strip() if match else recipient.strip()


async def send(mail: Mail, server: str, port: int, helo: str, timeout: float) -> str:
    """One SMTP dialogue; returns the server's reply to the message; raises SmtpFailure."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(server, port)
    except TimeoutError as exc:
        raise SmtpFailure("connect", f"no connection within {timeout:g} s") from exc
    except OSError as exc:
        raise SmtpFailure("connect", _describe(exc)) from exc
    try:
        dialogue = _Dialogue(reader, writer, timeout)
        await dialogue.expect("greeting", 220)
        await dialogue.command("HELO", f"HELO {helo}", 250)
        await dialogue.command("MAIL", f"MAIL FROM:<{mail.sender}>", 250)
        for rcpt in mail.recipients:
            await dialogue.command("RCPT", f"RCPT TO:<{envelope_address(rcpt)}>", 250, 251)
        await dialogue.command("DATA", "DATA", 354)
        writer.write(mail.text + b".\r\n")
        reply = await dialogue.expect("message", 250)
        # keepalived sends QUIT and does not care about the answer; neither do we.
        writer.write(b"QUIT\r\n")
        with contextlib.suppress(OSError, TimeoutError, SmtpFailure):
            await dialogue.expect("QUIT", 221)
        return reply
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _describe(exc: OSError) -> str:
    # asyncio's connect errors carry "Connect call failed (addr)" as strerror; say why instead.
    return os.strerror(exc.errno) if exc.errno else str(exc)


class _Dialogue:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, t: float):
        self.reader, self.writer, self.timeout = reader, writer, t

    async def command(self, stage: str, line: str, *codes: int) -> str:
        self.writer.write(line.encode("utf-8", "replace") + b"\r\n")
        return await self.expect(stage, *codes)

    async def expect(self, stage: str, *codes: int) -> str:
        """Read one (possibly multi-line) reply; its text, or SmtpFailure with the code."""
        lines: list[str] = []
        try:
            async with asyncio.timeout(self.timeout):
                await self.writer.drain()
                while True:
                    raw = await self.reader.readline()
                    if not raw:
                        raise SmtpFailure(stage, "connection closed by the server")
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    lines.append(line)
                    if len(line) < 4 or line[3] != "-":
                        break
        except TimeoutError as exc:
            raise SmtpFailure(stage, f"no reply within {self.timeout:g} s") from exc
        except OSError as exc:
            raise SmtpFailure(stage, _describe(exc)) from exc
        last = lines[-1]
        try:
            code = int(last[:3])
        except ValueError as exc:
            raise SmtpFailure(stage, f"not an SMTP reply: {last!r}") from exc
        if code not in codes:
            raise SmtpFailure(stage, " | ".join(lines), code)
        return " | ".join(lines)


class Mailer:
    """One ordered mail queue per instance or group; sending happens in background tasks."""

    def __init__(self) -> None:
        self.settings: MailSettings | None = None
        self._queues: KeyedQueues[tuple[Mail, MailSettings]] = KeyedQueues(
            "mail", self._deliver_item
        )
        self.sent = 0
        self.failed = 0

    def configure(self, settings: MailSettings | None) -> None:
        self.settings = settings

    def alert(self, scope: str, name: str, state: str) -> None:
        """Queue keepalived's mail for this transition if ``smtp_alert`` asks for one."""
        settings = self.settings
        if settings is None or not settings.wants(scope, name, state):
            return
        mail = compose(settings, scope, name, state)
        dropped = self._queues.put(mail.owner, (mail, settings), backlog=BACKLOG)
        if dropped is not None:
            self.failed += 1
            log.error(
                "vrrpd.mail.dropped", owner=mail.owner, subject=dropped[0].subject, backlog=BACKLOG
            )

    async def drain(self, timeout: float) -> None:
        await self._queues.drain(timeout)

    async def close(self) -> None:
        await self._queues.close()

    async def _deliver_item(self, item: tuple[Mail, MailSettings]) -> None:
        await self._deliver(*item)

    async def _deliver(self, mail: Mail, s: MailSettings) -> None:
        started = time.monotonic()
        server = f"[{s.server}]:{s.port}"
        try:
            reply = await send(mail, s.server, s.port, s.helo, s.timeout)
        except SmtpFailure as exc:
            self.failed += 1
            log.error(
                "vrrpd.mail.failed",
                owner=mail.owner,
                subject=mail.subject,
                server=server,
                stage=exc.stage,
                code=exc.code,
                reply=exc.detail,
                duration=round(time.monotonic() - started, 3),
            )
            return
        self.sent += 1
        log.info(
            "vrrpd.mail.sent",
            owner=mail.owner,
            subject=mail.subject,
            server=server,
            recipients=list(mail.recipients),
            reply=reply,
            duration=round(time.monotonic() - started, 3),
        )
