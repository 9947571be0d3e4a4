"""The shipped systemd unit is one systemd accepts, and runs the binary this checkout installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import REPO

UNIT = REPO / "dist" / "pykeepalived.service"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "pykeepalived"
    assert binary.exists(), "the venv's pykeepalived entry point"
    text = UNIT.read_text()
    assert "ExecStart=/opt/pykeepalived/.venv/bin/pykeepalived --dont-fork $DAEMON_ARGS" in text
    unit = tmp_path / "pykeepalived.service"
    unit.write_text(text.replace("/opt/pykeepalived/.venv/bin/pykeepalived", str(binary)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # Only complaints about this unit count (the host may lack units it orders itself after).
    mine = [line for line in (out.stdout + out.stderr).splitlines() if "pykeepalived" in line]
    assert mine == []
    assert "Type=notify" in text and "WatchdogSec=" in text
