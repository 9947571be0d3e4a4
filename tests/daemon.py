"""Test helpers for running bus components and whole daemon groups as real processes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from bus import RuntimeDir, Subscriber
from bus.envelope import Event
from bus.logs import LOG_FORMAT_ENV
from ctl.group import group_pids
from tests.lab import wait_until
from watchdog.children import START_ORDER
from watchdog.ondemand import ON_DEMAND
from watchdog.settings import read_settings

REPO = Path(__file__).resolve().parent.parent
# For tests that parse the log lines: the JSON form, asked for explicitly (text is the default).
JSON_LOGS = {LOG_FORMAT_ENV: "json"}


def short_tmpdir(prefix: str = "pk-") -> Path:
    """ipc socket paths are limited to 107 bytes, so keep runtime dirs short."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def python_module(
    module: str,
    *args: str,
    netns: str | None = None,
    env: dict[str, str] | None = None,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", module, *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc: subprocess.Popen[bytes] = subprocess.Popen(argv, cwd=REPO, env=full_env, **popen)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def running_bus(runtime: RuntimeDir) -> Iterator[subprocess.Popen[bytes]]:
    proc = python_module("bus", "--runtime-dir", str(runtime.path))
    try:
        wait_until(
            lambda: runtime.is_locked("bus") and (runtime.path / "sub.sock").exists(),
            10,
            message="the bus to bind its sockets",
        )
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def runtime_dir() -> Iterator[RuntimeDir]:
    path = short_tmpdir()
    try:
        yield RuntimeDir(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


# Events a subscriber delivered in the same batch as the one next_event returned: the next
# call must see them (an "exited" and a "started" often arrive together).
_unread: weakref.WeakKeyDictionary[Subscriber, collections.deque[Event]] = (
    weakref.WeakKeyDictionary()
)


async def next_event(sub: Subscriber, predicate: Callable[[Event], bool], timeout: float) -> Event:
    """The first delivered event matching ``predicate``, or AssertionError after ``timeout``.

    Events before the match are skipped; events after it in the same batch are kept for the
    next call on the same subscriber.
    """
    unread = _unread.setdefault(sub, collections.deque())

    async def scan() -> Event:
        while True:
            while unread:
                event = unread.popleft()
                if predicate(event):
                    return event
            unread.extend(await sub.recv_batch())

    try:
        return await asyncio.wait_for(scan(), timeout)
    except TimeoutError:
        raise AssertionError(f"no matching event within {timeout}s; stats={sub.stats}") from None


async def connected(
    sub: Subscriber, ctx: zmq.asyncio.Context, runtime: RuntimeDir, topic: str
) -> None:
    """Block until ``sub`` provably receives ``topic``: probe with a throw-away publisher."""
    from bus import Publisher

    probe = Publisher(ctx, runtime, "probe")
    probe.start()
    try:
        assert await probe.wait_for_subscriber(topic, 5), f"no subscription to {topic} arrived"
    finally:
        await probe.close()


def raw_publisher(
    ctx: zmq.Context[zmq.Socket[bytes]], runtime: RuntimeDir, wait_topic: bytes
) -> zmq.Socket[bytes]:
    """A bare socket for sending frames our own Publisher would refuse to build.

    It is an XPUB so it can see when the broker hands it a subscription covering
    ``wait_topic``: only then is a message sure to reach the subscriber.
    """
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(runtime.pub_endpoint)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if sock.poll(100):
            msg = sock.recv()
            if msg[:1] == b"\x01" and wait_topic.startswith(msg[1:]):
                return sock
    raise AssertionError(f"no subscription covering {wait_topic!r} reached the raw publisher")


def component_pids(runtime: RuntimeDir) -> dict[str, int]:
    """Component name -> pid, from the process titles (``pykeepalived: NAME --runtime-dir D``)."""
    return group_pids(runtime.path)


# Daemon groups still running: a failing test's report carries the end of their logs
# (tests/conftest.py; daemon_group prints its own), since each log lives in a runtime dir
# that teardown removes.
RUNNING: weakref.WeakSet[DaemonGroup] = weakref.WeakSet()
LOG_TAIL_LINES = 150


class DaemonGroup:
    """``pykeepalived`` (the watchdog and all its children) running inside a lab node."""

    def __init__(
        self, node: Any, config: str, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.node = node
        self.runtime = RuntimeDir(short_tmpdir())
        self.config = self.runtime.path / "keepalived.conf"
        self.config.write_text(config)
        self.log = (self.runtime.path / "daemon.log").open("wb")
        argv = [
            sys.executable,
            "-m",
            "watchdog",
            "-f",
            str(self.config),
            "--runtime-dir",
            str(self.runtime.path),
            *extra,
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.proc = node.popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        RUNNING.add(self)

    def wait_started(
        self, names: tuple[str, ...] | None = None, timeout: float = 15
    ) -> dict[str, int]:
        """Wait for ``names``; by default every component, checkd only when the config file
        gives it work (the watchdog starts it on demand)."""
        if names is None:
            names = self.components()
        wait_until(
            lambda: set(names) <= set(self.pids()), timeout, message=f"components {names} to start"
        )
        return self.pids()

    def components(self) -> tuple[str, ...]:
        """The components the watchdog runs for the config file as it is now (no -P/-C)."""
        needed = read_settings(self.config).needed
        return tuple(n for n in START_ORDER if n not in ON_DEMAND or n in needed)

    def pids(self) -> dict[str, int]:
        return component_pids(self.runtime)

    def log_text(self) -> str:
        self.log.flush()
        return (self.runtime.path / "daemon.log").read_text(errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> tuple[str, str]:
        """A failure report's section: its title and the log's last ``lines`` lines."""
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"daemon log {self.runtime.path} (tail)", tail

    def close(self) -> None:
        RUNNING.discard(self)
        stop(self.proc, timeout=40)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not self.pids(), 10, message="children to exit")
        for pid in self.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.runtime.path, ignore_errors=True)


@contextlib.contextmanager
def daemon_group(
    node: Any, config: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[DaemonGroup]:
    group = DaemonGroup(node, config, *extra, env=env)
    try:
        yield group
    except BaseException:
        # Shown with the failure ("Captured stdout call"): the log goes with the runtime dir.
        title, tail = group.log_tail()
        print(f"--- {title} ---\n{tail}")
        raise
    finally:
        group.close()
