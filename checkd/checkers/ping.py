"""PING_CHECK: ICMP echo through one shared socket per address family (and bind options).

Standard library ``socket`` driven by the event loop's ``add_reader``: icmplib opens a socket
per ping, which does not scale to thousands of real servers, and is no longer maintained. An
unprivileged ``SOCK_DGRAM`` ICMP socket is used where ``net.ipv4.ping_group_range`` allows it
(the kernel then assigns and filters the identifier), else a raw socket (we are root) whose
replies are filtered by our identifier. keepalived opens one datagram socket per check and
widens ``ping_group_range`` instead; we leave that sysctl alone (docs/checkers.md).
Replies are matched to probes by (source address, sequence number).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import socket
import struct
from dataclasses import dataclass, field

from checkd.checkers.connection import describe_os_error
from checkd.checkers.errors import ProbeFailed
from checkd.checkers.result import CheckResult, ConnectOptions

PAYLOAD_SIZE = 128  # keepalived's echo payload
ECHO: dict[int, tuple[int, int]] = {
    socket.AF_INET: (8, 0),
    socket.AF_INET6: (128, 129),
}  # (request, reply) types
_ICMP = struct.Struct("!BBHHH")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    kind = ECHO[family][0]
    header = _ICMP.pack(kind, 0, 0, ident, seq)
    if family == socket.AF_INET6:  # the kernel fills in the ICMPv6 checksum
        return header + payload
    return _ICMP.pack(kind, 0, checksum(header + payload), ident, seq) + payload


def parse_reply(family: int, raw: bool, packet: bytes) -> tuple[int, int] | None:
    """(identifier, sequence) of an echo reply, or None for anything else."""
    if raw and family == socket.AF_INET and packet:
        packet = packet[(packet[0] & 0x0F) * 4 :]  # raw IPv4 sockets see the IP header
    if len(packet) < _ICMP.size:
        return None
    kind, _, _, ident, seq = _ICMP.unpack_from(packet)
    if kind != ECHO[family][1]:
        return None
    return ident, seq


@dataclass(frozen=True, slots=True)
class SocketKey:
    family: int
    bindto: str | None = None
    bind_if: str | None = None
    fwmark: int | None = None

    @classmethod
    def of(cls, opts: ConnectOptions) -> SocketKey:
        return cls(opts.family, opts.bindto, opts.bind_if, opts.fwmark)


def _open(key: SocketKey) -> tuple[socket.socket, bool]:
    """(socket, is_raw): a datagram ICMP socket if permitted, else a raw one."""
    proto = socket.IPPROTO_ICMP if key.family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        sock, raw = socket.socket(key.family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        sock, raw = socket.socket(key.family, socket.SOCK_RAW, proto), True
    try:
        if key.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, key.fwmark)
        if key.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, key.bind_if.encode())
        if key.bindto:
            sock.bind((key.bindto, 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock, raw


@dataclass(eq=False)
class IcmpSocket:
    """One ICMP socket and the probes waiting on it."""

    key: SocketKey
    sock: socket.socket
    raw: bool
    ident: int
    loop: asyncio.AbstractEventLoop
    waiting: dict[tuple[Address, int], asyncio.Future[None]] = field(default_factory=dict)
    next_seq: int = field(default_factory=lambda: secrets.randbelow(0x10000))

    @classmethod
    def open(cls, key: SocketKey) -> IcmpSocket:
        sock, raw = _open(key)
        # a datagram socket's identifier is its kernel-assigned "port"
        ident = secrets.randbelow(0x10000) if raw else 0
        loop = asyncio.get_running_loop()
        shared = cls(key, sock, raw, ident, loop)
        loop.add_reader(sock.fileno(), shared.on_readable)
        return shared

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ProbeFailed("ICMP socket closed"))
        self.waiting.clear()

    def on_readable(self) -> None:
        while True:
            try:
                packet, source = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # a queued ICMP error for some earlier probe: not ours to judge
            self._dispatch(packet, ipaddress.ip_address(source[0].split("%")[0]))

    def _dispatch(self, packet: bytes, source: Address) -> None:
        parsed = parse_reply(self.key.family, self.raw, packet)
        if parsed is None or (self.raw and parsed[0] != self.ident):
            return
        future = self.waiting.get((source, parsed[1]))
        if future is not None and not future.done():
            future.set_result(None)

    def _sequence(self, target: Address) -> int:
        for _ in range(0x10000):
            seq = self.next_seq
            self.next_seq = (seq + 1) & 0xFFFF
            if (target, seq) not in self.waiting:
                return seq
        raise ProbeFailed(f"65536 pings to {target} outstanding")

    async def ping(self, target: Address, timeout: float) -> None:
        seq = self._sequence(target)
        future: asyncio.Future[None] = self.loop.create_future()
        self.waiting[(target, seq)] = future
        try:
            packet = echo_request(self.key.family, self.ident, seq, os.urandom(PAYLOAD_SIZE))
            try:
                self.sock.sendto(packet, (str(target), 0))
            except OSError as exc:
                raise ProbeFailed(f"cannot send echo request: {describe_os_error(exc)}") from exc
            async with asyncio.timeout(timeout):
                await future
        finally:
            self.waiting.pop((target, seq), None)


class Pinger:
    """Every PING_CHECK of a process shares this: one socket per family and bind options,
    opened on first use in the running event loop."""

    def __init__(self) -> None:
        self._sockets: dict[SocketKey, IcmpSocket] = {}

    def _socket(self, key: SocketKey) -> IcmpSocket:
        shared = self._sockets.get(key)
        if shared is None:
            try:
                shared = IcmpSocket.open(key)
            except OSError as exc:
                raise ProbeFailed(f"cannot open ICMP socket: {describe_os_error(exc)}") from exc
            self._sockets[key] = shared
        return shared

    @property
    def sockets(self) -> tuple[IcmpSocket, ...]:
        return tuple(self._sockets.values())

    async def ping(self, opts: ConnectOptions) -> CheckResult:
        """One PING_CHECK attempt: an echo reply within ``connect_timeout``."""
        target = ipaddress.ip_address(opts.connect_ip)
        try:
            await self._socket(SocketKey.of(opts)).ping(target, opts.connect_timeout)
        except TimeoutError:
            return CheckResult.failed(
                f"no echo reply from {target} within {opts.connect_timeout} s"
            )
        except ProbeFailed as exc:
            return CheckResult.failed(f"ping {target}: {exc}")
        return CheckResult.passed(f"echo reply from {target}")

    def close(self) -> None:
        for shared in self._sockets.values():
            with contextlib.suppress(OSError):
                shared.close()
        self._sockets.clear()
