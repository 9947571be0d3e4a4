"""One alert as keepalived 2.2.7 writes it (``smtp.c``), ready for the DATA step::

    Date: Thu, 26 Nov 2026 00:39:16 +0000
    From: <sender>
    Subject: <subject>
    X-Mailer: Keepalived
    To: a@example.org, Name <b@example.org>

    <body>

Lines are CRLF-terminated and dot-stuffed; the final "." is the sender's to add. The envelope
gets each recipient's bare address (``envelope_address``): keepalived puts a quoted
``"Name <a@b>"`` verbatim into ``RCPT TO:<Name <a@b>>``, which servers reject and which loses
the whole mail; the To: header keeps the display name.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime

from mail.settings import SmtpSettings

_ADDRESS = re.compile(r"<([^<>]*)>\s*$")


@dataclass(frozen=True, slots=True)
class Message:
    owner: str  # whose queue it goes through: mails of one owner go out in order
    subject: str
    sender: str
    recipients: tuple[str, ...]
    text: bytes  # the DATA payload, CRLF line ends, dot-stuffed, without the final "."


def compose(
    settings: SmtpSettings, owner: str, subject: str, body: str, when: datetime | None = None
) -> Message:
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
    return Message(
        owner=owner,
        subject=subject,
        sender=settings.sender,
        recipients=settings.recipients,
        text=text.encode("utf-8", "replace"),
    )


def envelope_address(recipient: str) -> str:
    """``Name <a@b>`` -> ``a@b`` for RCPT TO; a bare address stays as it is."""
    match = _ADDRESS.search(recipient)
    return match.group(1).strip() if match else recipient.strip()
