"""HTTP_GET / SSL_GET against real servers on loopback, and against Debian's genhash: the
request bytes and the digest must be keepalived's."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.checkers import (
    CheckerConfigError,
    ConnectOptions,
    HttpCheck,
    UrlSpec,
    http_check,
    parse_status_codes,
    request_bytes,
)
from core.model import Checker, RealServer, Url, VirtualServer
from ctl.cli import main
from tests.checkd.checkers.servers import (
    closed_port,
    http_server,
    make_certificate,
    scripted_tcp_server,
    silent_tcp_server,
)
from watchdog.cli import main as daemon_main

GENHASH = shutil.which("genhash")
needs_genhash = pytest.mark.skipif(GENHASH is None, reason="Debian's keepalived genhash missing")

BODY = b"<html>pool member ok</html>\n"


def ok_response(body: bytes = BODY, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.0 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def check_for(port: int, *urls: UrlSpec, host: str = "127.0.0.1", **kw: Any) -> HttpCheck:
    opts = ConnectOptions(host, port, connect_timeout=2.0)
    return HttpCheck(opts=opts, urls=urls or (UrlSpec("/"),), **kw)


def run(check: HttpCheck) -> tuple[bool, str]:
    result = asyncio.run(http_check(check))
    return result.ok, result.reason


def genhash(*args: str) -> subprocess.CompletedProcess[str]:
    assert GENHASH is not None
    return subprocess.run([GENHASH, *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def certdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pk-tls-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


# -- request bytes -------------------------------------------------------------------------


@needs_genhash
@pytest.mark.parametrize(
    ("protocol", "genhash_p"), [("1.0", "1.0"), ("1.0C", "1.0c"), ("1.1", "1.1")]
)
@pytest.mark.parametrize("vhost", [None, "www.example.test"])
def test_request_bytes_equal_genhash(protocol: str, genhash_p: str, vhost: str | None) -> None:
    with http_server(ok_response()) as (port, rec):
        args = ["-s", "127.0.0.1", "-p", str(port), "-u", "/health?x=1", "-P", genhash_p]
        if vhost:
            args += ["-V", vhost]
        assert genhash(*args).returncode == 0
        check = check_for(port, UrlSpec("/health?x=1"), protocol=protocol, virtualhost=vhost)
        assert run(check)[0]
    theirs, ours = rec.requests
    assert ours == theirs
    assert ours == check.request_for(check.urls[0])


@needs_genhash
def test_request_bytes_ipv6_equal_genhash() -> None:
    with http_server(ok_response(), host="::1") as (port, rec):
        assert genhash("-s", "::1", "-p", str(port), "-u", "/").returncode == 0
        assert run(check_for(port, host="::1"))[0]
    theirs, ours = rec.requests
    assert (
        ours
        == theirs
        == f"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:{port}\r\n\r\n".encode()
    )


def test_request_template() -> None:
    assert request_bytes("/a", "1.1", None, "198.51.100.2", 8080) == (
        b"GET /a HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
        b"Host: 198.51.100.2:8080\r\n\r\n"
    )


def test_virtualhost_precedence_url_checker_rs_vs() -> None:
    url = Url(path="/", virtualhost="url.test")
    checker = Checker(kind="HTTP_GET", virtualhost="checker.test", urls=(url, Url(path="/b")))
    rs = RealServer(ip="198.51.100.2", port=80, virtualhost="rs.test")
    vs = VirtualServer(name="192.0.2.1 80", virtualhost="vs.test")
    check = HttpCheck.from_model(checker, rs, vs)
    assert [check.host_for(u) for u in check.urls] == ["url.test", "checker.test"]
    bare = HttpCheck.from_model(Checker(kind="HTTP_GET", urls=(Url(path="/"),)), rs, vs)
    assert bare.host_for(bare.urls[0]) == "rs.test"
    rs_bare = RealServer(ip="198.51.100.2", port=80)
    only_vs = HttpCheck.from_model(Checker(kind="HTTP_GET", urls=(Url(path="/"),)), rs_bare, vs)
    assert only_vs.host_for(only_vs.urls[0]) == "vs.test"
    # SNI skips the real server's virtualhost, as keepalived does
    sni = HttpCheck.from_model(
        Checker(kind="SSL_GET", enable_sni=True, urls=(Url(path="/"),)), rs, vs
    )
    assert sni.sni_for(sni.urls[0]) == "vs.test"
    assert sni.tls and sni.opts.connect_port == 80


# -- verdicts ------------------------------------------------------------------------------


def test_pass_status_digest_and_regex() -> None:
    digest = hashlib.md5(BODY).hexdigest()
    url = UrlSpec("/", digest=digest, regex=re.compile(rb"pool member \w+"))
    with http_server(ok_response()) as (port, _):
        ok, reason = run(check_for(port, url))
    assert ok, reason
    assert "HTTP status 200" in reason


def test_status_outside_default_range_fails() -> None:
    with http_server(ok_response(status="503 Service Unavailable")) as (port, _):
        ok, reason = run(check_for(port))
    assert not ok
    assert reason == f"GET / from 127.0.0.1:{port}: HTTP status 503 not in 200-299"


def test_status_code_lists_and_ranges() -> None:
    codes = parse_status_codes(["503", "301-302"])
    assert codes == {301, 302, 503}
    with http_server(ok_response(status="503 Service Unavailable")) as (port, _):
        assert run(check_for(port, UrlSpec("/", statuses=codes)))[0]
    with http_server(ok_response(status="200 OK")) as (port, _):
        ok, reason = run(check_for(port, UrlSpec("/", statuses=codes)))
    assert not ok and "HTTP status 200 not in 301-302,503" in reason
    for bad in ("99", "600", "300-200", "abc"):
        with pytest.raises(CheckerConfigError):
            parse_status_codes([bad])


def test_status_line_without_reason_is_unreadable_as_in_keepalived() -> None:
    with http_server(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok") as (port, _):
        ok, reason = run(check_for(port))
    assert not ok and "HTTP status unreadable not in 200-299" in reason


def test_digest_mismatch_names_both() -> None:
    want = "0" * 32
    with http_server(ok_response()) as (port, _):
        ok, reason = run(check_for(port, UrlSpec("/", digest=want)))
    assert not ok
    assert reason.endswith(f"digest {hashlib.md5(BODY).hexdigest()} != expected {want}")


def test_regex_no_match_inverts() -> None:
    url = UrlSpec("/", regex=re.compile(rb"error"), regex_no_match=True)
    with http_server(ok_response()) as (port, _):
        assert run(check_for(port, url))[0]
    with http_server(ok_response(b"internal error")) as (port, _):
        ok, reason = run(check_for(port, url))
    assert not ok and "body matches regex b'error'" in reason
    with http_server(ok_response(b"fine")) as (port, _):
        ok, reason = run(check_for(port, UrlSpec("/", regex=re.compile(rb"error"))))
    assert not ok and "does not match" in reason


def test_one_attempt_is_one_url() -> None:
    """keepalived GETs one url per attempt; the walk from url to url is the pool's
    (checkd.url_walk, tests/checkd/test_url_walk.py)."""

    def respond(request: bytes) -> bytes:
        return ok_response(status="404 Not Found" if b"/missing" in request else "200 OK")

    with http_server(respond) as (port, rec):
        check = check_for(port, UrlSpec("/"), UrlSpec("/missing"))
        first = asyncio.run(http_check(check, 0))
        second = asyncio.run(http_check(check, 1))
    assert first.ok and first.reason == f"GET / from 127.0.0.1:{port}: HTTP status 200"
    assert not second.ok and second.reason.startswith("GET /missing") and "404" in second.reason
    assert [r.split(b" ")[1] for r in rec.requests] == [b"/", b"/missing"]


def test_server_that_never_answers_times_out() -> None:
    with silent_tcp_server() as port:
        check = HttpCheck(ConnectOptions("127.0.0.1", port, connect_timeout=0.3), (UrlSpec("/"),))
        ok, reason = run(check)
    assert not ok
    assert reason == f"GET /: HTTP read timeout after 0.3 s from 127.0.0.1:{port}"


def test_connection_refused() -> None:
    port = closed_port()
    ok, reason = run(check_for(port))
    assert not ok
    assert reason == f"GET /: connect to 127.0.0.1:{port} failed: connection refused"


def test_no_header_before_close_fails() -> None:
    with http_server(b"garbage without a blank line") as (port, _):
        ok, reason = run(check_for(port))
    assert not ok and reason.endswith("no complete HTTP header received")


def test_empty_body_is_not_a_failure() -> None:
    with http_server(ok_response(b"")) as (port, _):
        assert run(check_for(port))[0]


# -- digests against genhash ---------------------------------------------------------------

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)
SHORT_LENGTH = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello and trailing bytes"
BIG = ok_response(bytes(range(256)) * 200)


@needs_genhash
@pytest.mark.parametrize(
    "response",
    [ok_response(), CHUNKED, SHORT_LENGTH, BIG],
    ids=["plain", "chunked", "short-length", "big"],
)
def test_genhash_digest_equal(response: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    with http_server(response) as (port, _):
        theirs = genhash("-s", "127.0.0.1", "-p", str(port), "-u", "/").stdout.strip()
        code = main(["genhash", "-s", "127.0.0.1", "-p", str(port), "-u", "/", "-t", "5"])
    assert code == 0
    assert len(theirs) == 32
    assert capsys.readouterr().out.strip() == theirs


@needs_genhash
def test_keepalived_dash_t_is_genhash_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """`pykeepalived -T ...` is keepalived's genhash mode: same digest as Debian's genhash."""
    with http_server(ok_response()) as (port, _):
        theirs = genhash("-s", "127.0.0.1", "-p", str(port), "-u", "/").stdout.strip()
        code = daemon_main(["-T", "-s", "127.0.0.1", "-p", str(port), "-u", "/", "-t", "5"])
    assert code == 0
    assert capsys.readouterr().out.strip() == theirs == hashlib.md5(BODY).hexdigest()


# -- TLS -----------------------------------------------------------------------------------


def test_ssl_get_passes_without_verifying_and_sends_sni(certdir: Path) -> None:
    ctx = make_certificate(certdir)
    with http_server(ok_response(), tls=ctx) as (port, rec):
        check = check_for(
            port, UrlSpec("/", virtualhost="www.example.test"), tls=True, enable_sni=True
        )
        ok, reason = run(check)
        assert ok, reason
        no_sni = check_for(port, UrlSpec("/"), tls=True)
        assert run(no_sni)[0]
    assert rec.sni == ["www.example.test", None]
    assert rec.requests[0].endswith(b"Host: www.example.test\r\n\r\n")


def test_ssl_get_against_plain_server_fails() -> None:
    with scripted_tcp_server([("send", ok_response()), ("close", b"")]) as (port, _):
        ok, reason = run(check_for(port, tls=True))
    assert not ok and f"TLS handshake with 127.0.0.1:{port} failed" in reason


@needs_genhash
def test_genhash_ssl_digest_equal(certdir: Path) -> None:
    ctx = make_certificate(certdir)
    with http_server(ok_response(), tls=ctx) as (port, rec):
        theirs = genhash("-S", "-s", "127.0.0.1", "-p", str(port), "-u", "/").stdout.strip()
        code = main(["genhash", "-S", "-s", "127.0.0.1", "-p", str(port), "-u", "/", "-t", "5"])
    assert code == 0
    assert theirs == hashlib.md5(BODY).hexdigest()
    assert rec.requests[0] == rec.requests[1]


def test_tls_close_without_close_notify_ends_the_body(certdir: Path) -> None:
    ctx = make_certificate(certdir)
    digest = hashlib.md5(BODY).hexdigest()
    with http_server(ok_response(), tls=ctx, ragged=True) as (port, _):
        ok, reason = run(check_for(port, UrlSpec("/", digest=digest), tls=True))
    assert ok, reason


@needs_genhash
def test_genhash_sni_and_virtualhost_equal(certdir: Path) -> None:
    ctx = make_certificate(certdir)
    with http_server(ok_response(), tls=ctx) as (port, rec):
        args = ["-S", "-I", "-V", "www.example.test", "-s", "127.0.0.1", "-p", str(port), "-u", "/"]
        theirs = genhash(*args).stdout.strip()
        assert main(["genhash", *args, "-t", "5"]) == 0
    assert theirs == hashlib.md5(BODY).hexdigest()
    assert rec.sni == ["www.example.test", "www.example.test"]
    assert rec.requests[0] == rec.requests[1]


@needs_genhash
def test_header_beyond_keepalived_buffer_is_no_data_as_in_genhash() -> None:
    huge = b"HTTP/1.0 200 OK\r\nX-Filler: " + b"a" * 5000 + b"\r\n\r\nbody"
    with http_server(huge) as (port, _):
        theirs = genhash("-s", "127.0.0.1", "-p", str(port), "-u", "/")
        ok, reason = run(check_for(port))
        code = main(["genhash", "-s", "127.0.0.1", "-p", str(port), "-u", "/", "-t", "5"])
    assert "no data received" in theirs.stderr
    assert not ok and reason.endswith("no complete HTTP header received")
    assert code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "www.example.test", "-p", "80", "-u", "/"], "server should be an IP"),
        (["-s", "127.0.0.1", "-p", "70000", "-u", "/"], "invalid port number '70000'"),
        (["-s", "127.0.0.1", "-p", "80", "-u", "/", "-P", "2"], "invalid HTTP protocol"),
        (["-s", "127.0.0.1", "-p", "80"], "-u/--url"),
    ],
)
def test_genhash_rejects_bad_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["genhash", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_genhash_refused_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    assert main(["genhash", "-s", "127.0.0.1", "-p", str(port), "-u", "/", "-t", "2"]) == 1
    err = capsys.readouterr().err
    assert err == f"genhash: connect to 127.0.0.1:{port} failed: connection refused\n"
