"""``pykeepalivedctl genhash``: the MD5 digest of a page, for HTTP_GET/SSL_GET ``digest``.

It fetches through the checker itself (``checkd.checkers.fetch``), so the digest printed is the
one the checker will compute, and equals what keepalived's ``genhash`` prints for the same page.
Options follow keepalived 2.2's genhash. Differences: failures go to stderr with exit status 1
(keepalived prints them on stdout and exits 0), and ``-v`` prints the request, the response
header and the body size rather than hex dumps.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys

from checkd.checkers import (
    CheckerConfigError,
    ConnectOptions,
    HttpCheck,
    ProbeFailed,
    UrlSpec,
    fetch,
)

NO_TIMEOUT = 24 * 3600.0  # keepalived's genhash waits without a limit unless -t is given


def _server(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"server should be an IP, not {text}") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port number '{text}'")
    return int(text)


def _protocol(text: str) -> str:
    proto = {"1.0": "1.0", "1.0c": "1.0C", "1.0C": "1.0C", "1.1": "1.1"}.get(text)
    if proto is None:
        raise argparse.ArgumentTypeError(f"invalid HTTP protocol version '{text}'")
    return proto


def _natural(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"invalid value '{text}'")
    return int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--server", type=_server, required=True, help="server IP address")
    p.add_argument("-p", "--port", type=_port, required=True, help="server port")
    p.add_argument("-u", "--url", required=True, help="the path to fetch, e.g. /index.html")
    p.add_argument("-S", "--use-ssl", action="store_true", help="connect with TLS")
    p.add_argument(
        "-I", "--use-sni", action="store_true", help="send SNI (the -V virtualhost) in TLS"
    )
    p.add_argument("-V", "--use-virtualhost", metavar="VHOST", help="Host header to send")
    p.add_argument("-v", "--verbose", action="store_true", help="show request and header")
    p.add_argument("-m", "--fwmark", type=_natural, help="set this fwmark on the socket")
    p.add_argument(
        "-P", "--protocol", type=_protocol, default="1.0", help="1.0 (default), 1.0c or 1.1"
    )
    p.add_argument("-t", "--timeout", type=_natural, help="seconds (default: none)")


def _check(args: argparse.Namespace) -> tuple[HttpCheck, UrlSpec]:
    opts = ConnectOptions(
        connect_ip=args.server,
        connect_port=args.port,
        fwmark=args.fwmark,
        connect_timeout=float(args.timeout) if args.timeout is not None else NO_TIMEOUT,
    )
    url = UrlSpec(path=args.url)
    check = HttpCheck(
        opts=opts,
        urls=(url,),
        tls=args.use_ssl,
        protocol=args.protocol,
        virtualhost=args.use_virtualhost,
        enable_sni=args.use_sni,
    )
    return check, url


def run(args: argparse.Namespace) -> int:
    try:
        check, url = _check(args)
    except CheckerConfigError as exc:
        print(f"genhash: {exc}", file=sys.stderr)
        return 2
    if args.verbose:
        print(check.request_for(url).decode("latin-1"), end="")
    try:
        response = asyncio.run(fetch(check, url))
    except ProbeFailed as exc:
        print(f"genhash: {exc}", file=sys.stderr)
        return 1
    if response.header is None:
        print("genhash: no data received from remote webserver", file=sys.stderr)
        return 1
    if args.verbose:
        print(response.header.decode("latin-1"), end="")
        print(f"body: {response.received} bytes, HTTP status {response.status}")
    print(response.digest)
    return 0
