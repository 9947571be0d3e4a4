"""structlog set-up shared by every component.

As keepalived: records go to syslog (facility ``daemon``, ``-S`` to change it) unless ``-G``,
and to the console (stderr) too with ``-l``. Each is one human-readable line by default
(``bus.logline``), or JSON with ``--log-format=json`` or ``PYKEEPALIVED_LOG_FORMAT=json``; the
event names and fields are the same either way. Every record is also published as a
``log.<component>`` event, so one ``pykeepalivedctl tail 'log.*'`` shows every process's log.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import syslog
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, TextIO

import structlog

from bus import logline
from bus.envelope import ENVELOPE_KEYS
from bus.errors import LogOptionsInvalid

EventDict = MutableMapping[str, Any]
_PLAIN = (str, int, float, bool, type(None))

LOG_FORMAT_ENV: Final = "PYKEEPALIVED_LOG_FORMAT"
LOG_TO_ENV: Final = "PYKEEPALIVED_LOG_TO"
# Set by the watchdog for its children: what keepalived appends to its syslog idents.
LOG_IDENT_ENV: Final = "PYKEEPALIVED_LOG_IDENT_SUFFIX"
LOG_FORMATS: Final = ("text", "json")

SYSLOG_FACILITIES = {f"local{i}": getattr(syslog, f"LOG_LOCAL{i}") for i in range(8)} | {
    "daemon": syslog.LOG_DAEMON,
    "user": syslog.LOG_USER,
}


def plain(value: Any) -> Any:
    """Make a log value msgpack-able without losing what a human needs to read."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


class BusForwarder:
    """structlog processor: copies each record onto the bus once a publisher is attached."""

    def __init__(self, component: str) -> None:
        self.topic = f"log.{component}"
        self._send: Callable[[str, Mapping[str, Any]], None] | None = None

    def attach(self, send: Callable[[str, Mapping[str, Any]], None] | None) -> None:
        self._send = send

    def __call__(self, _logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        if self._send is not None:
            body = {(f"{k}_" if k in ENVELOPE_KEYS else k): plain(v) for k, v in event_dict.items()}
            self._send(self.topic, body)
        return event_dict


# structlog calls the logger method named for the record's level; syslog gets that level, so
# an operator filtering on priority (err and up, say) sees the errors.
SYSLOG_PRIORITIES: Final[Mapping[str, int]] = {
    "debug": syslog.LOG_DEBUG,
    "info": syslog.LOG_INFO,
    "msg": syslog.LOG_INFO,
    "log": syslog.LOG_INFO,
    "warn": syslog.LOG_WARNING,
    "warning": syslog.LOG_WARNING,
    "error": syslog.LOG_ERR,
    "exception": syslog.LOG_ERR,
    "critical": syslog.LOG_CRIT,
    "fatal": syslog.LOG_CRIT,
}


class _Sink:
    """The logger structlog hands rendered records to: one method per level name, each
    writing the console line (``-l``) and the syslog message (unless ``-G``)."""

    def __init__(self, options: LogOptions, ident: str, stream: TextIO, *_args: Any) -> None:
        self._stream = stream if options.console else None
        self._syslog = options.syslog
        if options.syslog:
            syslog.openlog(ident, syslog.LOG_PID, SYSLOG_FACILITIES[options.facility])
        for method, priority in SYSLOG_PRIORITIES.items():
            setattr(self, method, functools.partial(self._emit, priority))

    def _emit(self, priority: int, console_line: str, syslog_line: str) -> None:
        if self._stream is not None:
            try:
                # One write for the line and its newline: a signal handler that logs runs
                # between two Python-level calls, and would land inside the line otherwise.
                self._stream.write(console_line + "\n")
                self._stream.flush()
            except OSError as exc:
                # The reader went away (a closed pipe, journald restarted): a log line must not
                # take the process down in the middle of its work, withdrawing VIPs say.
                self._stream = None
                if self._syslog:
                    syslog.syslog(syslog.LOG_WARNING, f"log.console.lost reason={exc}")
        if self._syslog:
            syslog.syslog(priority, syslog_line)


@dataclass(frozen=True, slots=True)
class LogOptions:
    """Where and how a process logs, as keepalived decides it: syslog (facility ``daemon``
    unless ``-S``) unless ``-G``, the console too with ``-l``; debug events with ``-D``.

    ``PYKEEPALIVED_LOG_TO`` (``syslog``, ``console`` or both, comma-separated) replaces the
    default destination for harnesses; the flags still apply on top of it.
    """

    console: bool = False
    syslog: bool = True
    facility: str = "daemon"
    detail: bool = False
    format: str = "text"
    #: keepalived appends ``_NAMESPACE`` and ``_INSTANCE`` to its syslog idents, so that the
    #: daemons of one host can be told apart (``pykeepalived-vrrpd_blue_alpha``)
    ident_suffix: str = ""

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] = os.environ
    ) -> LogOptions:
        fmt = args.log_format or environ.get(LOG_FORMAT_ENV) or "text"
        if fmt not in LOG_FORMATS:
            raise LogOptionsInvalid(f"{LOG_FORMAT_ENV}={fmt!r} is not one of {LOG_FORMATS}")
        targets = set(filter(None, environ.get(LOG_TO_ENV, "syslog").split(",")))
        if not targets <= {"console", "syslog"}:
            raise LogOptionsInvalid(
                f"{LOG_TO_ENV}={environ[LOG_TO_ENV]!r}: use console, syslog or both"
            )
        return cls(
            console=args.log_console or "console" in targets,
            syslog="syslog" in targets and not args.no_syslog,
            facility=args.log_facility or "daemon",
            detail=args.log_detail,
            format=fmt,
            ident_suffix=environ.get(LOG_IDENT_ENV, ""),
        )

    def environment(self) -> dict[str, str]:
        """The variables that give a child process these same options: its own flags can only
        add the console or drop syslog, which these already say."""
        targets = [t for t, on in (("console", self.console), ("syslog", self.syslog)) if on]
        return {
            LOG_FORMAT_ENV: self.format,
            LOG_TO_ENV: ",".join(targets),
            LOG_IDENT_ENV: self.ident_suffix,
        }


def configure(
    component: str, options: LogOptions | None = None, *, stream: TextIO | None = None
) -> BusForwarder:
    """Configure structlog for this process; returns the forwarder to attach a publisher to."""
    options = options or LogOptions()
    forwarder = BusForwarder(component)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_component(component),
        structlog.processors.format_exc_info,
        forwarder,
        _json_lines if options.format == "json" else _text_lines,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if options.detail else logging.INFO
        ),
        logger_factory=functools.partial(
            _Sink, options, f"pykeepalived-{component}{options.ident_suffix}", stream or sys.stderr
        ),
        cache_logger_on_first_use=False,
    )
    return forwarder


_json_renderer = structlog.processors.JSONRenderer(default=str)


def _json_lines(
    logger: Any, method: str, event_dict: EventDict
) -> tuple[tuple[str, str], dict[str, Any]]:
    line = _json_renderer(logger, method, event_dict)
    assert isinstance(line, str)
    return (line, line), {}


def _text_lines(
    _logger: Any, _method: str, event_dict: EventDict
) -> tuple[tuple[str, str], dict[str, Any]]:
    text = logline.body(event_dict)
    return (logline.console_prefix(event_dict) + text, text), {}


def _add_component(component: str) -> Callable[[Any, str, EventDict], EventDict]:
    def add(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("component", component)
        return event_dict

    return add
