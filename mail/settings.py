"""Where ``smtp_alert`` mail goes and how it is sent, from ``global_defs`` alone.

keepalived's defaults: port 25, ``smtp_helo_name`` and the sender's host part are the host name,
the sender's user part is the daemon's user, every step waits ``smtp_connect_timeout`` (30 s).
Without an ``smtp_server`` or a ``notification_email`` nothing is mailed (keepalived's
``smtp_alert`` returns at once then), which is ``None`` here.
"""

from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass

from core.model import GlobalDefs

DEFAULT_PORT = 25


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    server: str
    port: int
    helo: str
    sender: str
    recipients: tuple[str, ...]
    timeout: float  # each SMTP step: the connect and every reply


def smtp_settings(g: GlobalDefs, hostname: str | None = None) -> SmtpSettings | None:
    """The SMTP side of ``global_defs``, or None when nothing can be mailed."""
    if g.smtp_server is None or not g.notification_email:
        return None
    host = hostname or socket.gethostname()
    return SmtpSettings(
        server=g.smtp_server.host,
        port=g.smtp_server.port or DEFAULT_PORT,
        helo=g.smtp_helo_name or host,
        sender=g.notification_email_from or f"{_user()}@{host}",
        recipients=tuple(g.notification_email),
        timeout=float(g.smtp_connect_timeout),
    )


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "root"
