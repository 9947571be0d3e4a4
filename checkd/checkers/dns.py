"""DNS_CHECK: one query over UDP; any reply with our id, QR set and RCODE 0 passes.

The query is built by hand rather than with dnspython: keepalived's query is a fixed 12-byte
header (random id, RD) and one question, no EDNS, and matching it byte for byte is a few lines,
while the reply check reads only the header. dnspython is used by the tests to answer.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct

from checkd.checkers.connection import describe_os_error, make_socket
from checkd.checkers.errors import CheckerConfigError, ProbeFailed
from checkd.checkers.result import CheckResult, ConnectOptions

TYPES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "RRSIG": 46,
    "DNSKEY": 48,
}
DEFAULT_TYPE = "SOA"
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
HEADER = struct.Struct("!HHHHHH")
RD = 0x0100
QR = 0x8000
RECV_SIZE = 768


def encode_name(name: str) -> bytes:
    """QNAME for ``name``; empty or ``.`` is the root."""
    out = bytearray()
    for label in name.strip(".").split(".") if name.strip(".") else ():
        raw = label.encode()
        if not 0 < len(raw) < 64:
            raise CheckerConfigError(f"DNS_CHECK name {name!r}: label {label!r} is not 1-63 bytes")
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\x00"


def build_query(name: str, qtype: str, query_id: int) -> bytes:
    try:
        code = TYPES[qtype.upper()]
    except KeyError:
        raise CheckerConfigError(
            f"DNS_CHECK type {qtype!r} is not one of {' '.join(TYPES)}"
        ) from None
    return HEADER.pack(query_id, RD, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", code, 1)


def judge_reply(reply: bytes, query_id: int) -> CheckResult | None:
    """The verdict for a datagram, or None to keep waiting (short, other id, not a reply)."""
    if len(reply) < HEADER.size:
        return None
    rid, flags = struct.unpack_from("!HH", reply)
    if rid != query_id or not flags & QR:
        return None
    rcode = flags & 0x000F
    if rcode:
        return CheckResult.failed(f"rcode {rcode} ({RCODES.get(rcode, 'unknown')})")
    return CheckResult.passed("answered with rcode 0")


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.done: asyncio.Future[CheckResult] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        verdict = judge_reply(data, self.query_id)
        if verdict is not None and not self.done.done():
            self.done.set_result(verdict)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            self.done.set_exception(ProbeFailed(reason))


async def dns_check(
    opts: ConnectOptions, qtype: str | None = None, name: str | None = None
) -> CheckResult:
    """One DNS_CHECK attempt (``type`` defaults to SOA, ``name`` to the root)."""
    query_id = secrets.randbelow(0x10000)
    query = build_query(name or "", qtype or DEFAULT_TYPE, query_id)
    question = f"{qtype or DEFAULT_TYPE} {name or '.'}"
    loop = asyncio.get_running_loop()
    try:
        sock = make_socket(opts, socket.SOCK_DGRAM)
    except ProbeFailed as exc:
        return CheckResult.failed(f"DNS {question} to {opts.peer}: {exc}")
    try:
        sock.connect((opts.connect_ip, opts.connect_port))
    except OSError as exc:
        sock.close()
        return CheckResult.failed(f"DNS {question} to {opts.peer}: {describe_os_error(exc)}")
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Receiver(query_id), sock=sock
    )
    try:
        transport.sendto(query)
        async with asyncio.timeout(opts.connect_timeout):
            verdict = await protocol.done
    except TimeoutError:
        return CheckResult.failed(
            f"DNS {question} to {opts.peer}: no reply within {opts.connect_timeout} s"
        )
    except ProbeFailed as exc:
        return CheckResult.failed(f"DNS {question} to {opts.peer}: {exc}")
    finally:
        transport.close()
    return CheckResult(verdict.ok, f"DNS {question} to {opts.peer}: {verdict.reason}")
