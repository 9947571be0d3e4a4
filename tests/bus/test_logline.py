"""The text log line and where logs go (pure: no process, no syslog)."""

from __future__ import annotations

import argparse
import io
import json

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from bus.component import add_common_arguments
from bus.errors import LogOptionsInvalid
from bus.logline import body, console_prefix
from bus.logs import LOG_FORMAT_ENV, LOG_TO_ENV, LogOptions, configure


def test_event_first_then_fields_in_order() -> None:
    record = {"event": "vrrp.state", "instance": "VI_1", "state": "MASTER", "level": "info"}
    assert body(record) == "vrrp.state instance=VI_1 state=MASTER"


def test_values_that_would_read_back_wrong_are_quoted() -> None:
    record = {"event": "e", "why": "two words", "empty": "", "ok": False, "n": None, "l": [1, "a"]}
    assert body(record) == 'e why="two words" empty="" ok=false n=null l=[1,"a"]'


@given(st.text())
def test_a_string_value_reads_back(value: str) -> None:
    text = body({"event": "e", "k": value}).removeprefix("e k=")
    assert (json.loads(text) if text.startswith('"') else text) == value


def test_the_console_line_names_the_component_and_levels_above_info() -> None:
    record = {"timestamp": "T", "component": "vrrpd", "level": "warning"}
    assert console_prefix(record) == "T vrrpd: warning: "
    assert console_prefix({**record, "level": "info"}) == "T vrrpd: "


def _options(*flags: str, **environ: str) -> LogOptions:
    p = argparse.ArgumentParser()
    add_common_arguments(p)
    return LogOptions.from_args(p.parse_args(flags), environ)


def test_keepalived_defaults_syslog_daemon_text() -> None:
    assert _options() == LogOptions(console=False, syslog=True, facility="daemon", format="text")


@pytest.mark.parametrize(
    ("flags", "environ", "console", "to_syslog"),
    [
        (("-l",), {}, True, True),
        (("-G",), {}, False, False),
        (("-l", "-G"), {}, True, False),
        ((), {LOG_TO_ENV: "console"}, True, False),
        (("-G",), {LOG_TO_ENV: "console,syslog"}, True, False),
    ],
)
def test_destinations(
    flags: tuple[str, ...], environ: dict[str, str], console: bool, to_syslog: bool
) -> None:
    got = _options(*flags, **environ)
    assert (got.console, got.syslog) == (console, to_syslog)
    # A child given the watchdog's environment and no flags logs the same way.
    assert _options(**got.environment()) == got.__class__(
        console=console, syslog=to_syslog, format=got.format
    )


def test_the_flag_beats_the_environment_variable() -> None:
    assert _options(**{LOG_FORMAT_ENV: "json"}).format == "json"
    assert _options("--log-format", "text", **{LOG_FORMAT_ENV: "json"}).format == "text"


@pytest.mark.parametrize("environ", [{LOG_FORMAT_ENV: "xml"}, {LOG_TO_ENV: "file"}])
def test_unknown_environment_values_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(LogOptionsInvalid):
        _options(**environ)


class _ClosedPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_console_that_went_away_does_not_stop_the_process() -> None:
    configure("probe", LogOptions(console=True, syslog=False), stream=_ClosedPipe())
    try:
        log = structlog.get_logger("probe")
        log.info("probe.first")  # must not raise
        log.info("probe.second")
    finally:
        structlog.reset_defaults()
