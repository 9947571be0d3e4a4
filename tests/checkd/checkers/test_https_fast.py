"""SSL_GET's fast path (checkd.checkers.http_fetches with TLS on the bare socket) gives the
verdict, reason and pool events of the generic attempt (``http_check`` over asyncio's TLS
streams) for the same exchange, sends the same request bytes and the same SNI: each case runs
both ways against the same HTTPS server, whose self-signed certificate the test makes
(docs/checkers.md, "Scheduling")."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

import core
from checkd.attempts import Armed, AttemptResult, arm
from checkd.checkers import Pinger
from checkd.checkers.connection import PEER_CLOSED
from checkd.checkplan import build_plan
from core.model import Url
from core.reference import keyword_reference
from ctl.cli import main as ctl_main
from tests.checkd.checkers.servers import http_server, make_certificate, silent_tcp_server
from tests.checkd.checkers.test_http_fast import (
    BODY,
    CASES,
    TIMEOUT,
    CountingRunner,
    armed_plan,
    ok_response,
    respond,
    same,
)
from tests.checkd.support import FakePublisher, until
from tests.checkd.test_schedule import FakeActions
from watchdog.cli import main as daemon_main


@pytest.fixture(scope="module")
def server_tls() -> Iterator[ssl.SSLContext]:
    """One self-signed certificate for the module (openssl runs once)."""
    path = Path(tempfile.mkdtemp(prefix="pk-tls-fast-"))
    try:
        yield make_certificate(path)
    finally:
        shutil.rmtree(path)


def ssl_armed(port: int, urls: tuple[Url, ...], **checker: object) -> Armed:
    _, armed = armed_plan(port, urls, "127.0.0.1", "SSL_GET", **checker)
    assert armed.http is not None and armed.http.check.tls
    return armed


@contextmanager
def each_connection(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on loopback running ``serve`` on every connection, each in a thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def guarded(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                serve(conn)
            except (OSError, ssl.SSLError):
                pass  # the checker hung up first

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=guarded, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def read_request(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("ragged", [False, True], ids=["close_notify", "plain close"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_response_gives_the_generic_verdict_reason_and_request(
    server_tls: ssl.SSLContext, case: str, ragged: bool
) -> None:
    urls, ok = CASES[case]
    with http_server(respond, tls=server_tls, ragged=ragged) as (port, rec):
        result = same(ssl_armed(port, urls, http_protocol="1.1", virtualhost="www.example.test"))
    assert result.ok is ok, result.reason
    assert rec.requests[0::2] == rec.requests[1::2]


def test_sni_only_with_enable_sni_and_the_same_name(server_tls: ssl.SSLContext) -> None:
    url = (Url(path="/", virtualhost="www.example.test"),)
    with http_server(respond, tls=server_tls) as (port, rec):
        assert same(ssl_armed(port, url, enable_sni=True)).ok
        assert same(ssl_armed(port, url)).ok
    assert rec.sni == ["www.example.test", "www.example.test", None, None]
    assert rec.requests[0] == rec.requests[1]
    assert rec.requests[0].endswith(b"Host: www.example.test\r\n\r\n")


def test_a_server_that_never_answers_times_out_the_handshake() -> None:
    with silent_tcp_server() as port:
        result = same(ssl_armed(port, (Url(path="/"),)))
    assert result.reason == f"GET /: TLS handshake timeout after {TIMEOUT} s with 127.0.0.1:{port}"


def test_a_tls_server_that_never_answers_the_request_times_out_the_read(
    server_tls: ssl.SSLContext,
) -> None:
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with server_tls.wrap_socket(conn, server_side=True) as tls:
            read_request(tls)
            stop.wait(10)

    try:
        with each_connection(serve) as port:
            result = same(ssl_armed(port, (Url(path="/"),)))
    finally:
        stop.set()
    assert result.reason == f"GET /: HTTP read timeout after {TIMEOUT} s from 127.0.0.1:{port}"


def plain_http(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(ok_response())


def hang_up(conn: socket.socket) -> None:
    conn.recv(4096)  # the client hello, then a close without a word


def reset(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def no_shared_cipher(conn: socket.socket) -> None:
    """A TLS 1.2 server offering only a cipher clients never do: it answers with an alert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("NULL-SHA256:@SECLEVEL=0")
    ctx.wrap_socket(conn, server_side=True)


SERVERS = {  # each with OpenSSL's or the system's reason, the same both ways
    "plain http": (plain_http, "WRONG_VERSION_NUMBER"),
    "hang up": (hang_up, PEER_CLOSED),
    "reset": (reset, "connection reset by peer"),
    "alert": (no_shared_cipher, "SSLV3_ALERT_HANDSHAKE_FAILURE"),
}


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_failed_handshake_gives_the_generic_reason(server: str) -> None:
    serve, why = SERVERS[server]
    with each_connection(serve) as port:
        result = same(ssl_armed(port, (Url(path="/"),)))
    assert not result.ok
    assert result.reason == f"GET /: TLS handshake with 127.0.0.1:{port} failed: {why}"


@pytest.mark.parametrize("ragged", [False, True], ids=["close_notify", "plain close"])
@pytest.mark.parametrize("digest", [None, "0" * 32], ids=["status only", "digest"])
def test_a_close_mid_body_is_judged_on_what_came(
    server_tls: ssl.SSLContext, ragged: bool, digest: str | None
) -> None:
    partial = b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n" + BODY
    with http_server(partial, tls=server_tls, ragged=ragged) as (port, _):
        result = same(ssl_armed(port, (Url(path="/", digest=digest),)))
    assert result.ok is (digest is None), result.reason


def test_ssl_gets_run_on_the_fetcher_not_in_tasks(server_tls: ssl.SSLContext) -> None:
    async def coroutine() -> AttemptResult:
        raise AssertionError("an SSL_GET ran as a coroutine in a Task of its own")

    with http_server(respond, tls=server_tls) as (port, _):
        plan, armed = armed_plan(port, (Url(path="/"),), "127.0.0.1", "SSL_GET")
        armed = replace(armed, attempt=coroutine)
        runner = CountingRunner(FakePublisher(), FakeActions())

        async def scenario() -> None:
            runner.apply(plan, {armed.plan.id: armed})
            task = asyncio.create_task(runner.run())
            try:
                await until(lambda: runner.ran >= 3, 20, "three probes")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await runner.stop()

        asyncio.run(scenario())
    last = runner.last[armed.plan.id]
    assert last.ok and last.reason == f"GET / from 127.0.0.1:{port}: HTTP status 200"


SNI_CONFIG = """
virtual_server 192.0.2.1 443 {{
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 127.0.0.1 {port} {{
        SSL_GET {{
            sni_name sni.example.test
            connect_timeout 2
            url {{
                path /
                virtualhost www.example.test
            }}
        }}
    }}
}}
"""


def test_sni_name_is_implemented_and_sent_without_enable_sni(
    server_tls: ssl.SSLContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keepalived's ``sni_name`` names the SNI and turns it on by itself (``enable_sni`` not
    needed); the request's Host stays the url's virtual host. Neither ``-t`` nor ``check
    --json`` calls it unimplemented."""
    with http_server(respond, tls=server_tls) as (port, rec):
        text = SNI_CONFIG.format(port=port)
        result = core.loads(text, script_env=None)
        assert result.exit_code == 0, result.problems
        assert not [p for p in result.problems if p.severity == "not-implemented"]
        (checker,) = result.config.virtual_servers[0].real_servers[0].checkers
        assert checker.sni_name == "sni.example.test" and not checker.enable_sni
        plan = build_plan(result.config, hostname="lb1")
        (armed,) = arm(result.config, plan, Pinger()).values()
        assert same(armed).ok  # the generic attempt, then the fast one
    assert rec.sni == ["sni.example.test", "sni.example.test"]
    assert rec.requests[0] == rec.requests[1]
    assert rec.requests[0].endswith(b"Host: www.example.test\r\n\r\n")
    assert "sni_name sni.example.test" in core.render(result.config)

    conf = tmp_path / "sni.conf"
    conf.write_text(text)
    assert ctl_main(["check", "--json", str(conf)]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert not [p for p in problems if p["severity"] == "not-implemented"], problems
    assert daemon_main(["-t", "-f", str(conf)]) == 0
    assert "sni_name" not in capsys.readouterr().err
    rows = [r for r in keyword_reference() if r["keyword"] == "sni_name"]
    assert {r["block"] for r in rows} == {"HTTP_GET", "SSL_GET"}
    assert all(r["implemented"] for r in rows)
