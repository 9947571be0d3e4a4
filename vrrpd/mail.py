"""SMTP alerts for VRRP transitions (``smtp_alert``), sent as keepalived 2.2.7 sends them.

What keepalived says about a transition (captured from 2.2.7 against a test server)::

    Subject: [<router_id>] VRRP Instance VI_1 - Entering MASTER state

    => VRRP Instance is now owning VRRP VIPs <=

Any other state says "no longer owning"; a sync group's mail says "VRRP Group G1" and "=> All
VRRP group instances are now in MASTER state <=". Only MASTER, BACKUP and FAULT mail (FAULT
not with ``no_email_faults``); keepalived starts a mail at STOP but exits before sending it.

Which instances and groups mail is VRRP's own business and lives here; the message form, the
SMTP dialogue and the queues (one per instance or group, at most ``mail.BACKLOG`` mails, in
order, separate from the notify scripts' queues so a hanging SMTP server delays neither
scripts nor adverts) are the ground-floor ``mail`` package's, shared with checkd.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime

from core.effective import vrrp_settings
from core.model import Config
from mail import Mailer as SmtpMailer
from mail import Message, SmtpSettings, smtp_settings
from mail import compose as compose_message

COMPONENT = "vrrpd"
MAIL_STATES = ("MASTER", "BACKUP", "FAULT")


@dataclass(frozen=True, slots=True)
class MailSettings:
    smtp: SmtpSettings
    router_id: str
    no_email_faults: bool
    instances: frozenset[str]  # instances with smtp_alert on
    groups: frozenset[str]  # sync groups with smtp_alert on

    def wants(self, scope: str, name: str, state: str) -> bool:
        if state not in MAIL_STATES or (state == "FAULT" and self.no_email_faults):
            return False
        return name in (self.groups if scope == "GROUP" else self.instances)


def mail_settings(config: Config, hostname: str | None = None) -> MailSettings | None:
    """Who gets mail for what, or None when nothing can be mailed (no server or no recipient)."""
    g = config.global_defs
    host = hostname or socket.gethostname()
    smtp = smtp_settings(g, host)
    if smtp is None:
        return None
    default_alert = _first(g.smtp_alert_vrrp, g.smtp_alert)
    instances = frozenset(i.name for i in config.instances if vrrp_settings(config, i).smtp_alert)
    groups = frozenset(s.name for s in config.sync_groups if _first(s.smtp_alert, default_alert))
    return MailSettings(
        smtp=smtp,
        router_id=g.router_id or host,
        no_email_faults=g.no_email_faults,
        instances=instances,
        groups=groups,
    )


def _first(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), False)


def subject_and_body(settings: MailSettings, scope: str, name: str, state: str) -> tuple[str, str]:
    """keepalived's subject and body for ``scope`` INSTANCE or GROUP ``name`` in ``state``."""
    if scope == "GROUP":
        subject = f"[{settings.router_id}] VRRP Group {name} - Entering {state} state"
        body = f"=> All VRRP group instances are now in {state} state <="
    else:
        subject = f"[{settings.router_id}] VRRP Instance {name} - Entering {state} state"
        owning = "now" if state == "MASTER" else "no longer"
        body = f"=> VRRP Instance is {owning} owning VRRP VIPs <="
    return subject, body


def compose(
    settings: MailSettings, scope: str, name: str, state: str, when: datetime | None = None
) -> Message:
    """keepalived's alert for ``scope`` INSTANCE or GROUP ``name`` entering ``state``."""
    subject, body = subject_and_body(settings, scope, name, state)
    return compose_message(settings.smtp, f"{scope} {name}", subject, body, when)


class Mailer:
    """vrrpd's alerts on the shared mail queue: one ordered queue per instance or group."""

    def __init__(self) -> None:
        self.settings: MailSettings | None = None
        self._mailer = SmtpMailer(COMPONENT)

    @property
    def sent(self) -> int:
        return self._mailer.sent

    @property
    def failed(self) -> int:
        return self._mailer.failed

    def configure(self, settings: MailSettings | None) -> None:
        self.settings = settings
        self._mailer.configure(None if settings is None else settings.smtp)

    def alert(self, scope: str, name: str, state: str) -> None:
        """Queue keepalived's mail for this transition if ``smtp_alert`` asks for one."""
        settings = self.settings
        if settings is None or not settings.wants(scope, name, state):
            return
        subject, body = subject_and_body(settings, scope, name, state)
        self._mailer.send(f"{scope} {name}", subject, body)

    async def drain(self, timeout: float) -> None:
        await self._mailer.drain(timeout)

    async def close(self) -> None:
        await self._mailer.close()
