"""From the typed configuration to a ready probe: one place that knows which checker needs
which inputs, so the scheduler only awaits ``probe()``. Standard library only
(``functools.partial`` binds each probe's inputs)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from typing import Any

from checkd.checkers.dns import dns_check
from checkd.checkers.errors import CheckerConfigError
from checkd.checkers.file import FileTrack, file_check
from checkd.checkers.http import HttpCheck, http_check
from checkd.checkers.ping import Pinger
from checkd.checkers.result import CheckResult, ConnectOptions
from checkd.checkers.smtp import smtp_check
from checkd.checkers.tcp import tcp_check
from checkd.checkers.udp import UdpCheck, udp_check
from core.model import Checker, RealServer, TrackFile, VirtualServer

Probe = Callable[[], Coroutine[Any, Any, CheckResult]]

DEFAULT_PORTS = {"SMTP_CHECK": 25, "DNS_CHECK": 53}


async def _file(path: str, weight: int, reverse: bool) -> CheckResult:
    return file_check(path, weight, reverse)


def _file_probe(checker: Checker, track_files: Mapping[str, TrackFile]) -> Probe:
    track = FileTrack.of(checker, track_files)
    return partial(_file, track.path, track.weight, track.reverse)


def make_probe(
    checker: Checker,
    rs: RealServer,
    vs: VirtualServer,
    pinger: Pinger,
    track_files: Mapping[str, TrackFile] | None = None,
) -> Probe:
    """The probe for one configured checker. MISC_CHECK and BFD_CHECK are not probes of this
    package (scripts and BFD sessions are run elsewhere): asking for them is an error."""
    opts = ConnectOptions.from_model(checker, rs, vs, DEFAULT_PORTS.get(checker.kind, 0))
    kind = checker.kind
    if kind == "TCP_CHECK":
        return partial(tcp_check, opts)
    if kind in ("HTTP_GET", "SSL_GET"):
        return partial(http_check, HttpCheck.from_model(checker, rs, vs))
    if kind == "SMTP_CHECK":
        return partial(smtp_check, opts, checker.helo_name)
    if kind == "DNS_CHECK":
        return partial(dns_check, opts, checker.type, checker.name)
    if kind == "UDP_CHECK":
        return partial(udp_check, UdpCheck.from_model(checker, opts))
    if kind == "PING_CHECK":
        return partial(pinger.ping, opts)
    if kind == "FILE_CHECK":
        return _file_probe(checker, track_files or {})
    raise CheckerConfigError(f"{kind} is not run by checkd.checkers")
