"""What syslog receives from a component started with -S: each record at its own priority.

The component runs in a private mount namespace whose /dev is a directory of the test's, so
the libc syslog() it calls connects to the test's unix datagram socket as it would to
/dev/log; the host's /dev is untouched.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import syslog
import textwrap
from pathlib import Path

import pytest

from bus.logs import SYSLOG_PRIORITIES
from tests.daemon import REPO

# Needs root for the mount namespace, like the network-namespace tests.
pytestmark = pytest.mark.netns

_EMIT = textwrap.dedent(
    """
    import structlog
    from bus.logs import configure

    configure("probe", facility="local3", detail=True)
    log = structlog.get_logger()
    log.debug("probe.debugged", n=1)
    log.info("probe.informed", n=2)
    log.warning("probe.warned", n=3)
    log.error("probe.failed", n=4)
    log.critical("probe.crashed", n=5)
    """
)


def _received(tmp_path: Path) -> list[tuple[int, int, str]]:
    """Run _EMIT with the test's socket as /dev/log; (facility, priority, text) per datagram."""
    dev = tmp_path / "dev"
    dev.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dev / "log"))
    sock.settimeout(5)
    try:
        subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount --bind "{dev}" /dev && exec "$0" -c "$1"',
                sys.executable,
                _EMIT,
            ],
            cwd=REPO,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            check=True,
            timeout=30,
        )
        out = []
        for _ in range(5):
            data = sock.recv(4096).decode()
            m = re.match(r"<(\d+)>", data)
            assert m, data
            pri = int(m.group(1))
            out.append((pri >> 3 << 3, pri & 7, data))
        return out
    finally:
        sock.close()


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
        assert "pykeepalived-probe[" in text and f"event='{event}'" in text, text


def test_every_structlog_level_has_a_priority() -> None:
    # structlog's filtering logger calls these names on the logger it writes to.
    levels = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal"}
    assert levels <= SYSLOG_PRIORITIES.keys()
