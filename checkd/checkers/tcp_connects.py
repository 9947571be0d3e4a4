"""TCP_CHECK at scale: many non-blocking connects on one epoll, no coroutine per attempt.

``checkd.checkers.tcp.tcp_check`` is one coroutine per attempt, run in its own asyncio Task by
the scheduler: at thousands of checks a second the Task, the timeout context and the
selector's per-socket bookkeeping cost more than the connect itself. Here every attempt under
way is one socket registered in one ``select.epoll``, whose descriptor the asyncio loop watches
(``add_reader``); one loop timer covers every attempt's deadline. Standard library only: this is
the event loop's own mechanism, minus the per-socket layers.

The verdict is the same as ``tcp_check``'s for the same outcome (tests/checkd/test_tcp_fast.py
runs both against the same listening and closed sockets): the socket is made by the same
``make_socket`` (fwmark, device, source bind), ``connect`` succeeding at once or the socket
becoming writable with no pending error (SO_ERROR, as asyncio's ``sock_connect`` reads it) is a
pass, and the reasons are the same sentences. The connection is closed at once with an
ordinary close, as keepalived's ``tcp_check_thread`` does.

Deadlines: one ``checkd.checkers.deadlines.Deadlines`` (a FIFO per ``connect_timeout``, one
loop timer) keyed by descriptor and serial, so a finished attempt's socket is freed at once,
not kept until its deadline.
"""

from __future__ import annotations

import asyncio
import errno
import select
import socket
from collections.abc import Callable
from typing import Generic, TypeVar

from checkd.checkers.connection import describe_os_error, make_socket
from checkd.checkers.deadlines import Deadlines
from checkd.checkers.errors import ProbeFailed
from checkd.checkers.result import ConnectOptions

T = TypeVar("T")

# What asyncio's sock_connect waits on instead of failing (BlockingIOError, InterruptedError).
WAIT_CODES = frozenset((errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, errno.EINTR))
_FAILED = select.EPOLLERR | select.EPOLLHUP
# Outcomes taken per wake-up. The loop runs the due timers (the runner's ``_tick``, which
# starts the due checkers) after each round of ready descriptors, so a wake-up of 1,024
# outcomes (40-60 ms after a burst) held every start due meanwhile that long; 128 keep it to a
# few milliseconds, the rest are taken at the next turn of the loop (docs/benchmarks.md).
_MAX_EVENTS = 128

#: ``done(tag, ok, reason)``: one attempt's outcome.
Done = Callable[[T, bool, str], None]


class _Attempt(Generic[T]):
    __slots__ = ("opts", "serial", "sock", "tag")

    def __init__(self, sock: socket.socket, opts: ConnectOptions, tag: T, serial: int):
        self.sock = sock
        self.opts = opts
        self.tag = tag
        self.serial = serial


def passed_reason(opts: ConnectOptions) -> str:
    return f"connected to {opts.peer}"


def failed_reason(opts: ConnectOptions, code: int) -> str:
    return f"connect to {opts.peer} failed: {describe_os_error(OSError(code, ''))}"


def unexpected_reason(exc: OSError) -> str:
    """An error of the host rather than of the peer, worded as the generic path's bound
    (``checkd.attempts``) words it."""
    return f"probe failed: {exc}"


def timeout_reason(opts: ConnectOptions) -> str:
    return f"connect timeout after {opts.connect_timeout} s to {opts.peer}"


class TcpConnects(Generic[T]):
    """Connect attempts under way; each one's outcome goes to ``done`` exactly once.

    ``done`` may be called from inside ``start`` (a connect that succeeds or fails at once)
    and from the loop's callbacks; never after ``close``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, done: Done[T]) -> None:
        self._loop = loop
        self._done = done
        self._epoll = select.epoll()
        self._pending: dict[int, _Attempt[T]] = {}
        self._deadlines = Deadlines(loop, self._waiting, self._timed_out)
        self._serial = 0
        loop.add_reader(self._epoll.fileno(), self._ready)

    def __len__(self) -> int:
        return len(self._pending)

    def start(self, opts: ConnectOptions, tag: T) -> None:
        """Begin one attempt for ``tag``."""
        try:
            sock = make_socket(opts, socket.SOCK_STREAM)
        except ProbeFailed as exc:
            self._done(tag, False, str(exc))
            return
        except OSError as exc:  # no socket at all (out of descriptors, ...)
            self._done(tag, False, unexpected_reason(exc))
            return
        try:
            code = sock.connect_ex((opts.connect_ip, opts.connect_port))
            if code in WAIT_CODES:
                self._epoll.register(sock.fileno(), select.EPOLLOUT)
        except OSError as exc:
            sock.close()
            self._done(tag, False, unexpected_reason(exc))
            return
        if code not in WAIT_CODES:
            sock.close()
            if code == 0:
                self._done(tag, True, passed_reason(opts))
            else:
                self._done(tag, False, failed_reason(opts, code))
            return
        fd = sock.fileno()
        self._serial += 1
        self._pending[fd] = _Attempt(sock, opts, tag, self._serial)
        self._deadlines.add(opts.connect_timeout, fd, self._serial)

    def close(self) -> None:
        """Abandon every attempt (no ``done`` for them) and release the epoll."""
        self._deadlines.close()
        self._loop.remove_reader(self._epoll.fileno())
        for attempt in self._pending.values():
            attempt.sock.close()
        self._pending.clear()
        self._epoll.close()

    def _ready(self) -> None:
        pending = self._pending
        for fd, events in self._epoll.poll(0, _MAX_EVENTS):
            attempt = pending.pop(fd, None)
            if attempt is None:
                continue
            sock = attempt.sock
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if events & _FAILED else 0
            # closing removes the descriptor from the epoll set: no unregister needed
            sock.close()
            if code == 0:
                self._done(attempt.tag, True, passed_reason(attempt.opts))
            else:
                self._done(attempt.tag, False, failed_reason(attempt.opts, code))

    def _waiting(self, fd: int, serial: int) -> bool:
        attempt = self._pending.get(fd)
        return attempt is not None and attempt.serial == serial

    def _timed_out(self, fd: int, serial: int) -> None:
        attempt = self._pending.pop(fd)
        attempt.sock.close()
        self._done(attempt.tag, False, timeout_reason(attempt.opts))
