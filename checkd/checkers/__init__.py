"""The real-server checkers: one ``async`` attempt each, with keepalived's semantics.

Each probe returns a :class:`CheckResult` (``ok`` and an operator-facing ``reason``) and never
raises for a failing server. Scheduling (``delay_loop``, ``retry``, ``delay_before_retry``,
``warmup``) belongs to the caller. docs/checkers.md describes what each checker sends and
accepts.
"""

from checkd.checkers.dns import build_query, dns_check
from checkd.checkers.errors import CheckerConfigError, CheckerError, ProbeFailed
from checkd.checkers.factory import Probe, make_probe
from checkd.checkers.file import FileTrack, file_check, judge_value
from checkd.checkers.http import (
    HttpCheck,
    Response,
    UrlSpec,
    fetch,
    http_check,
    judge,
    parse_status_codes,
    request_bytes,
)
from checkd.checkers.ping import Pinger
from checkd.checkers.result import CheckResult, ConnectOptions
from checkd.checkers.smtp import smtp_check
from checkd.checkers.tcp import tcp_check
from checkd.checkers.udp import ReplyRule, UdpCheck, parse_hex, udp_check

__all__ = [
    "CheckResult",
    "CheckerConfigError",
    "CheckerError",
    "ConnectOptions",
    "FileTrack",
    "HttpCheck",
    "Pinger",
    "Probe",
    "ProbeFailed",
    "ReplyRule",
    "Response",
    "UdpCheck",
    "UrlSpec",
    "build_query",
    "dns_check",
    "fetch",
    "file_check",
    "http_check",
    "judge",
    "judge_value",
    "make_probe",
    "parse_hex",
    "parse_status_codes",
    "request_bytes",
    "smtp_check",
    "tcp_check",
    "udp_check",
]
