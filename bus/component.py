"""What every component process shares: arguments, logging, heartbeats, signals, shutdown.

A component is an ``async def body(comp: Component) -> None`` that runs until it is cancelled
(TERM/INT cancel it) and winds down in its ``finally`` blocks. ``run_component`` wraps it: it
parses the common arguments, names the process for ``ps``, connects a publisher, sends
``hb.<name>`` from the event loop (so a hung loop stops the heartbeats even though libzmq would
still answer ZMTP pings), and turns TERM/INT into an orderly stop. An unexpected exception
exits 70 (EX_SOFTWARE), which the watchdog treats as "respawn"; exit codes 1, 2 and 4 mean
"permanent error" as in keepalived.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import sys
import time
import zlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import setproctitle
import structlog
import zmq.asyncio

from bus import logs, messages, topics
from bus.errors import BusError, LogOptionsInvalid
from bus.heap import HeapTrim
from bus.publisher import Publisher
from bus.runtime import RuntimeDir
from bus.signals import CAUGHT_SIGNALS, HANDLED_SIGNALS, signal_name
from bus.subscriber import Subscriber

log = structlog.get_logger(__name__)

HEARTBEAT_INTERVAL = 1.0
SHUTDOWN_GRACE = 4.0
EXIT_SOFTWARE = 70

PARENT_ENV = "PYKEEPALIVED_WATCHDOG_PID"
_PR_SET_PDEATHSIG = 1


Body = Callable[["Component"], Coroutine[Any, Any, None]]


def beat_phase(name: str) -> float:
    """Where in each heartbeat interval component ``name`` beats, spread by name.

    Forked from one image, the components start within milliseconds of each other, and beats
    timed from each start would go out together once a second: a bus whose only traffic is
    heartbeats would then be quiet for most of every second, which netd reads as a silent bus
    (``netd.leases.BUS_SILENT_AFTER``) and holds the leases of a vrrpd that is gone."""
    return (zlib.crc32(name.encode()) % 1000) / 1000 * HEARTBEAT_INTERVAL


def next_beat(now: float, phase: float) -> float:
    """The next beat after one sent at ``now``: the first time after ``now + interval / 2``
    that falls on ``phase`` of the monotonic clock (one clock for every process on a host),
    so every component keeps its place in the second, however late it started."""
    earliest = now + HEARTBEAT_INTERVAL / 2
    return earliest + (phase - earliest) % HEARTBEAT_INTERVAL


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime-dir",
        help="directory holding the bus sockets "
        "(default $PYKEEPALIVED_RUNTIME_DIR or /run/pykeepalived)",
    )
    parser.add_argument(
        "-l", "--log-console", action="store_true", help="log to the console (stderr) too"
    )
    parser.add_argument("-D", "--log-detail", action="store_true", help="debug-level logging")
    parser.add_argument(
        "-S",
        "--log-facility",
        type=_facility,
        help="syslog facility: 0-7 (local0-7), local0-7, user or daemon (default)",
    )
    parser.add_argument("-G", "--no-syslog", action="store_true", help="do not log to syslog")
    parser.add_argument(
        "--log-format",
        choices=logs.LOG_FORMATS,
        help=f"one text line per event (default) or JSON (default from ${logs.LOG_FORMAT_ENV})",
    )


def _facility(text: str) -> str:
    """keepalived's -S: a digit is LOG_LOCAL<digit>; names as syslog spells them."""
    name = f"local{text}" if text.isdigit() else text
    if name not in logs.SYSLOG_FACILITIES:
        raise argparse.ArgumentTypeError(
            f"invalid facility {text!r} (0-7, local0-7, user or daemon)"
        )
    return name


class Component:
    """Handle given to a component body: its bus connections and lifecycle.

    Bodies run until cancelled and must not await ``stopping`` themselves: the harness cancels
    the body as soon as ``stopping`` is set, and a body already winding down would then be
    cancelled a second time in the middle of its clean-up.
    """

    def __init__(self, name: str, runtime: RuntimeDir, args: argparse.Namespace) -> None:
        self.name = name
        self.runtime = runtime
        self.args = args
        self.ctx = zmq.asyncio.Context()
        self.publisher = Publisher(self.ctx, runtime, name)
        self.stopping = asyncio.Event()
        self.started = time.monotonic()
        self._signal_hooks: dict[int, list[Callable[[], None]]] = {}
        self._subscribers: list[Subscriber] = []

    def subscribe(self, *patterns: str) -> Subscriber:
        sub = Subscriber(self.ctx, self.runtime, patterns)
        sub.start()
        self._subscribers.append(sub)
        return sub

    def on_signal(self, signum: int, hook: Callable[[], None]) -> None:
        """Run ``hook`` in the event loop when ``signum`` (one of CAUGHT_SIGNALS) arrives."""
        self._signal_hooks.setdefault(signum, []).append(hook)

    def stop(self) -> None:
        self.stopping.set()

    def _signalled(self, signum: int) -> None:
        hooks = self._signal_hooks.get(signum, ())
        if not hooks:
            # keepalived ignores signals it has no use for; dying would be worse.
            log.warning("component.signal.ignored", signal=signal_name(signum))
            return
        log.info("component.signal", signal=signal_name(signum))
        for hook in hooks:
            hook()

    async def heartbeat_loop(self) -> None:
        topic = topics.heartbeat(self.name)
        # A beat sent before the broker has handed us a subscription is dropped silently, and
        # the next one is an interval away: the first waits (at most that long) for a listener,
        # so a restarted child is heard by the watchdog as soon as it is connected.
        await self.publisher.wait_for_subscriber(topic, HEARTBEAT_INTERVAL)
        loop = asyncio.get_running_loop()
        phase = beat_phase(self.name)
        expected = time.monotonic()
        heap = HeapTrim()
        timer: asyncio.TimerHandle | None = None

        # A timer callback rather than a coroutine that sleeps: the same beats from the same
        # loop, without waking a task each time (a turn of the loop less per beat; on an idle
        # node every turn runs on cold caches, docs/benchmarks.md, "idle node").
        def beat() -> None:
            nonlocal expected, timer
            now = time.monotonic()
            lag = max(0.0, now - expected)
            hb = messages.Heartbeat(self.name, round(now - self.started, 3), lag=round(lag, 6))
            self.publisher.publish(topic, hb.encode())
            heap.beat()
            expected = next_beat(now, phase)
            timer = loop.call_later(expected - now, beat)

        beat()
        try:
            await asyncio.Future()  # until cancelled
        finally:
            if timer is not None:
                timer.cancel()

    async def close(self) -> None:
        for sub in self._subscribers:
            sub.close()
        await self.publisher.close()
        self.ctx.term()


def run_component(
    name: str,
    body: Body,
    argv: Sequence[str] | None = None,
    *,
    description: str = "",
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Entry point of ``python -m <component>``; returns the process exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {name}", description=description)
    add_common_arguments(parser)
    if add_arguments:
        add_arguments(parser)
    return start_component(name, body, parser.parse_args(argv))


def start_component(
    name: str, body: Body, args: argparse.Namespace, *, grace: float = SHUTDOWN_GRACE
) -> int:
    """Run ``body`` as component ``name`` with already-parsed common arguments."""
    follow_parent()
    try:
        forwarder = logs.configure(name, logs.LogOptions.from_args(args))
    except LogOptionsInvalid as exc:
        print(f"pykeepalived {name}: {exc}", file=sys.stderr)
        return 1
    runtime = RuntimeDir.at(args.runtime_dir)
    setproctitle.setproctitle(f"pykeepalived: {name} --runtime-dir {runtime.path}")
    try:
        return asyncio.run(_serve(name, body, runtime, args, forwarder, grace))
    except BusError as exc:
        log.error(f"{name}.fatal", error=str(exc))
        return 1
    except KeyboardInterrupt:
        return 0


async def _serve(
    name: str,
    body: Body,
    runtime: RuntimeDir,
    args: argparse.Namespace,
    forwarder: logs.BusForwarder,
    grace: float,
) -> int:
    comp = Component(name, runtime, args)
    loop = asyncio.get_running_loop()
    for stop_sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_sig, comp.stop)
    for hook_sig in CAUGHT_SIGNALS:
        loop.add_signal_handler(hook_sig, comp._signalled, hook_sig)
    # A forked child (watchdog.spawn) held these back until now; a signal sent meanwhile is
    # delivered here, to the handlers above. Started any other way, nothing was blocked.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
    comp.publisher.start()
    forwarder.attach(comp.publisher.publish)
    log.info(f"{name}.started", process_id=os.getpid(), runtime_dir=str(runtime.path))
    hb = asyncio.create_task(comp.heartbeat_loop(), name="heartbeat")
    main = asyncio.create_task(body(comp), name=f"{name}.main")
    stop_wait = asyncio.create_task(comp.stopping.wait())
    code = 0
    try:
        await asyncio.wait({main, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not main.done():
            # Stopping is cancellation: bodies clean up in ``finally`` (send the last adverts,
            # withdraw addresses, stop children), bounded by ``grace``.
            main.cancel()
            done, _ = await asyncio.wait({main}, timeout=grace)
            if not done:
                log.warning(f"{name}.shutdown.timeout", grace=grace)
        code = _outcome(name, main) if main.done() else 0
    finally:
        log.info(f"{name}.stopped", exit_code=code)
        forwarder.attach(None)
        for task in (hb, stop_wait, main):
            task.cancel()
        await asyncio.gather(hb, stop_wait, main, return_exceptions=True)
        await comp.close()
    return code


def _outcome(name: str, main: asyncio.Task[None]) -> int:
    if main.cancelled():
        return 0
    exc = main.exception()
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        return int(exc.code or 0)
    if isinstance(exc, BusError):
        # Misconfiguration (a locked or unusable runtime dir): restarting will not help.
        log.error(f"{name}.fatal", error=str(exc))
        return 1
    log.error(f"{name}.crashed", exc_info=exc)
    return EXIT_SOFTWARE


def follow_parent() -> None:
    """When started by the watchdog, get SIGTERM as soon as it dies, even by kill -9.

    The parent's pid is checked after arming the signal: if the watchdog died before that,
    the death signal will never come, so exit now instead of living on as an orphan.
    """
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(parent):
        sys.exit(0)


def fatal(message: str, **fields: Any) -> None:
    """Log and exit with keepalived's FATAL code (permanent: the watchdog will not respawn)."""
    log.error(message, **fields)
    sys.exit(1)
