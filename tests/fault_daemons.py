"""The VRRP daemon on one node of a fault lab (tests/netfaults.py): pykeepalived or keepalived.

Both are read the same way: the instance's state changes and the split brains the daemon
logged, each with a wall-clock time, parsed incrementally (a soak runs for half an hour and
polls the logs several times a second).

* :class:`PyDaemon`: a pykeepalived group (watchdog and components), JSON logs with the
  daemon's own microsecond timestamps (``vrrp.state``, ``vrrpd.split_brain``).
* :class:`KeepalivedDaemon`: Debian's ``/usr/sbin/keepalived`` in the foreground (``-n -l -D``).
  Its console timestamps have a resolution of one second, so each line is stamped when a
  reader thread gets it from the pipe (stderr is unbuffered: a few milliseconds late at most
  on an idle machine, later when loaded — which only makes a take-over look later).
  ``(VI_1) Entering X STATE`` lines are the transitions; the split brain is keepalived's
  ``Received advert from A with lower priority P, ours Q, forcing new election``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from bus.logs import LOG_TO_ENV
from tests.daemon import JSON_LOGS, DaemonGroup
from tests.interop.peers import KEEPALIVED, keepalived_argv
from tests.lab import Node

__all__ = ["DAEMONS", "KeepalivedDaemon", "NodeDaemon", "PyDaemon", "StateChange", "make"]

DAEMONS = ("pykeepalived", "keepalived")


@dataclass(frozen=True, slots=True)
class StateChange:
    at: float  # POSIX time
    old: str
    new: str
    cause_kind: str
    cause: str


class NodeDaemon(Protocol):
    def state_changes(self, instance: str) -> list[StateChange]: ...

    def split_brains(self, instance: str) -> list[tuple[float, str]]:
        """(time, peer address) of each split brain logged."""
        ...

    def wait_started(self, timeout: float) -> None: ...

    def pids(self) -> dict[str, int]:
        """Component name -> pid of every process of the daemon, the parent included."""
        ...

    def reload(self, config: str) -> None:
        """Write ``config`` and send SIGHUP."""
        ...

    def log_text(self) -> str: ...

    def close(self) -> None: ...


def _posix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class PyDaemon:
    """pykeepalived, JSON logs on the console (whoever runs the lab: bench scripts have no
    conftest to say so)."""

    def __init__(self, node: Node, config: str) -> None:
        self.group = DaemonGroup(node, config, env={**JSON_LOGS, LOG_TO_ENV: "console"})
        self._path = self.group.runtime.path / "daemon.log"
        self._offset = 0
        self._partial = b""
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _follow(self) -> list[dict[str, Any]]:
        with self._lock:
            with contextlib.suppress(FileNotFoundError), self._path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
                self._offset += len(data)
                *lines, self._partial = (self._partial + data).split(b"\n")
                for raw in lines:
                    # Only the two events read here are kept: a soak's log is long.
                    if not raw.startswith(b"{") or (
                        b'"vrrp.state"' not in raw and b'"vrrpd.split_brain"' not in raw
                    ):
                        continue
                    with contextlib.suppress(ValueError):
                        line = json.loads(raw)
                        if isinstance(line, dict):
                            self._records.append(line)
            return list(self._records)

    def state_changes(self, instance: str) -> list[StateChange]:
        return [
            StateChange(
                _posix(str(r["timestamp"])),
                str(r.get("old")),
                str(r.get("new")),
                str(r.get("cause_kind")),
                str(r.get("cause")),
            )
            for r in self._follow()
            if r.get("event") == "vrrp.state" and r.get("instance") == instance
        ]

    def split_brains(self, instance: str) -> list[tuple[float, str]]:
        return [
            (_posix(str(r["timestamp"])), str(r.get("peer")))
            for r in self._follow()
            if r.get("event") == "vrrpd.split_brain" and r.get("instance") == instance
        ]

    def wait_started(self, timeout: float) -> None:
        self.group.wait_started(timeout=timeout)

    def pids(self) -> dict[str, int]:
        return {"watchdog": self.group.proc.pid, **self.group.pids()}

    def reload(self, config: str) -> None:
        self.group.config.write_text(config)
        # `ip netns exec` execs the watchdog: the Popen is the watchdog itself
        self.group.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        return self.group.log_text()

    def close(self) -> None:
        self.group.close()


_KA_STATE = re.compile(r"^\((?P<instance>[^)]+)\) Entering (?P<state>\w+) STATE")
_KA_TIMEOUT = re.compile(r"^\((?P<instance>[^)]+)\) Receive advertisement timeout")
_KA_SPLIT = re.compile(
    r"^\((?P<instance>[^)]+)\) Received advert from (?P<peer>\S+) with lower priority"
)


class KeepalivedDaemon:
    """Debian's keepalived 2.2.7 in ``node``, every log line stamped on arrival."""

    def __init__(self, node: Node, config: str, binary: Path = KEEPALIVED) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pk-ka-", dir="/tmp"))
        self.conf_path = self.dir / "keepalived.conf"
        self.conf_path.write_text(config)
        self._lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.proc = node.popen(
            keepalived_argv(binary, self.conf_path, self.dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="keepalived-log", daemon=True
        )
        self._reader.start()

    def _read(self, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            at = time.time()
            # "Sun Dec  6 02:25:23 2026: text": the stamp is 24 characters and a ": "
            text = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self._lines.append((at, text[26:] if text[24:26] == ": " else text))

    def _snapshot(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._lines)

    def state_changes(self, instance: str) -> list[StateChange]:
        out: list[StateChange] = []
        old, timed_out = "INIT", False
        for at, text in self._snapshot():
            if (m := _KA_TIMEOUT.match(text)) and m["instance"] == instance:
                timed_out = True
            elif (m := _KA_STATE.match(text)) and m["instance"] == instance:
                new = m["state"]
                kind = "timer" if new == "MASTER" and timed_out else "log"
                cause = "master-down timer expired" if kind == "timer" else text
                out.append(StateChange(at, old, new, kind, cause))
                old, timed_out = new, False
        return out

    def split_brains(self, instance: str) -> list[tuple[float, str]]:
        return [
            (at, m["peer"])
            for at, text in self._snapshot()
            if (m := _KA_SPLIT.match(text)) and m["instance"] == instance
        ]

    def wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text.startswith("Startup complete") for _, text in self._snapshot()):
            if self.proc.poll() is not None:
                raise AssertionError(f"keepalived exited:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"keepalived did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def pids(self) -> dict[str, int]:
        out = {"keepalived": self.proc.pid}
        with contextlib.suppress(OSError, ValueError):
            out["vrrp"] = int((self.dir / "vrrp.pid").read_text())
        return out

    def reload(self, config: str) -> None:
        self.conf_path.write_text(config)
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        return "\n".join(text for _, text in self._snapshot())

    def close(self) -> None:
        # SIGKILL to the VRRP child and the parent, as tests/interop/peers.py does: the lab
        # goes next, and an orderly stop costs keepalived about a second.
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                pid = int((self.dir / "vrrp.pid").read_text())
                if Path(f"/proc/{pid}/stat").read_text().split()[3] == str(self.proc.pid):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def make(daemon: str, node: Node, config: str) -> NodeDaemon:
    if daemon == "pykeepalived":
        return PyDaemon(node, config)
    if daemon == "keepalived":
        return KeepalivedDaemon(node, config)
    raise ValueError(f"unknown daemon {daemon!r}; one of {DAEMONS}")
