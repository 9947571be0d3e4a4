"""Who may use the bus: root only by default, and anyone else is told so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bus import RuntimeDir
from tests.daemon import REPO, running_bus, runtime_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")


@pytest.fixture
def bus_dir() -> Iterator[RuntimeDir]:
    with runtime_dir() as runtime, running_bus(runtime):
        yield runtime


@pytest.mark.parametrize(
    "command",
    [["status"], ["dump"], ["tail", "-n", "1"], ["publish", "health.chk", "ok=false"], ["reload"]],
)
def test_nobody_is_refused_in_one_line(bus_dir: RuntimeDir, command: list[str]) -> None:
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         sys.executable, "-m", "ctl", "--runtime-dir", str(bus_dir.path), *command],
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )  # fmt: skip
    assert out.returncode == 4, out.stderr
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr  # one line, no traceback
    assert "permission denied" in out.stderr and "root" in out.stderr


def test_the_runtime_directory_and_sockets_are_root_only(bus_dir: RuntimeDir) -> None:
    assert bus_dir.path.stat().st_mode & 0o007 == 0
    for sock in ("pub.sock", "sub.sock"):
        assert (bus_dir.path / sock).stat().st_mode & 0o077 == 0, sock
