"""Real servers on loopback for the checker tests, each in a thread so that both our asyncio
probes and Debian's ``genhash`` (a subprocess) can talk to them.

Every server records exactly the bytes it received, so tests compare request bytes, and is
closed by its context manager.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode


@dataclass
class Recorder:
    requests: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, data: bytes) -> None:
        with self.lock:
            self.requests.append(data)


def _listener(host: str, kind: int = socket.SOCK_STREAM, port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    return sock


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@contextmanager
def http_server(
    response: bytes | Callable[[bytes], bytes],
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
    ragged: bool = False,
    port: int = 0,
) -> Iterator[tuple[int, Recorder]]:
    """Answer every request with ``response`` (raw bytes, or made from the request), then
    close the connection as HTTP/1.0 servers do (``ragged``: TLS without close_notify).
    ``port``: a server started again where a stopped one listened (0: any free port)."""
    recorder = Recorder()
    listener = _listener(host, port=port)
    stop = threading.Event()
    if tls is not None:
        tls.sni_callback = lambda sslobj, name, ctx: recorder.sni.append(name)

    def serve_one(conn: socket.socket) -> None:
        try:
            if tls is not None:
                conn.settimeout(5)
                conn = tls.wrap_socket(conn, server_side=True)
            request = _read_request(conn)
            recorder.add(request)
            conn.sendall(response(request) if callable(response) else response)
            if isinstance(conn, ssl.SSLSocket) and not ragged:
                conn.unwrap().close()
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def loop() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], recorder
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@contextmanager
def silent_tcp_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """Connections complete (the kernel accepts them into the backlog) and nothing is said.
    ``port`` as for ``http_server``."""
    listener = _listener(host, port=port)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on (bound, then released)."""
    sock = _listener(host, kind)
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def scripted_tcp_server(
    script: list[tuple[str, bytes]], host: str = "127.0.0.1"
) -> Iterator[tuple[int, Recorder]]:
    """One conversation: ("send", bytes) writes; ("line", b"") reads one line into the
    recorder; ("close", b"") hangs up. Used for SMTP replies aiosmtpd will not produce."""
    recorder = Recorder()
    listener = _listener(host)

    def run() -> None:
        listener.settimeout(10)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            reader = conn.makefile("rb")
            try:
                for action, data in script:
                    if action == "send":
                        conn.sendall(data)
                    elif action == "line":
                        recorder.add(reader.readline())
                    else:
                        return
                conn.recv(1)  # wait for the client to hang up
            except OSError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], recorder
    finally:
        listener.close()
        thread.join(5)


@contextmanager
def udp_responder(
    answer: Callable[[bytes], list[bytes]], host: str = "127.0.0.1", port: int = 0
) -> Iterator[tuple[int, Recorder]]:
    """Each datagram is recorded; ``answer`` gives the reply datagrams (none: silence).
    ``port`` as for ``http_server``."""
    recorder = Recorder()
    sock = _listener(host, socket.SOCK_DGRAM, port)
    sock.settimeout(0.1)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            recorder.add(data)
            for reply in answer(data):
                sock.sendto(reply, peer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], recorder
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def dns_answer(
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR, stray_first: bool = False
) -> Callable[[bytes], list[bytes]]:
    """A dnspython responder answering with ``rcode``; with ``stray_first`` it first sends a
    reply with another id, which the checker must ignore."""

    def answer(wire: bytes) -> list[bytes]:
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        reply.set_rcode(rcode)
        replies = [reply.to_wire()]
        if stray_first:
            reply.id = (query.id + 1) & 0xFFFF
            replies.insert(0, reply.to_wire())
        return replies

    return answer


def make_certificate(directory: Path, name: str = "www.example.test") -> ssl.SSLContext:
    """A self-signed certificate made with the openssl CLI, as a server context."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
