"""What one probe reports, and where it connects: the types every checker shares.

Standard library only (frozen dataclasses): plain values the scheduler can keep,
compare and log.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from core.model import Checker, RealServer, VirtualServer

DEFAULT_CONNECT_TIMEOUT = 5.0  # keepalived's default (docs/checkers.md)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One attempt's outcome. ``reason`` is written for an operator reading a log line.

    ``weight`` is set only by FILE_CHECK: the weight change the file asks for.
    """

    ok: bool
    reason: str
    weight: int | None = None

    @classmethod
    def passed(cls, reason: str, weight: int | None = None) -> CheckResult:
        return cls(True, reason, weight)

    @classmethod
    def failed(cls, reason: str, weight: int | None = None) -> CheckResult:
        return cls(False, reason, weight)


def hostport(ip: str, port: int) -> str:
    """``198.51.100.2:80`` or ``[2001:db8::2]:80``, as operators write endpoints."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """Where and how a checker's socket connects (keepalived's per-checker ``conn_opts``).

    ``bind_if`` is applied with SO_BINDTODEVICE, ``fwmark`` with SO_MARK; ``bindto`` and
    ``bind_port`` bind the source before connecting.
    """

    connect_ip: str
    connect_port: int = 0
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @property
    def family(self) -> int:
        # connect_ip is an address core validated; only IPv6 literals hold a colon. (Parsing
        # it again cost more than the connect itself, once per probe.)
        return socket.AF_INET6 if ":" in self.connect_ip else socket.AF_INET

    @property
    def peer(self) -> str:
        """The endpoint for reasons: ``ip:port``, or just the address when there is no port."""
        if not self.connect_port:
            return self.connect_ip
        return hostport(self.connect_ip, self.connect_port)

    @classmethod
    def from_model(
        cls,
        checker: Checker,
        rs: RealServer,
        vs: VirtualServer | None = None,
        default_port: int = 0,
    ) -> ConnectOptions:
        """The checker's options with keepalived's inheritance: checker > real server >
        virtual server > default, for the address, port and ``connect_timeout``."""
        timeout = checker.connect_timeout
        if timeout is None:
            timeout = rs.connect_timeout
        if timeout is None and vs is not None:
            timeout = vs.connect_timeout
        port = checker.connect_port or rs.port or (vs.port if vs is not None else None)
        return cls(
            connect_ip=checker.connect_ip or rs.ip,
            connect_port=port or default_port,
            bindto=checker.bindto,
            bind_port=checker.bind_port,
            bind_if=checker.bind_if,
            fwmark=checker.fwmark,
            connect_timeout=DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout,
        )
