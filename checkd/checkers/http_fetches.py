"""HTTP_GET and SSL_GET at scale: every fetch under way is a small state machine on one
epoll, no Task.

``checkd.checkers.http.http_check`` is a coroutine run in an asyncio Task per attempt, over
asyncio streams: the Task, its timeout contexts, the transport, the stream reader and writer
(and for TLS asyncio's ``SSLProtocol`` shuttling records through memory BIOs) cost several
times the system calls of a plain GET. Here each attempt goes through the same steps on a bare
non-blocking socket registered in one ``select.epoll`` that the asyncio loop watches
(``add_reader``), as ``checkd.checkers.tcp_connects`` does for TCP_CHECK:

    connecting --writable--> [handshaking --done-->] send the request --all sent-->
    reading --EOF--> judge the url

One attempt is one url, as in keepalived: the caller says which (``checkd.url_walk`` walks
the list from one attempt to the next).

TLS is ``ssl.SSLContext.wrap_socket(do_handshake_on_connect=False)`` on the connected socket,
not ``SSLObject`` over ``MemoryBIO``: OpenSSL then reads and writes the descriptor itself, one
system call per flight and no copy of every record through Python bytes, and the descriptor
in the epoll stays the same (``wrap_socket`` takes over the socket's fd). A memory BIO is what
one needs when something else owns the I/O, as asyncio's transports do; here nothing does.
The handshake is driven by ``SSLWantReadError`` / ``SSLWantWriteError``, each switching what
the epoll waits for. SNI is sent only with ``enable_sni`` (``HttpCheck.sni_for``), as the
generic path sends it, and no certificate is verified (``insecure_tls_context``, one context
for every attempt). The body ends at the peer's close, with or without TLS close_notify
(``suppress_ragged_eofs``): keepalived tolerates a peer that just closes, and so does asyncio's
stream in the generic path.

``connect_timeout`` bounds the connect, the TLS handshake (as a whole), the send and each read
(as in ``http_check``, as in keepalived), through one ``checkd.checkers.deadlines.Deadlines``;
the attempt as a whole is also bounded as the generic path's ``checkd.attempts`` bounds it
(``connect_timeout`` plus its grace). The request is
``HttpCheck.request_for``'s bytes, the response goes through the same ``Response`` parser and
``judge``, so the verdicts and reasons are ``http_check``'s for the same exchange
(tests/checkd/checkers/test_http_fast.py runs both against the same servers, HTTPS included).
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Callable
from typing import Generic, TypeVar

from checkd.checkers.connection import (
    READ_SIZE,
    describe_os_error,
    insecure_tls_context,
    make_socket,
    tls_reason,
)
from checkd.checkers.deadlines import Deadlines
from checkd.checkers.errors import ProbeFailed
from checkd.checkers.http import HttpCheck, Response, UrlSpec, judge
from checkd.checkers.result import CheckResult
from checkd.checkers.tcp_connects import (
    WAIT_CODES,
    failed_reason,
    timeout_reason,
    unexpected_reason,
)

T = TypeVar("T")

_FAILED = select.EPOLLERR | select.EPOLLHUP
# Steps taken per wake-up: few enough that the starts due meanwhile wait a few milliseconds
# at most (as ``checkd.checkers.tcp_connects._MAX_EVENTS``); the rest at the loop's next turn.
_MAX_EVENTS = 64
# The serial of an attempt's whole-attempt deadline; its steps count up from 1.
_WHOLE = 0

#: ``done(tag, result)``: one attempt's outcome.
Done = Callable[[T, CheckResult], None]

CONNECTING, HANDSHAKING, SENDING, READING = 0, 1, 2, 3


class _Fetch(Generic[T]):
    """One attempt: its check, which url it fetches, and that url's socket and response."""

    __slots__ = (
        "bound",
        "check",
        "id",
        "index",
        "request",
        "response",
        "sent",
        "sock",
        "state",
        "step",
        "tag",
    )

    def __init__(self, check: HttpCheck, tag: T, ident: int, bound: float, index: int) -> None:
        self.check = check
        self.tag = tag
        self.id = ident
        self.bound = bound
        self.index = index
        self.step = _WHOLE
        self.state = CONNECTING
        self.sock: socket.socket | None = None  # an ssl.SSLSocket once SSL_GET's is connected
        self.request = b""
        self.sent = 0
        self.response: Response | None = None

    @property
    def url(self) -> UrlSpec:
        return self.check.urls[self.index]


class HttpFetches(Generic[T]):
    """HTTP_GET attempts under way; each one's outcome goes to ``done`` exactly once.

    ``done`` may be called from inside ``start`` (no url, or a connect that fails at once) and
    from the loop's callbacks; never after ``close``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, done: Done[T]) -> None:
        self._loop = loop
        self._done = done
        self._epoll = select.epoll()
        self._by_id: dict[int, _Fetch[T]] = {}
        self._by_fd: dict[int, _Fetch[T]] = {}
        self._deadlines = Deadlines(loop, self._waiting, self._timed_out)
        self._ident = 0
        self._tls: ssl.SSLContext | None = None  # made at the first SSL_GET
        loop.add_reader(self._epoll.fileno(), self._ready)

    def __len__(self) -> int:
        return len(self._by_id)

    def start(self, check: HttpCheck, tag: T, bound: float, url: int = 0) -> None:
        """Begin one attempt for ``tag``, the GET of ``check``'s url at index ``url``,
        abandoned as failed after ``bound`` seconds."""
        if not check.urls:
            self._done(tag, CheckResult.passed(f"no url to check on {check.opts.peer}"))
            return
        self._ident += 1
        fetch = _Fetch(check, tag, self._ident, bound, url)
        self._by_id[fetch.id] = fetch
        self._deadlines.add(bound, fetch.id, _WHOLE)
        self._connect(fetch)

    def close(self) -> None:
        """Abandon every attempt (no ``done`` for them) and release the epoll."""
        self._deadlines.close()
        self._loop.remove_reader(self._epoll.fileno())
        for fetch in self._by_id.values():
            if fetch.sock is not None:
                fetch.sock.close()
        self._by_id.clear()
        self._by_fd.clear()
        self._epoll.close()

    # --- the steps ------------------------------------------------------------------------

    def _connect(self, fetch: _Fetch[T]) -> None:
        opts = fetch.check.opts
        url = fetch.url
        try:
            sock = make_socket(opts, socket.SOCK_STREAM)
        except ProbeFailed as exc:
            self._finish(fetch, CheckResult.failed(f"GET {url.path}: {exc}"))
            return
        except OSError as exc:  # no socket at all (out of descriptors, ...)
            self._finish(fetch, CheckResult.failed(unexpected_reason(exc)))
            return
        fetch.sock = sock
        fetch.request = fetch.check.request_for(url)
        fetch.sent = 0
        fetch.response = Response(keep_body=url.regex is not None)
        try:
            code = sock.connect_ex((opts.connect_ip, opts.connect_port))
            if code in WAIT_CODES or code == 0:
                fd = sock.fileno()
                self._epoll.register(fd, select.EPOLLOUT)
                self._by_fd[fd] = fetch
        except OSError as exc:
            self._finish(fetch, CheckResult.failed(unexpected_reason(exc)))
            return
        if code == 0:
            self._established(fetch)
        elif code in WAIT_CODES:
            fetch.state = CONNECTING
            self._renew(fetch)
        else:
            self._fail(fetch, failed_reason(opts, code))

    def _ready(self) -> None:
        by_fd = self._by_fd
        for fd, events in self._epoll.poll(0, _MAX_EVENTS):
            fetch = by_fd.get(fd)
            if fetch is None:
                continue
            try:
                state = fetch.state
                if state == READING:
                    self._read(fetch)
                elif state == SENDING:
                    self._send(fetch)
                elif state == HANDSHAKING:
                    self._handshake(fetch)
                else:
                    self._connected(fetch, events)
            except OSError as exc:  # an error of this host (epoll_ctl, ...), not of the peer
                self._finish(fetch, CheckResult.failed(unexpected_reason(exc)))

    def _connected(self, fetch: _Fetch[T], events: int) -> None:
        assert fetch.sock is not None
        if events & _FAILED:
            code = fetch.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._fail(fetch, failed_reason(fetch.check.opts, code))
                return
        self._established(fetch)

    def _established(self, fetch: _Fetch[T]) -> None:
        """Connected: HTTP_GET sends its request, SSL_GET starts its handshake."""
        if not fetch.check.tls:
            self._send(fetch)
            return
        sock = fetch.sock
        assert sock is not None
        if self._tls is None:
            self._tls = insecure_tls_context()
        fd = sock.fileno()
        try:
            # same descriptor: the epoll registration and ``_by_fd`` stay valid
            fetch.sock = self._tls.wrap_socket(
                sock,
                server_hostname=fetch.check.sni_for(fetch.url) or None,
                do_handshake_on_connect=False,
            )
        except (OSError, ValueError) as exc:  # SSLError included; ValueError: a bad SNI name
            if self._by_fd.get(fd) is fetch:
                del self._by_fd[fd]
            fetch.sock = None
            sock.close()
            peer = fetch.check.opts.peer
            self._fail(fetch, f"TLS handshake with {peer} failed: {tls_reason(exc)}")
            return
        fetch.state = HANDSHAKING
        self._renew(fetch)  # one timeout for the whole handshake, as the generic path's
        self._handshake(fetch)

    def _handshake(self, fetch: _Fetch[T]) -> None:
        sock = fetch.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._epoll.modify(sock.fileno(), select.EPOLLIN)
            return
        except ssl.SSLWantWriteError:
            self._epoll.modify(sock.fileno(), select.EPOLLOUT)
            return
        except OSError as exc:  # ssl.SSLError included
            peer = fetch.check.opts.peer
            self._fail(fetch, f"TLS handshake with {peer} failed: {tls_reason(exc)}")
            return
        self._send(fetch)

    def _send(self, fetch: _Fetch[T]) -> None:
        sock = fetch.sock
        assert sock is not None
        mask = select.EPOLLOUT
        try:
            fetch.sent += sock.send(fetch.request[fetch.sent :] if fetch.sent else fetch.request)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
            pass
        except ssl.SSLWantReadError:  # TLS wants the peer's records first (renegotiation)
            mask = select.EPOLLIN
        except ssl.SSLError as exc:
            opts = fetch.check.opts
            self._fail(fetch, f"TLS error writing to {opts.peer}: {tls_reason(exc)}")
            return
        except OSError as exc:
            opts = fetch.check.opts
            self._fail(fetch, f"write to {opts.peer} failed: {describe_os_error(exc)}")
            return
        if fetch.sent < len(fetch.request):
            if fetch.state != SENDING:  # one timeout for the whole request, as a drain has
                fetch.state = SENDING
                self._renew(fetch)
            # a plain socket registered for EPOLLOUT at connect (or by the handshake) stays so
            self._epoll.modify(sock.fileno(), mask)
            return
        fetch.state = READING
        self._epoll.modify(sock.fileno(), select.EPOLLIN)
        self._renew(fetch)

    def _read(self, fetch: _Fetch[T]) -> None:
        sock = fetch.sock
        assert sock is not None
        response = fetch.response
        assert response is not None
        got = False
        # read until the socket would block: with TLS, records OpenSSL has already taken in
        # wake no epoll, so none may be left behind
        while not response.header_full:
            try:
                data = sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                if got:  # each read has its own timeout
                    self._renew(fetch)
                return
            except ssl.SSLWantWriteError:  # TLS must write first (key update, renegotiation)
                self._epoll.modify(sock.fileno(), select.EPOLLOUT | select.EPOLLIN)
                return
            except ssl.SSLError as exc:
                opts = fetch.check.opts
                self._fail(fetch, f"TLS error reading from {opts.peer}: {tls_reason(exc)}")
                return
            except OSError as exc:
                opts = fetch.check.opts
                self._fail(fetch, f"read from {opts.peer} failed: {describe_os_error(exc)}")
                return
            if not data:
                break
            got = True
            response.feed(data)
        self._close_socket(fetch)
        self._finish(fetch, judge(fetch.url, response, fetch.check.opts.peer))

    # --- endings --------------------------------------------------------------------------

    def _renew(self, fetch: _Fetch[T]) -> None:
        """A new ``connect_timeout`` for the step just begun (the previous one lapses)."""
        fetch.step += 1
        self._deadlines.add(fetch.check.opts.connect_timeout, fetch.id, fetch.step)

    def _waiting(self, ident: int, serial: int) -> bool:
        fetch = self._by_id.get(ident)
        return fetch is not None and serial in (_WHOLE, fetch.step)

    def _timed_out(self, ident: int, serial: int) -> None:
        fetch = self._by_id[ident]
        if serial == _WHOLE:
            self._finish(fetch, CheckResult.failed(f"no result within {fetch.bound:g} s"))
            return
        opts = fetch.check.opts
        if fetch.state == CONNECTING:
            self._fail(fetch, timeout_reason(opts))
        elif fetch.state == HANDSHAKING:
            self._fail(
                fetch, f"TLS handshake timeout after {opts.connect_timeout} s with {opts.peer}"
            )
        elif fetch.state == SENDING:
            self._fail(fetch, f"write timeout after {opts.connect_timeout} s to {opts.peer}")
        else:
            self._fail(fetch, f"HTTP read timeout after {opts.connect_timeout} s from {opts.peer}")

    def _fail(self, fetch: _Fetch[T], why: str) -> None:
        """A step failed: the url's verdict, worded as ``http_check`` words it."""
        self._finish(fetch, CheckResult.failed(f"GET {fetch.url.path}: {why}"))

    def _close_socket(self, fetch: _Fetch[T]) -> None:
        sock = fetch.sock
        if sock is None:
            return
        fetch.sock = None
        fd = sock.fileno()
        if self._by_fd.get(fd) is fetch:
            del self._by_fd[fd]
        # closing removes the descriptor from the epoll set: no unregister needed
        sock.close()

    def _finish(self, fetch: _Fetch[T], result: CheckResult) -> None:
        self._close_socket(fetch)
        del self._by_id[fetch.id]
        self._done(fetch.tag, result)
