"""structlog set-up shared by every component.

Log records are rendered locally (JSON lines by default, human console lines with ``-l``, or
syslog with ``-S``) and also published as ``log.<component>`` events, so one
``pykeepalivedctl tail 'log.*'`` shows every process's log in one stream.
"""

from __future__ import annotations

import functools
import logging
import sys
import syslog
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final, TextIO

import structlog

from bus.envelope import ENVELOPE_KEYS

EventDict = MutableMapping[str, Any]
_PLAIN = (str, int, float, bool, type(None))

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


class _SyslogLogger:
    """The logger structlog writes rendered records to: one method per level name."""

    def __init__(self, ident: str, facility: int, *_args: Any) -> None:
        syslog.openlog(ident, syslog.LOG_PID, facility)
        for method, priority in SYSLOG_PRIORITIES.items():
            setattr(self, method, functools.partial(syslog.syslog, priority))


def configure(
    component: str,
    *,
    console: bool = False,
    detail: bool = False,
    facility: str | None = None,
    stream: TextIO | None = None,
) -> BusForwarder:
    """Configure structlog for this process; returns the forwarder to attach a publisher to."""
    forwarder = BusForwarder(component)
    renderer: Any
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    else:
        renderer = structlog.processors.JSONRenderer(default=str)
    logger_factory: Any
    if facility is not None:
        logger_factory = functools.partial(
            _SyslogLogger, f"pykeepalived-{component}", SYSLOG_FACILITIES[facility]
        )
        renderer = structlog.processors.KeyValueRenderer(key_order=["event"])
    else:
        logger_factory = structlog.PrintLoggerFactory(file=stream or sys.stderr)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_component(component),
        structlog.processors.format_exc_info,
        forwarder,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if detail else logging.INFO
        ),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    return forwarder


def _add_component(component: str) -> Callable[[Any, str, EventDict], EventDict]:
    def add(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("component", component)
        return event_dict

    return add
