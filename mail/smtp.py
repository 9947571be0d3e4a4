"""One SMTP dialogue over asyncio streams, as keepalived 2.2.7 speaks it::

    HELO <helo>
    MAIL FROM:<sender>
    RCPT TO:<addr>                          (one per recipient)
    DATA
    <message>
    .
    QUIT

Like keepalived, the connect and every reply are bounded by the same timeout
(``smtp_connect_timeout``) and a failure is not retried; unlike it, the failure says at which
step (``connect``, ``greeting``, ``HELO``, ``MAIL``, ``RCPT``, ``DATA``, ``message``) and what
the server answered, as an ``SmtpFailure``. smtplib is not used: it blocks, and a mail must
never hold the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from mail.errors import SmtpFailure
from mail.message import Message, envelope_address


async def send(message: Message, server: str, port: int, helo: str, timeout: float) -> str:
    """Deliver ``message``; returns the server's reply to it; raises SmtpFailure."""
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
        await dialogue.command("MAIL", f"MAIL FROM:<{message.sender}>", 250)
        for rcpt in message.recipients:
            await dialogue.command("RCPT", f"RCPT TO:<{envelope_address(rcpt)}>", 250, 251)
        await dialogue.command("DATA", "DATA", 354)
        writer.write(message.text + b".\r\n")
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
