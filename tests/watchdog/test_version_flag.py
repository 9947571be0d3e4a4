"""``pykeepalived -v`` prints the version, and only ``-v`` pays for looking it up: the daemon's
start-up does not import importlib.metadata (issue #15)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.daemon import REPO
from watchdog.cli import main


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_prints_the_package_version_and_exits_0(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([flag])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("pykeepalived ") and out.strip() != "pykeepalived"


def test_the_daemon_s_imports_leave_the_version_lookup_out() -> None:
    code = (
        "import sys, watchdog.cli, watchdog.spawn, importlib\n"
        "for m in watchdog.spawn.ENTRY_MODULES.values(): importlib.import_module(m)\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
