"""SMTP_CHECK: greeting 220, ``HELO <helo_name>`` answered 250, then ``QUIT``.

asyncio streams only: three lines of SMTP do not warrant a client library, and smtplib is
blocking and reads multi-line replies whole, where keepalived judges only the first line.
"""

from __future__ import annotations

import asyncio
import re

from checkd.checkers.connection import close, open_stream, read_some, send
from checkd.checkers.errors import ProbeFailed
from checkd.checkers.result import CheckResult, ConnectOptions

DEFAULT_HELO = "smtpchecker.keepalived.org"
LINE_LIMIT = 511  # keepalived's line buffer

_STATUS = re.compile(rb"([0-9]{3})(?: |\r?$)")


def reply_status(line: bytes) -> int | None:
    """A reply line's code when it is three digits then a space or the end of the line.

    So a multi-line reply's first line (``220-…``) has no status and fails, as in keepalived.
    keepalived also rejects a bare ``220\\r``; we accept it (docs/checkers.md).
    """
    m = _STATUS.match(line)
    return int(m.group(1)) if m else None


async def read_line(reader: asyncio.StreamReader, opts: ConnectOptions, what: str) -> bytes:
    """The first line of the next reply; anything after it in the same read is dropped, as
    keepalived does (each step starts with an empty buffer)."""
    buffer = b""
    while b"\n" not in buffer:
        data = await read_some(reader, opts, f"{what} read")
        if not data:
            raise ProbeFailed(f"{opts.peer} closed the connection before its {what}")
        # keepalived wraps a full buffer to empty rather than failing
        buffer = data if len(buffer) >= LINE_LIMIT else buffer + data
    return buffer.split(b"\n", 1)[0]


def _shown(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", "replace")[:80]


async def _converse(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opts: ConnectOptions, helo: str
) -> None:
    greeting = await read_line(reader, opts, "greeting")
    if reply_status(greeting) != 220:
        raise ProbeFailed(f"bad greeting from {opts.peer}: {_shown(greeting)!r} (want 220)")
    await send(writer, f"HELO {helo}\r\n".encode(), opts)
    answer = await read_line(reader, opts, "HELO reply")
    if reply_status(answer) != 250:
        raise ProbeFailed(f"bad HELO reply from {opts.peer}: {_shown(answer)!r} (want 250)")
    await send(writer, b"QUIT\r\n", opts)
    await read_line(reader, opts, "QUIT reply")


async def smtp_check(opts: ConnectOptions, helo_name: str | None = None) -> CheckResult:
    """One SMTP_CHECK attempt. Any QUIT reply will do; none at all fails, as in keepalived."""
    try:
        reader, writer = await open_stream(opts)
        try:
            await _converse(reader, writer, opts, helo_name or DEFAULT_HELO)
        finally:
            await close(writer)
    except ProbeFailed as exc:
        return CheckResult.failed(str(exc))
    return CheckResult.passed(f"SMTP 220/250 from {opts.peer}")
