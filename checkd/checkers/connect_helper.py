"""TCP_CHECK connects in a helper process, so that thousands a second leave checkd's loop free.

Most of a TCP_CHECK's cost is the kernel's, not Python's: on loopback ``socket``, ``connect``
and ``close`` take some 35 µs of the 52 µs a check costs checkd (bench/checks.py), because the
kernel handles both ends of the handshake in the caller's system call. At 10,000 checks a
second that alone is a third of a core on checkd's one event loop, which also takes every
result, keeps the pools and starts the next due checkers; near a full core the loop's queue
grows with every stall and the schedule drifts by tens of milliseconds (docs/checkers.md,
"Scheduling"). With a second CPU, the helper takes the system calls: checkd sends it batches
of (serial, options) and reads back batches of outcomes, a few microseconds a check. When
checkd forks one is ``checkd.helper_policy``'s to say (the runner, ``checkd.lvs_runner``).

The helper (``pykeepalived: checkd connect helper`` in ``ps``) is the in-process
``TcpConnects`` on an asyncio loop of its own, so the verdicts and their reasons are the same
code's (tests/checkd/test_connect_helper.py compares them). It is forked from checkd rather
than started afresh: it shares checkd's pages and dirties a few of its own (a new interpreter
importing checkd cost 31 MB), and it is up within milliseconds. The fork is made safe the way
Python 3.12 makes it for asyncio (the child forgets the parent's running loop and its signal
wake-up descriptor); the child closes every descriptor it inherited but its socket (checkd's
probes under way, bus sockets, FIFOs), never collects checkd's objects (``gc.freeze``: a
finalized socket object of checkd's would close a reused descriptor) and leaves with
``os._exit``. It is a child of checkd, not of
the watchdog: it exits when checkd's end of their socket closes, whatever way checkd went. If
it dies, the attempts it held are handed back (``lost``) for checkd to run in process, and a
new helper starts ``RESPAWN_DELAY`` later.

The wire is one ``SOCK_SEQPACKET`` socket pair (message boundaries kept, no framing), each
message one msgpack array:

* checkd to helper: ``[OPTIONS, key, connect_ip, connect_port, bindto, bind_port, bind_if,
  fwmark, connect_timeout]`` names a checker's ``ConnectOptions`` once; ``[START, serial, key,
  serial, key, …]`` starts attempts;
* helper to checkd: ``[READY]`` once, then ``[DONE, serial, reason, serial, reason, …]``, where
  ``reason`` is nil for a connect that passed and the failure's sentence otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgpack
import setproctitle
import structlog

from checkd.checkers.result import ConnectOptions
from checkd.checkers.tcp_connects import Done, TcpConnects, passed_reason

log = structlog.get_logger(__name__)

T = TypeVar("T")

OPTIONS, START, READY, DONE = 0, 1, 2, 3
# Attempts per START or DONE message: a few kilobytes, far below the socket's buffer, and a
# batch of outcomes costs checkd's loop a millisecond or so at most.
BATCH = 256
# Seconds between a helper's death and the next one (checkd runs the connects meanwhile).
RESPAWN_DELAY = 5.0
# How long a helper gets to exit after its socket closed before it is killed.
EXIT_GRACE = 1.0
# An attempt this long past its connect_timeout without an outcome means the helper is stuck
# (stopped, or spinning): it is killed and its attempts run in checkd. Checked every
# ``HUNG_GRACE / 2`` seconds. Generous: a helper short of CPU on a busy host is slow, not stuck.
HUNG_GRACE = 5.0

#: ``lost(attempts)``: the ``(options, tag)`` of the attempts a dead helper took with it.
Lost = Callable[[list[tuple[ConnectOptions, T]]], None]


class ConnectHelper(Generic[T]):
    """checkd's side: a helper process running TCP_CHECK connects; ``done`` as ``TcpConnects``.

    ``start`` may be called before the helper is ready (``ready``): attempts wait in the
    batch until it says so; while there is no helper at all (between a death and the next
    fork) they are handed straight back (``lost``). ``done`` and ``lost`` are called from the
    loop's callbacks only, or from ``start`` for the latter.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, done: Done[T], lost: Lost[T]) -> None:
        self._loop = loop
        self._done = done
        self._lost = lost
        self._sock: socket.socket | None = None
        self._pid: int | None = None
        self._ready = False
        self._closed = False
        self._respawn: asyncio.TimerHandle | None = None
        # Each checker's options are sent once per helper (a reload's new ones add to it).
        self._keys: dict[ConnectOptions, int] = {}
        # by serial, oldest first: options, tag, when it was started
        self._pending: dict[int, tuple[ConnectOptions, T, float]] = {}
        self._watch: asyncio.TimerHandle | None = None
        self._serial = 0
        self._out: list[bytes] = []  # messages not yet sent
        self._batch: list[int] = []  # the START message being built: serial, key, …
        self._flushing = False
        self.spawn()

    @property
    def ready(self) -> bool:
        """Whether the helper is up: it takes attempts as soon as they are started."""
        return self._ready

    @property
    def pid(self) -> int | None:
        return self._pid

    def __len__(self) -> int:
        return len(self._pending)

    def spawn(self) -> None:
        """Start a helper process (its options and attempts are sent again from scratch)."""
        self._respawn = None
        if self._closed:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            log.error("checkd.connector.failed", error=str(exc), retry_in=RESPAWN_DELAY)
            self._respawn = self._loop.call_later(RESPAWN_DELAY, self.spawn)
            return
        if pid == 0:
            ours.close()
            _helper_process(theirs)  # never returns
        theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._pid = pid
        self._keys.clear()
        self._out.clear()
        self._loop.add_reader(ours.fileno(), self._read)
        self._watch = self._loop.call_later(HUNG_GRACE / 2, self._check_alive)
        log.info("checkd.connector.started", pid=pid)

    def start(self, opts: ConnectOptions, tag: T) -> None:
        """Begin one attempt for ``tag`` in the helper."""
        if self._sock is None:
            self._lost([(opts, tag)])
            return
        key = self._keys.get(opts)
        if key is None:
            key = self._keys[opts] = len(self._keys)
            self._out.append(_pack([OPTIONS, key, *_fields(opts)]))
        self._serial += 1
        serial = self._serial
        self._pending[serial] = (opts, tag, self._loop.time())
        batch = self._batch
        batch.append(serial)
        batch.append(key)
        if len(batch) >= 2 * BATCH:
            self._seal()
        if not self._flushing:
            self._flushing = True
            self._loop.call_soon(self._flush)

    def close(self) -> None:
        """Stop the helper; attempts under way get no ``done``."""
        self._closed = True
        if self._respawn is not None:
            self._respawn.cancel()
            self._respawn = None
        self._pending.clear()
        self._batch.clear()
        self._disconnect()

    # --- sending ----------------------------------------------------------------------------

    def _seal(self) -> None:
        if self._batch:
            self._out.append(_pack([START, *self._batch]))
            self._batch.clear()

    def _flush(self) -> None:
        self._flushing = False
        sock = self._sock
        if sock is None or not self._ready:
            return  # sent when the helper says it is ready
        self._seal()
        sent = 0
        try:
            for message in self._out:
                sock.send(message)
                sent += 1
        except BlockingIOError:  # the helper is behind: the rest when the socket drains
            self._loop.add_writer(sock.fileno(), self._drained)
        except OSError as exc:
            self._died(f"send failed: {exc}")
            return
        del self._out[:sent]

    def _drained(self) -> None:
        if self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())
        self._flush()

    # --- receiving --------------------------------------------------------------------------

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None  # the reader is removed with the socket
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                self._died(f"receive failed: {exc}")
                return
            if not data:
                self._died("closed its socket")
                return
            message = msgpack.unpackb(data)
            if message[0] == DONE:
                self._outcomes(message)
            elif message[0] == READY:
                self._ready = True
                self._flush()

    def _outcomes(self, message: list[Any]) -> None:
        pending, done = self._pending, self._done
        for i in range(1, len(message), 2):
            attempt = pending.pop(message[i], None)
            if attempt is None:
                continue  # sent before a respawn: already handed back
            reason = message[i + 1]
            if reason is None:
                done(attempt[1], True, passed_reason(attempt[0]))
            else:
                done(attempt[1], False, reason)

    def _check_alive(self) -> None:
        """Kill a helper whose oldest attempt is well past its deadline: it has stopped
        answering (its own deadlines would have ended the attempt)."""
        self._watch = self._loop.call_later(HUNG_GRACE / 2, self._check_alive)
        if self._sock is not None:
            self._read()  # outcomes waiting behind a stall of checkd's own loop count first
        oldest = next(iter(self._pending.values()), None)
        if oldest is None or self._pid is None:
            return
        opts, _, started = oldest
        late = self._loop.time() - started - opts.connect_timeout
        if late > HUNG_GRACE:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._died(f"no outcome {late:.1f} s past an attempt's connect_timeout")

    # --- the helper's end -------------------------------------------------------------------

    def _died(self, why: str) -> None:
        rc = self._disconnect()
        lost = [(opts, tag) for opts, tag, _ in self._pending.values()]
        self._pending.clear()
        self._batch.clear()
        log.error(
            "checkd.connector.died", why=why, rc=rc, attempts=len(lost), retry_in=RESPAWN_DELAY
        )
        if not self._closed:
            self._respawn = self._loop.call_later(RESPAWN_DELAY, self.spawn)
        if lost:
            self._lost(lost)

    def _disconnect(self) -> int | None:
        """Close the socket and reap the helper; its exit status."""
        self._ready = False
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            self._loop.remove_writer(sock.fileno())
            sock.close()  # the helper's end reads EOF: it exits
        pid, self._pid = self._pid, None
        if pid is None:
            return None
        deadline = time.monotonic() + EXIT_GRACE
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _fields(opts: ConnectOptions) -> list[Any]:
    return [
        opts.connect_ip,
        opts.connect_port,
        opts.bindto,
        opts.bind_port,
        opts.bind_if,
        opts.fwmark,
        opts.connect_timeout,
    ]


def _pack(message: list[Any]) -> bytes:
    data: bytes = msgpack.packb(message)
    return data


# --- the helper process ---------------------------------------------------------------------


async def serve(sock: socket.socket) -> None:
    """Run connects for checkd until its end of ``sock`` closes."""
    loop = asyncio.get_running_loop()
    options: dict[int, ConnectOptions] = {}
    outcomes: list[Any] = [DONE]
    end: asyncio.Future[None] = loop.create_future()

    def send_outcomes() -> None:
        nonlocal outcomes
        message, outcomes = outcomes, [DONE]
        with contextlib.suppress(ConnectionError):  # checkd went: EOF ends the loop
            sock.sendall(_pack(message))

    def done(serial: int, ok: bool, reason: str) -> None:
        if len(outcomes) == 1:
            loop.call_soon(send_outcomes)
        outcomes.append(serial)
        outcomes.append(None if ok else reason)
        if len(outcomes) > 2 * BATCH:
            send_outcomes()

    connects: TcpConnects[int] = TcpConnects(loop, done)

    def read() -> None:
        while True:
            try:
                data = sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except ConnectionResetError:  # checkd went with outcomes unread
                data = b""
            if not data:
                if not end.done():
                    end.set_result(None)
                return
            message = msgpack.unpackb(data)
            if message[0] == START:
                for i in range(1, len(message), 2):
                    connects.start(options[message[i + 1]], message[i])
            elif message[0] == OPTIONS:
                options[message[1]] = ConnectOptions(*message[2:])

    # Blocking, so that sends wait for checkd rather than drop outcomes; reads do not wait
    # (MSG_DONTWAIT).
    sock.setblocking(True)
    loop.add_reader(sock.fileno(), read)
    sock.send(_pack([READY]))
    try:
        await end
    finally:
        loop.remove_reader(sock.fileno())
        connects.close()


def _helper_process(sock: socket.socket) -> None:
    """The forked child's whole life: serve checkd, then leave without running its exit code."""
    code = 0
    try:
        # checkd's objects are never collected here: a socket object of checkd's finalized
        # in the helper would close whatever descriptor now has its number.
        gc.freeze()
        # Nor are its descriptors kept: a probe's socket under way in checkd at the fork
        # would stay connected to its real server for the helper's whole life (checkd's
        # close no longer the last), and so would checkd's FIFOs and bus sockets.
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        # What Python 3.12 does for asyncio in a forked child: the parent's loop is not ours,
        # and a signal must not be written to the parent loop's wake-up socket.
        asyncio.events._set_running_loop(None)
        signal.set_wakeup_fd(-1)
        # The signals checkd acts on or logs are ignored: the helper has nothing to reload or
        # dump, and a ``pkill -USR1 -f pykeepalived`` must not kill it. Ctrl-C in a terminal
        # reaches the whole group too: checkd decides, and the helper ends when checkd's end
        # of the socket closes. TERM still ends it.
        for sig in signal.valid_signals():
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        setproctitle.setproctitle("pykeepalived: checkd connect helper")
        asyncio.run(serve(sock))
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)
