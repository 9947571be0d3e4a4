"""HTTP_GET and SSL_GET: fetch one ``url`` and judge its status code, MD5 digest and regex.

asyncio streams plus the standard ``ssl`` module, with the response read as raw bytes rather
than through h11: the digest must equal keepalived's (and ``genhash``'s), and keepalived hashes
the bytes after the first blank line as they arrive, chunk framing included, up to
``Content-Length``. It also takes the status from a fixed-position status line. A conforming
HTTP parser would decode chunked bodies and accept status lines keepalived rejects, so the
verdicts would drift; the few rules below are keepalived's (docs/checkers.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from checkd.checkers.connection import insecure_tls_context, open_stream, read_some, send
from checkd.checkers.errors import CheckerConfigError, ProbeFailed
from checkd.checkers.result import CheckResult, ConnectOptions, hostport
from core.model import Checker, RealServer, Url, VirtualServer

STATUS_MIN, STATUS_MAX = 100, 599
DEFAULT_STATUSES = frozenset(range(200, 300))
HEADER_LIMIT = 4095  # keepalived's header buffer (4096 with its NUL): no end of header in it fails
PROTOCOLS = ("1.0", "1.0C", "1.1")


def parse_status_codes(specs: Iterable[str]) -> frozenset[int]:
    """``status_code 200 301-302`` → the accepted set; none given means 200-299."""
    codes: set[int] = set()
    for spec in specs:
        low, sep, high = spec.partition("-")
        try:
            lo, hi = int(low), int(high if sep else low)
        except ValueError:
            raise CheckerConfigError(f"invalid HTTP status code {spec!r}") from None
        if not (STATUS_MIN <= lo <= hi <= STATUS_MAX):
            raise CheckerConfigError(
                f"invalid HTTP status code {spec!r}: codes are {STATUS_MIN}-{STATUS_MAX}, low first"
            )
        codes.update(range(lo, hi + 1))
    return frozenset(codes) if codes else DEFAULT_STATUSES


def describe_codes(codes: frozenset[int]) -> str:
    """``200-299`` or ``200,301-302``: the set as an operator would have written it."""
    parts: list[str] = []
    run: list[int] = []
    for code in sorted(codes):
        if run and code != run[-1] + 1:
            parts.append(_span(run))
            run = []
        run.append(code)
    if run:
        parts.append(_span(run))
    return ",".join(parts)


def _span(run: Sequence[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def _parse_digest(text: str | None) -> str | None:
    if text is None:
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        raise CheckerConfigError(f"digest {text!r} is not 32 hex digits (an MD5 sum)")
    return text.lower()


@dataclass(frozen=True, slots=True)
class UrlSpec:
    """One ``url`` block, validated."""

    path: str
    digest: str | None = None
    statuses: frozenset[int] = DEFAULT_STATUSES
    virtualhost: str | None = None
    regex: re.Pattern[bytes] | None = None
    regex_no_match: bool = False

    @classmethod
    def from_model(cls, url: Url) -> UrlSpec:
        if not url.path:
            raise CheckerConfigError("url block without a path")
        try:
            regex = re.compile(url.regex.encode()) if url.regex is not None else None
        except re.error as exc:
            raise CheckerConfigError(f"url {url.path}: invalid regex {url.regex!r}: {exc}") from exc
        return cls(
            path=url.path,
            digest=_parse_digest(url.digest),
            statuses=parse_status_codes(url.status_code),
            virtualhost=url.virtualhost,
            regex=regex,
            regex_no_match=url.regex_no_match,
        )


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """An HTTP_GET / SSL_GET checker with everything it inherits resolved."""

    opts: ConnectOptions
    urls: tuple[UrlSpec, ...]
    tls: bool = False
    protocol: str = "1.0"
    virtualhost: str | None = None  # the checker's own
    rs_virtualhost: str | None = None
    vs_virtualhost: str | None = None
    enable_sni: bool = False
    sni_name: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise CheckerConfigError(f"http_protocol {self.protocol!r} is not one of 1.0 1.0C 1.1")

    @classmethod
    def from_model(cls, checker: Checker, rs: RealServer, vs: VirtualServer) -> HttpCheck:
        tls = checker.kind == "SSL_GET"
        return cls(
            opts=ConnectOptions.from_model(checker, rs, vs, default_port=443 if tls else 80),
            urls=tuple(UrlSpec.from_model(url) for url in checker.urls),
            tls=tls,
            protocol=checker.http_protocol or "1.0",
            virtualhost=checker.virtualhost,
            rs_virtualhost=rs.virtualhost,
            vs_virtualhost=vs.virtualhost,
            # keepalived's sni_name turns SNI on by itself
            enable_sni=checker.enable_sni or checker.sni_name is not None,
            sni_name=checker.sni_name,
        )

    def host_for(self, url: UrlSpec) -> str | None:
        """The virtual host for ``url``: url > checker > real server > virtual server."""
        return url.virtualhost or self.virtualhost or self.rs_virtualhost or self.vs_virtualhost

    def sni_for(self, url: UrlSpec) -> str | None:
        """SNI only with ``enable_sni``: sni_name > url > checker > virtual server (keepalived
        skips the real server's virtualhost here)."""
        if not self.enable_sni:
            return None
        return self.sni_name or url.virtualhost or self.virtualhost or self.vs_virtualhost

    def request_for(self, url: UrlSpec) -> bytes:
        return request_bytes(
            url.path,
            self.protocol,
            self.host_for(url),
            self.opts.connect_ip,
            self.opts.connect_port,
        )


def request_bytes(path: str, protocol: str, vhost: str | None, ip: str, port: int) -> bytes:
    """keepalived's request, byte for byte: a virtual host goes in as is, else ``ip:port``
    (``[ip]:port`` for IPv6); 1.0C and 1.1 add ``Connection: close``."""
    host = vhost or hostport(ip, port)
    minor = 1 if protocol == "1.1" else 0
    close_header = "Connection: close\r\n" if protocol in ("1.0C", "1.1") else ""
    return (
        f"GET {path} HTTP/1.{minor}\r\n"
        "User-Agent: KeepAliveClient\r\n"
        f"{close_header}"
        f"Host: {host}\r\n\r\n"
    ).encode("latin-1")


def status_from(header: bytes) -> int:
    """The status code as keepalived reads it: after the first space of the status line,
    exactly three digits followed by a space (so ``HTTP/1.1 200\\r\\n`` reads as 0)."""
    line = header.split(b"\r", 1)[0]
    _, sep, rest = line.partition(b" ")
    if not sep or len(rest) < 4 or rest[3:4] != b" " or not rest[:3].isdigit():
        return 0
    return int(rest[:3])


_CONTENT_LENGTH = re.compile(rb"Content-Length:[ \t\r\n\v\f]*([0-9]*)(.?)", re.DOTALL)


def content_length_from(header: bytes) -> int | None:
    """``Content-Length:`` (spelt exactly so, as keepalived searches for it), when its value
    is digits ending the line; anything else means "read to the end"."""
    m = _CONTENT_LENGTH.search(header)
    if m is None or not m.group(1) or m.group(2) not in (b"", b"\r", b"\n"):
        return None
    return int(m.group(1))


@dataclass(slots=True)
class Response:
    """A response fed as it arrives; the body is hashed on the fly, kept only for a regex."""

    keep_body: bool = False
    buffer: bytearray = field(default_factory=bytearray)
    header: bytes | None = None
    status: int = 0
    content_length: int | None = None
    received: int = 0
    body: bytearray = field(default_factory=bytearray)
    md5: hashlib._Hash = field(default_factory=hashlib.md5)

    @property
    def header_full(self) -> bool:
        """No end of header within keepalived's buffer: it stops reading (as at EOF)."""
        return self.header is None and len(self.buffer) >= HEADER_LIMIT

    def feed(self, data: bytes) -> None:
        if self.header is None:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n", 0, HEADER_LIMIT)
            if end < 0:
                return
            self.header = bytes(self.buffer[: end + 4])
            self.status = status_from(self.header)
            self.content_length = content_length_from(self.header)
            data = bytes(self.buffer[end + 4 :])
            self.buffer.clear()
        self._body(data)

    def _body(self, data: bytes) -> None:
        if self.content_length is not None:
            hashed = data[: max(0, self.content_length - self.received)]
        else:
            hashed = data
        self.md5.update(hashed)
        self.received += len(data)
        if self.keep_body:
            self.body += data

    @property
    def digest(self) -> str:
        return self.md5.hexdigest()


async def fetch(check: HttpCheck, url: UrlSpec) -> Response:
    """GET ``url`` and read until the server closes; ProbeFailed on any transport problem."""
    opts = check.opts
    tls = insecure_tls_context() if check.tls else None
    reader, writer = await open_stream(opts, tls, check.sni_for(url))
    response = Response(keep_body=url.regex is not None)
    try:
        await send(writer, check.request_for(url), opts)
        while not response.header_full:
            data = await read_some(reader, opts, "HTTP read")
            if not data:
                break
            response.feed(data)
    finally:
        # no goodbye: a TLS close waits for the peer's close_notify, and a peer that never
        # answered would hold the attempt past its bound (the fast path just closes, too)
        writer.transport.abort()
    return response


def judge(url: UrlSpec, response: Response, peer: str) -> CheckResult:
    """keepalived's order: a header at all, the status, the digest, then the regex."""
    where = f"GET {url.path} from {peer}"
    if response.header is None:
        return CheckResult.failed(f"{where}: no complete HTTP header received")
    if response.status not in url.statuses:
        shown = response.status or "unreadable"
        return CheckResult.failed(
            f"{where}: HTTP status {shown} not in {describe_codes(url.statuses)}"
        )
    if url.digest is not None and response.digest != url.digest:
        return CheckResult.failed(f"{where}: digest {response.digest} != expected {url.digest}")
    if url.regex is not None:
        matched = url.regex.search(bytes(response.body)) is not None
        if matched == url.regex_no_match:
            verb = "matches" if matched else "does not match"
            return CheckResult.failed(f"{where}: body {verb} regex {url.regex.pattern!r}")
    return CheckResult.passed(f"{where}: HTTP status {response.status}")


async def http_check(check: HttpCheck, url: int = 0) -> CheckResult:
    """One HTTP_GET / SSL_GET attempt: GET the url at index ``url`` and judge it.

    keepalived checks one url per attempt and walks the list from one attempt to the next;
    which url comes next is the pool's to say (``checkd.url_walk``). With no url keepalived
    counts the checker as up, and so do we.
    """
    if not check.urls:
        return CheckResult.passed(f"no url to check on {check.opts.peer}")
    spec = check.urls[url]
    try:
        response = await fetch(check, spec)
    except ProbeFailed as exc:
        return CheckResult.failed(f"GET {spec.path}: {exc}")
    return judge(spec, response, check.opts.peer)
