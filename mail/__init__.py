"""The mailer: every ``smtp_alert`` any component sends, sent one way.

vrrpd's instance and sync-group alerts and checkd's real-server and quorum alerts go through
here, so keepalived's SMTP dialogue, its message form and its ``global_defs`` settings are
written once; what each mail says (subject and body) is the caller's. It reads nothing of the
configuration but ``global_defs`` and imports no component.

- ``settings``: :class:`SmtpSettings` from ``global_defs`` (:func:`smtp_settings`).
- ``message``: keepalived's headers and body (:func:`compose`, :func:`envelope_address`).
- ``smtp``: one bounded SMTP dialogue (:func:`send`); :class:`SmtpFailure` says where it failed.
- ``mailer``: :class:`Mailer`, the ordered, bounded background queues, one per owner.
- ``queues``: :class:`KeyedQueues`, ordered background work per key (vrrpd's notify scripts
  use it too).

Events are logged under the caller's component name (``vrrpd.mail.sent``,
``checkd.mail.failed``, ...), passed in as ``component``.
"""

from mail.errors import MailError, SmtpFailure
from mail.mailer import BACKLOG, Mailer
from mail.message import Message, compose, envelope_address
from mail.queues import KeyedQueues
from mail.settings import DEFAULT_PORT, SmtpSettings, smtp_settings
from mail.smtp import send

__all__ = [
    "BACKLOG",
    "DEFAULT_PORT",
    "KeyedQueues",
    "MailError",
    "Mailer",
    "Message",
    "SmtpFailure",
    "SmtpSettings",
    "compose",
    "envelope_address",
    "send",
    "smtp_settings",
]
