"""What syslog and the console receive, as keepalived's -S, -l and -G decide, in either format.

The component runs in a private mount namespace whose /dev is a directory of the test's, so
the libc syslog() it calls connects to the test's unix datagram socket as it would to
/dev/log; the host's /dev is untouched.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import syslog
import textwrap
from pathlib import Path

import pytest

from bus.logs import LOG_FORMAT_ENV, LOG_IDENT_ENV, SYSLOG_PRIORITIES
from tests.daemon import REPO

# Needs root for the mount namespace, like the network-namespace tests.
pytestmark = pytest.mark.netns

_EMIT = textwrap.dedent(
    """
    import structlog
    from bus.logs import LogOptions, configure

    configure("probe", LogOptions(facility="local3", detail=True))
    log = structlog.get_logger()
    log.debug("probe.debugged", n=1)
    log.info("probe.informed", n=2)
    log.warning("probe.warned", n=3)
    log.error("probe.failed", n=4)
    log.critical("probe.crashed", n=5)
    """
)


_PROBE = textwrap.dedent(
    """
    import argparse, sys
    import structlog
    from bus.component import add_common_arguments
    from bus.logs import LogOptions, configure

    p = argparse.ArgumentParser()
    add_common_arguments(p)
    configure("probe", LogOptions.from_args(p.parse_args(sys.argv[1:])))
    structlog.get_logger(__name__).info("probe.informed", n=2)  # a named logger, as components
    structlog.get_logger(__name__).error("probe.failed", why="it broke")
    """
)


def _run(
    tmp_path: Path, code: str, *flags: str, env: dict[str, str] | None = None
) -> tuple[list[tuple[int, int, str]], str]:
    """Run ``code`` with the test's socket as /dev/log: (facility, priority, text) of every
    datagram syslog received, and what the process wrote to stderr."""
    dev = tmp_path / "dev"
    dev.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dev / "log"))
    try:
        proc = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount --bind "{dev}" /dev && code="$1" && shift && exec "$0" -c "$code" "$@"',
                sys.executable,
                code,
                *flags,
            ],
            cwd=REPO,
            # Not the test session's environment: the daemon's own defaults apply.
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})},
            check=True,
            timeout=30,
            capture_output=True,
            text=True,
        )
        # syslog() sent every datagram before the process exited: what is queued is all.
        sock.setblocking(False)
        out = []
        while True:
            try:
                data = sock.recv(4096).decode()
            except BlockingIOError:
                break
            m = re.match(r"<(\d+)>", data)
            assert m, data
            pri = int(m.group(1))
            out.append((pri >> 3 << 3, pri & 7, data))
        return out, proc.stderr
    finally:
        sock.close()


def _received(tmp_path: Path) -> list[tuple[int, int, str]]:
    return _run(tmp_path, _EMIT)[0]


def test_each_level_reaches_syslog_at_its_own_priority(tmp_path: Path) -> None:
    got = _received(tmp_path)
    assert [(facility, priority) for facility, priority, _ in got] == [
        (syslog.LOG_LOCAL3, syslog.LOG_DEBUG),
        (syslog.LOG_LOCAL3, syslog.LOG_INFO),
        (syslog.LOG_LOCAL3, syslog.LOG_WARNING),
        (syslog.LOG_LOCAL3, syslog.LOG_ERR),
        (syslog.LOG_LOCAL3, syslog.LOG_CRIT),
    ]
    events = ["probe.debugged", "probe.informed", "probe.warned", "probe.failed", "probe.crashed"]
    for (_, _, text), event in zip(got, events, strict=True):
        # One text line: the ident and pid, then the event name and its fields.
        assert re.search(rf"pykeepalived-probe\[\d+\]: {event} n=\d$", text), text


def test_every_structlog_level_has_a_priority() -> None:
    # structlog's filtering logger calls these names on the logger it writes to.
    levels = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal"}
    assert levels <= SYSLOG_PRIORITIES.keys()


def test_by_default_one_text_line_per_event_goes_to_syslog_as_daemon(tmp_path: Path) -> None:
    got, stderr = _run(tmp_path, _PROBE)
    assert [(f, p) for f, p, _ in got] == [
        (syslog.LOG_DAEMON, syslog.LOG_INFO),
        (syslog.LOG_DAEMON, syslog.LOG_ERR),
    ]
    assert got[0][2].endswith("]: probe.informed n=2"), got
    assert got[1][2].endswith(']: probe.failed why="it broke"'), got
    assert stderr == ""  # keepalived writes to the console only with -l


def test_console_with_l_and_no_syslog_with_g(tmp_path: Path) -> None:
    got, stderr = _run(tmp_path, _PROBE, "-l", "-G")
    assert got == []
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z probe: probe.informed n=2", lines[0])
    assert lines[1].endswith(' probe: error: probe.failed why="it broke"'), lines


def test_l_logs_to_the_console_as_well_as_syslog(tmp_path: Path) -> None:
    got, stderr = _run(tmp_path, _PROBE, "-l")
    assert len(got) == 2 and len(stderr.splitlines()) == 2


def test_g_alone_logs_nowhere(tmp_path: Path) -> None:
    assert _run(tmp_path, _PROBE, "-G") == ([], "")


@pytest.mark.parametrize(
    ("flags", "env"),
    [(("-S", "2", "--log-format", "json"), {}), (("-S", "local2"), {LOG_FORMAT_ENV: "json"})],
)
def test_json_on_request_with_the_same_event_names(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    got, _ = _run(tmp_path, _PROBE, *flags, env=env)
    assert [(f, p) for f, p, _ in got] == [
        (syslog.LOG_LOCAL2, syslog.LOG_INFO),
        (syslog.LOG_LOCAL2, syslog.LOG_ERR),
    ]
    records = [json.loads(text[text.index("{") :]) for _, _, text in got]
    assert [(r["event"], r["level"]) for r in records] == [
        ("probe.informed", "info"),
        ("probe.failed", "error"),
    ]
    assert records[1]["why"] == "it broke"


def test_the_ident_carries_the_namespace_and_instance_as_keepalived_s(tmp_path: Path) -> None:
    got, _ = _run(tmp_path, _PROBE, env={LOG_IDENT_ENV: "_blue_alpha"})
    assert all("pykeepalived-probe_blue_alpha[" in text for _, _, text in got), got
