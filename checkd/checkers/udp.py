"""UDP_CHECK: send ``payload``, then judge the reply, the ICMP error or the silence.

asyncio datagram endpoints on a connected socket (built in ``checkd.checkers.connection`` for
the bind options): the kernel then reports an ICMP port unreachable as ECONNREFUSED, which is
keepalived's failure signal. Hex strings are parsed as keepalived's ``read_hex_str`` does.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass

from checkd.checkers.connection import describe_os_error, make_socket
from checkd.checkers.errors import CheckerConfigError, ProbeFailed
from checkd.checkers.result import CheckResult, ConnectOptions
from core.model import Checker

# Linux values the socket module does not export
IP_RECVERR, SOL_IPV6, IPV6_RECVERR = 11, 41, 25
DEFAULT_PAYLOAD_SIZE = 32  # keepalived sends this many filler bytes without a payload
_HEX = "0123456789abcdef"


def _nibble(char: str, wildcards: bool, text: str) -> tuple[int, int]:
    """(value, mask) of one hex digit; ``x``/``X`` is a wildcard nibble where allowed."""
    low = char.lower()
    if low in _HEX:
        return _HEX.index(low), 0
    if wildcards and low == "x":
        return 0, 0xF
    raise CheckerConfigError(f"invalid hex string {text!r}: {char!r} is not a hex digit")


def parse_hex(text: str, wildcards: bool = False) -> tuple[bytes, bytes]:
    """keepalived's hex strings: pairs of digits, blanks between bytes, a lone digit before a
    blank is one byte; returns (data, mask) where mask bits are "don't care"."""
    data, mask = bytearray(), bytearray()
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            break
        value, care = _nibble(text[i], wildcards, text)
        i += 1
        if i < len(text) and text[i] != " ":
            low, low_care = _nibble(text[i], wildcards, text)
            value, care = value << 4 | low, care << 4 | low_care
            i += 1
        data.append(value)
        mask.append(care)
    if not data:
        raise CheckerConfigError(f"invalid hex string {text!r}: no bytes")
    return bytes(data), bytes(mask)


@dataclass(frozen=True, slots=True)
class ReplyRule:
    """``require_reply [HEX]`` with ``min_reply_length``/``max_reply_length``."""

    data: bytes = b""
    mask: bytes = b""
    min_length: int = 0
    max_length: int = 255

    def mismatch(self, reply: bytes) -> str | None:
        """Why ``reply`` fails, or None. Without HEX any reply passes; with it the lengths
        apply and the first min(len(reply), len(HEX)) bytes must match."""
        if not self.data:
            return None
        if not self.min_length <= len(reply) <= self.max_length:
            return f"reply of {len(reply)} bytes outside {self.min_length}-{self.max_length}"
        for i, (got, want, care) in enumerate(zip(reply, self.data, self.mask, strict=False)):
            if (got ^ want) & ~care & 0xFF:
                return f"reply byte {i} is {got:02x}, expected {want:02x} (mask {~care & 0xFF:02x})"
        return None


@dataclass(frozen=True, slots=True)
class UdpCheck:
    opts: ConnectOptions
    payload: bytes | None = None
    reply: ReplyRule | None = None  # None: no reply needed, silence passes

    @classmethod
    def from_model(cls, checker: Checker, opts: ConnectOptions) -> UdpCheck:
        payload = parse_hex(checker.payload)[0] if checker.payload else None
        reply = None
        if checker.require_reply is not None:
            data, mask = (
                parse_hex(checker.require_reply, True) if checker.require_reply else (b"", b"")
            )
            reply = ReplyRule(
                data,
                mask,
                checker.min_reply_length if checker.min_reply_length is not None else 0,
                checker.max_reply_length if checker.max_reply_length is not None else 255,
            )
        return cls(opts, payload, reply)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            self.done.set_exception(ProbeFailed(reason))


def _connected_socket(opts: ConnectOptions) -> socket.socket:
    sock = make_socket(opts, socket.SOCK_DGRAM)
    try:
        # ICMP errors other than port unreachable (host/net unreachable) reach recv too
        if opts.family == socket.AF_INET:
            sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
        else:
            sock.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
        sock.connect((opts.connect_ip, opts.connect_port))
    except OSError as exc:
        sock.close()
        raise ProbeFailed(describe_os_error(exc)) from exc
    return sock


async def udp_check(check: UdpCheck) -> CheckResult:
    """One UDP_CHECK attempt."""
    opts = check.opts
    where = f"UDP to {opts.peer}"
    try:
        sock = _connected_socket(opts)
    except ProbeFailed as exc:
        return CheckResult.failed(f"{where}: {exc}")
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Receiver, sock=sock)
    try:
        transport.sendto(check.payload or os.urandom(DEFAULT_PAYLOAD_SIZE))
        async with asyncio.timeout(opts.connect_timeout):
            reply = await protocol.done
    except TimeoutError:
        if check.reply is None:
            return CheckResult.passed(f"{where}: no ICMP error within {opts.connect_timeout} s")
        return CheckResult.failed(f"{where}: no reply within {opts.connect_timeout} s")
    except ProbeFailed as exc:
        return CheckResult.failed(f"{where}: {exc}")
    finally:
        transport.close()
    problem = check.reply.mismatch(reply) if check.reply is not None else None
    if problem is not None:
        return CheckResult.failed(f"{where}: {problem}")
    return CheckResult.passed(f"{where}: reply of {len(reply)} bytes")
