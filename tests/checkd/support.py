"""Helpers for checkd's tests: tiny real scripts, polling with deadlines, a verdict recorder."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from checkd.verdict import Verdict


def write_script(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


@contextmanager
def open_dir() -> Iterator[Path]:
    """A root-owned 0755 directory under /tmp that unprivileged users can traverse."""
    path = Path(tempfile.mkdtemp(prefix="pk-chk-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Recorder:
    """Collects emitted verdicts (the ``emit`` callback of a check)."""

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    def __call__(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    @property
    def last(self) -> Verdict:
        assert self.verdicts, "no verdict emitted yet"
        return self.verdicts[-1]

    def oks(self) -> list[bool]:
        return [v.ok for v in self.verdicts]


class Published:
    """Stands in for the bus publisher: retain/forget calls recorded per topic."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.forgotten: list[str] = []
        self.repeat: dict[str, float] = {}  # topic -> seconds between re-sends

    def retain(self, topic: str, body: dict[str, Any], *, repeat: float) -> None:
        self.events.append((topic, body))
        self.repeat[topic] = repeat

    def forget(self, topic: str) -> None:
        self.forgotten.append(topic)

    def last(self, topic: str) -> dict[str, Any] | None:
        bodies = self.of(topic)
        return bodies[-1] if bodies else None

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [body for t, body in self.events if t == topic]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class FakePublisher:
    """Stands in for the bus publisher of ``PoolRunner`` (retain with ``refresh``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.retained: dict[str, Mapping[str, Any]] = {}
        self.repeated: set[str] = set()  # topics retained with repeat=True

    def retain(
        self,
        topic: str,
        body: Mapping[str, Any],
        *,
        refresh: Callable[[], Mapping[str, Any]] | None = None,
        repeat: bool = False,
    ) -> None:
        self.sent.append((topic, dict(body)))
        self.retained[topic] = body
        if repeat:
            self.repeated.add(topic)
        else:
            self.repeated.discard(topic)

    def forget(self, topic: str) -> None:
        self.retained.pop(topic, None)

    def bodies(self, prefix: str) -> list[dict[str, Any]]:
        return [b for t, b in self.sent if t.startswith(prefix)]


# The port a test server listens on, and how many probes it has answered since it started.
Served = tuple[int, Callable[[], int]]


class Switched:
    """A test server stopped (``off``: its port refuses) and started again on the same port
    (``on``); ``start(port)`` runs one (0: any free port)."""

    def __init__(self, start: Callable[[int], AbstractContextManager[Served]]) -> None:
        self._start = start
        self._stack = ExitStack()
        self.port, self.answered = self._stack.enter_context(start(0))

    def off(self) -> None:
        self._stack.close()

    def on(self) -> None:
        self._stack = ExitStack()
        port, self.answered = self._stack.enter_context(self._start(self.port))
        assert port == self.port

    def count(self) -> int:
        """What the running server answered (``answered`` follows restarts)."""
        return self.answered()
