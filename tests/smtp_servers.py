"""SMTP servers for the mail tests: aiosmtpd collecting what it is sent, and one that hangs.

Either runs on the host or, given a lab ``Node``, inside its network namespace.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.lab import Node


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str | None, Envelope]] = []
        self.reject_rcpt: set[str] = set()
        self.helos: list[str] = []  # each HELO (SMTP_CHECK's greeting), in order

    async def handle_HELO(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self.helos.append(hostname)
        session.host_name = hostname  # what aiosmtpd does without the hook
        return f"250 {server.hostname}"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.reject_rcpt:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append((session.host_name, envelope))
        return "250 2.0.0 queued as 42"

    def messages(self) -> list[EmailMessage]:
        out = []
        for _, env in self.envelopes:
            raw = env.original_content or b""
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


@contextlib.contextmanager
def smtp_server(
    host: str = "127.0.0.1", node: Node | None = None, port: int | None = None
) -> Iterator[tuple[Inbox, int]]:
    """``port``: a server started again where a stopped one listened."""
    inbox = Inbox()
    if port is None:
        port = free_port(host) if node is None else 2525
    controller = Controller(inbox, hostname=host, port=port)
    with node.inside() if node is not None else contextlib.nullcontext():
        # The server thread inherits the namespace of the thread that starts it.
        controller.start()
    try:
        yield inbox, port
    finally:
        with node.inside() if node is not None else contextlib.nullcontext():
            controller.stop()


@contextlib.contextmanager
def hanging_server(host: str = "127.0.0.1", node: Node | None = None) -> Iterator[int]:
    """Accepts connections (the kernel's backlog does) and never says a word."""
    with node.inside() if node is not None else contextlib.nullcontext():
        sock = socket.socket()
    sock.bind((host, 0 if node is None else 2525))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
