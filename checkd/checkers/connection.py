"""Sockets for the probes: bound, marked and connected as keepalived's ``conn_opts`` says.

Plain ``socket`` plus asyncio's ``sock_connect``/``open_connection(sock=…)``: the socket must be
built by hand so that SO_MARK, SO_BINDTODEVICE and the source bind are set before connecting,
which no HTTP client library exposes. OS errors become :class:`ProbeFailed` with a reason
naming the peer here, so the probes only deal with their protocol.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl

from checkd.checkers.errors import ProbeFailed
from checkd.checkers.result import ConnectOptions

READ_SIZE = 4096
PEER_CLOSED = "connection closed by the peer"


def describe_os_error(exc: OSError) -> str:
    """``connection refused`` rather than ``[Errno 111] Connection refused``."""
    if exc.errno:
        # not exc.strerror: asyncio puts its own sentence there ("Connect call failed …")
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def make_socket(opts: ConnectOptions, kind: int, proto: int = 0) -> socket.socket:
    """A non-blocking socket with fwmark, device and source bind applied (not connected)."""
    # created non-blocking: no fcntl round trips per probe
    sock = socket.socket(opts.family, kind | socket.SOCK_NONBLOCK, proto)
    try:
        if opts.fwmark:
            _setopt(sock, socket.SO_MARK, opts.fwmark, f"fwmark {opts.fwmark}")
        if opts.bind_if:
            _setopt(sock, socket.SO_BINDTODEVICE, opts.bind_if.encode(), f"device {opts.bind_if}")
        if opts.bindto or opts.bind_port:
            source = (
                opts.bindto or ("::" if opts.family == socket.AF_INET6 else "0.0.0.0"),
                opts.bind_port or 0,
            )
            try:
                sock.bind(source)
            except OSError as exc:
                raise ProbeFailed(
                    f"cannot bind to {source[0]} port {source[1]}: {describe_os_error(exc)}"
                ) from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _setopt(sock: socket.socket, option: int, value: int | bytes, what: str) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, value)
    except OSError as exc:
        raise ProbeFailed(f"cannot set {what}: {describe_os_error(exc)}") from exc


async def connect_tcp(opts: ConnectOptions) -> socket.socket:
    """A connected TCP socket, or :class:`ProbeFailed` (refused, unreachable, timeout)."""
    sock = make_socket(opts, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(opts.connect_timeout):
            await loop.sock_connect(sock, (opts.connect_ip, opts.connect_port))
    except TimeoutError as exc:
        sock.close()
        raise ProbeFailed(f"connect timeout after {opts.connect_timeout} s to {opts.peer}") from exc
    except OSError as exc:
        sock.close()
        raise ProbeFailed(f"connect to {opts.peer} failed: {describe_os_error(exc)}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def insecure_tls_context() -> ssl.SSLContext:
    """keepalived's SSL_GET verifies no certificate (docs/checkers.md), so neither do we."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def open_stream(
    opts: ConnectOptions,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect (and run the TLS handshake, sending SNI only when ``server_name`` is given)."""
    sock = await connect_tcp(opts)
    try:
        if tls is None:
            return await asyncio.open_connection(sock=sock, limit=READ_SIZE * 16)
        async with asyncio.timeout(opts.connect_timeout):
            return await asyncio.open_connection(
                sock=sock,
                ssl=tls,
                server_hostname=server_name or "",
                ssl_handshake_timeout=opts.connect_timeout,
            )
    except TimeoutError as exc:
        sock.close()
        raise ProbeFailed(
            f"TLS handshake timeout after {opts.connect_timeout} s with {opts.peer}"
        ) from exc
    except (OSError, ValueError) as exc:  # ssl.SSLError included; ValueError: a bad SNI name
        sock.close()
        raise ProbeFailed(f"TLS handshake with {opts.peer} failed: {tls_reason(exc)}") from exc


def tls_reason(exc: Exception) -> str:
    """OpenSSL's reason (``WRONG_VERSION_NUMBER``), else the system's or the exception's.

    A peer that hangs up mid-handshake reads as OpenSSL's ``SSLEOFError`` on a bare socket and
    as an errno-less ``ConnectionResetError`` from asyncio's TLS: both say so in one phrase."""
    if isinstance(exc, ssl.SSLEOFError) or (
        isinstance(exc, ConnectionResetError) and not exc.errno
    ):
        return PEER_CLOSED
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    return str(exc) or type(exc).__name__


async def read_some(reader: asyncio.StreamReader, opts: ConnectOptions, what: str) -> bytes:
    """One read; ``connect_timeout`` bounds each read, as keepalived's read timeout does."""
    try:
        async with asyncio.timeout(opts.connect_timeout):
            return await reader.read(READ_SIZE)
    except TimeoutError as exc:
        raise ProbeFailed(
            f"{what} timeout after {opts.connect_timeout} s from {opts.peer}"
        ) from exc
    except ssl.SSLError as exc:
        raise ProbeFailed(f"TLS error reading from {opts.peer}: {tls_reason(exc)}") from exc
    except OSError as exc:
        raise ProbeFailed(f"read from {opts.peer} failed: {describe_os_error(exc)}") from exc


async def send(writer: asyncio.StreamWriter, data: bytes, opts: ConnectOptions) -> None:
    try:
        writer.write(data)
        async with asyncio.timeout(opts.connect_timeout):
            await writer.drain()
    except TimeoutError as exc:
        raise ProbeFailed(f"write timeout after {opts.connect_timeout} s to {opts.peer}") from exc
    except OSError as exc:
        raise ProbeFailed(f"write to {opts.peer} failed: {describe_os_error(exc)}") from exc


async def close(writer: asyncio.StreamWriter) -> None:
    """Close without waiting on the peer: a probe's verdict never depends on the goodbye."""
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        pass
