"""A whole pykeepalived daemon group (watchdog, bus, core, netd, vrrpd, checkd if needed) in a node.

Used by ``pykeepalivedctl demo`` and the benchmarks: start it with a generated config and its
own runtime directory, find its processes, stop it gracefully or crash it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bus import RuntimeDir
from ctl.lab import LabNode

__all__ = ["DaemonGroup", "group_pids"]

# The directory holding the packages, so ``python -m watchdog`` finds this very checkout.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
TITLE = "pykeepalived: "


def group_pids(runtime: Path) -> dict[str, int]:
    """Component name -> pid, from process titles (``pykeepalived: NAME --runtime-dir D``)."""
    suffix = f"--runtime-dir {runtime}"
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, UnicodeDecodeError):
            continue  # the process exited meanwhile, or is not ours
        if cmd.startswith(TITLE) and cmd.endswith(suffix):
            found[cmd.split()[1]] = int(entry.name)
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: as good
        os.kill(pid, sig)


class DaemonGroup:
    """``python -m watchdog -f CONF --runtime-dir DIR -l -G`` inside ``node``: console only."""

    def __init__(self, node: LabNode, config: str) -> None:
        self.node = node
        # ipc socket paths are limited to 107 bytes: keep the directory short.
        self.runtime = RuntimeDir(Path(tempfile.mkdtemp(prefix="pk-", dir="/tmp")))
        self.config_path = self.runtime.path / "keepalived.conf"
        self.config_path.write_text(config)
        self.log_path = self.runtime.path / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            sys.executable, "-m", "watchdog", "-f", str(self.config_path),
            "--runtime-dir", str(self.runtime.path), "-l", "-G",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
        with self.log_path.open("wb") as log:
            self.proc = self.node.popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=SOURCE_ROOT, start_new_session=True,  # Ctrl-C reaches us, not the daemon
            )  # fmt: skip

    def pids(self) -> dict[str, int]:
        return group_pids(self.runtime.path)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def crash(self) -> None:
        """kill -9 every process of the group, as a power cut would: no goodbye advert.

        Order matters. The watchdog is frozen first so it cannot respawn anything; vrrpd dies
        next, before anything could make it shut down cleanly (children get SIGTERM when the
        watchdog dies, and a *stopped* child whose process group becomes orphaned gets
        SIGHUP + SIGCONT, so children are never SIGSTOPped); the watchdog goes last.
        """
        pids = self.pids()
        watchdog = pids.pop("watchdog", None)
        if watchdog is not None:
            _signal(watchdog, signal.SIGSTOP)
        for name in sorted(pids, key=lambda n: n != "vrrpd"):
            _signal(pids[name], signal.SIGKILL)
        if watchdog is not None:
            _signal(watchdog, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the watchdog (keepalived's stop) and wait for the whole group to exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.crash()
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids().values():
            _signal(pid, signal.SIGKILL)
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop whatever still runs and remove the runtime directory."""
        try:
            self.terminate()
        finally:
            shutil.rmtree(self.runtime.path, ignore_errors=True)
