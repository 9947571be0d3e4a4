"""TCP, SMTP, DNS, UDP and FILE checks against real servers on loopback and real files."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from aiosmtpd.controller import Controller

from checkd.checkers import (
    CheckerConfigError,
    ConnectOptions,
    Pinger,
    ReplyRule,
    UdpCheck,
    build_query,
    dns_check,
    file_check,
    make_probe,
    parse_hex,
    smtp_check,
    tcp_check,
    udp_check,
)
from core.model import Checker, RealServer, TrackFile, VirtualServer
from tests.checkd.checkers.servers import (
    closed_port,
    dns_answer,
    scripted_tcp_server,
    silent_tcp_server,
    udp_responder,
)


def opts(port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> ConnectOptions:
    return ConnectOptions(host, port, connect_timeout=timeout)


# -- TCP -----------------------------------------------------------------------------------


def test_tcp_connect_passes_and_refused_fails() -> None:
    with silent_tcp_server() as port:
        result = asyncio.run(tcp_check(opts(port)))
    assert result.ok and result.reason == f"connected to 127.0.0.1:{port}"
    port = closed_port()
    result = asyncio.run(tcp_check(opts(port)))
    assert not result.ok
    assert result.reason == f"connect to 127.0.0.1:{port} failed: connection refused"


def test_tcp_bind_options_are_applied() -> None:
    with silent_tcp_server() as port:
        bound = ConnectOptions(
            "127.0.0.1", port, bindto="127.0.0.2", bind_port=0, connect_timeout=2
        )
        assert asyncio.run(tcp_check(bound)).ok
        bad = ConnectOptions("127.0.0.1", port, bind_if="pk-no-such-if", connect_timeout=2)
        result = asyncio.run(tcp_check(bad))
    assert not result.ok and result.reason == "cannot set device pk-no-such-if: no such device"


# -- SMTP ----------------------------------------------------------------------------------


class _Handler:
    """aiosmtpd's defaults answer HELO and QUIT; the check never sends mail."""


def test_smtp_against_aiosmtpd_passes() -> None:
    port = closed_port()
    controller = Controller(_Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = asyncio.run(smtp_check(opts(port), "checker.example.test"))
    finally:
        controller.stop()
    assert result.ok, result.reason


def test_smtp_sends_keepalived_bytes() -> None:
    script = [
        ("send", b"220 mail.example.test ESMTP\r\n"),
        ("line", b""),
        ("send", b"250 mail.example.test\r\n"),
        ("line", b""),
        ("send", b"221 bye\r\n"),
    ]
    with scripted_tcp_server(script) as (port, rec):
        result = asyncio.run(smtp_check(opts(port)))
    assert result.ok, result.reason
    assert rec.requests == [b"HELO smtpchecker.keepalived.org\r\n", b"QUIT\r\n"]


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ([("send", b"554 go away\r\n")], "bad greeting from {peer}: '554 go away' (want 220)"),
        (
            [("send", b"220-first line\r\n220 second\r\n")],
            "bad greeting from {peer}: '220-first line' (want 220)",
        ),
        (
            [("send", b"220 hi\r\n"), ("line", b""), ("send", b"501 no\r\n")],
            "bad HELO reply from {peer}: '501 no' (want 250)",
        ),
        (
            [
                ("send", b"220 hi\r\n"),
                ("line", b""),
                ("send", b"250 ok\r\n"),
                ("line", b""),
                ("close", b""),
            ],
            "{peer} closed the connection before its QUIT reply",
        ),
        ([("close", b"")], "{peer} closed the connection before its greeting"),
    ],
    ids=["greeting-554", "multiline-greeting", "helo-501", "no-quit-reply", "hangup"],
)
def test_smtp_failures(script: list[tuple[str, bytes]], reason: str) -> None:
    with scripted_tcp_server(script) as (port, _):
        result = asyncio.run(smtp_check(opts(port)))
    assert not result.ok
    assert result.reason == reason.format(peer=f"127.0.0.1:{port}")


def test_smtp_silent_server_times_out() -> None:
    with silent_tcp_server() as port:
        result = asyncio.run(smtp_check(opts(port, 0.3)))
    assert result.reason == f"greeting read timeout after 0.3 s from 127.0.0.1:{port}"


# -- DNS -----------------------------------------------------------------------------------


def test_dns_query_bytes_are_keepalived_form() -> None:
    # header: id, flags RD only, QDCOUNT 1; then QNAME, QTYPE, QCLASS IN; no EDNS
    assert build_query("", "SOA", 0x1234) == bytes.fromhex(
        "123401000001000000000000"
    ) + b"\x00" + struct.pack("!HH", 6, 1)
    assert build_query(".", "A", 1)[12:] == b"\x00\x00\x01\x00\x01"
    assert build_query("www.example.test.", "aaaa", 1)[12:] == (
        b"\x03www\x07example\x04test\x00" + struct.pack("!HH", 28, 1)
    )
    with pytest.raises(CheckerConfigError):
        build_query("x", "PTR", 1)


def test_dns_passes_and_sends_one_plain_question() -> None:
    with udp_responder(dns_answer()) as (port, rec):
        result = asyncio.run(dns_check(opts(port), "A", "www.example.test"))
    assert result.ok, result.reason
    assert result.reason == f"DNS A www.example.test to 127.0.0.1:{port}: answered with rcode 0"
    (wire,) = rec.requests
    query = dns.message.from_wire(wire)
    assert query.flags == dns.flags.RD and query.edns == -1
    assert [(str(q.name), q.rdtype) for q in query.question] == [
        ("www.example.test.", dns.rdatatype.A)
    ]


def test_dns_ignores_reply_with_other_id() -> None:
    with udp_responder(dns_answer(stray_first=True)) as (port, _):
        assert asyncio.run(dns_check(opts(port))).ok


def test_dns_rcode_fails() -> None:
    with udp_responder(dns_answer(dns.rcode.SERVFAIL)) as (port, _):
        result = asyncio.run(dns_check(opts(port), "SOA", "example.test"))
    assert not result.ok and result.reason.endswith("rcode 2 (SERVFAIL)")


def test_dns_silence_and_port_unreachable_fail() -> None:
    with udp_responder(lambda wire: []) as (port, _):
        result = asyncio.run(dns_check(opts(port, 0.3)))
    assert result.reason == f"DNS SOA . to 127.0.0.1:{port}: no reply within 0.3 s"
    port = closed_port(kind=socket.SOCK_DGRAM)
    result = asyncio.run(dns_check(opts(port)))
    assert result.reason == f"DNS SOA . to 127.0.0.1:{port}: connection refused"


# -- UDP -----------------------------------------------------------------------------------


def test_hex_strings_as_keepalived_reads_them() -> None:
    assert parse_hex("0a0B ff") == (b"\x0a\x0b\xff", b"\x00\x00\x00")
    assert parse_hex("1 2") == (b"\x01\x02", b"\x00\x00")
    assert parse_hex("AxX0", wildcards=True) == (b"\xa0\x00", b"\x0f\xf0")
    for bad in ("zz", "", "0x"):
        with pytest.raises(CheckerConfigError):
            parse_hex(bad)


def test_reply_rule() -> None:
    data, mask = parse_hex("01x2", wildcards=True)
    rule = ReplyRule(data, mask, 1, 4)
    assert rule.mismatch(b"\x01\x52\xff") is None
    assert rule.mismatch(b"\x01") is None  # only min(len(reply), len(HEX)) bytes compared
    assert rule.mismatch(b"\x01\x53") == "reply byte 1 is 53, expected 02 (mask 0f)"
    assert rule.mismatch(b"12345") == "reply of 5 bytes outside 1-4"
    assert ReplyRule().mismatch(b"") is None


def test_udp_from_model() -> None:
    o = opts(53)
    check = UdpCheck.from_model(
        Checker(kind="UDP_CHECK", payload="cafe", require_reply="ca fe", max_reply_length=10), o
    )
    assert check.payload == b"\xca\xfe" and check.reply == ReplyRule(b"\xca\xfe", b"\0\0", 0, 10)
    bare = UdpCheck.from_model(Checker(kind="UDP_CHECK", require_reply=""), o)
    assert bare.reply == ReplyRule() and bare.payload is None
    assert UdpCheck.from_model(Checker(kind="UDP_CHECK"), o).reply is None


def test_udp_reply_matching() -> None:
    rule = ReplyRule(*parse_hex("cafeXX", wildcards=True))
    with udp_responder(lambda data: [b"\xca\xfe" + data[:2]]) as (port, rec):
        result = asyncio.run(udp_check(UdpCheck(opts(port), b"\x01\x02", rule)))
        assert result.ok, result.reason
        bad = ReplyRule(*parse_hex("beef"))
        result = asyncio.run(udp_check(UdpCheck(opts(port), b"\x01\x02", bad)))
    assert rec.requests == [b"\x01\x02", b"\x01\x02"]
    assert result.reason == f"UDP to 127.0.0.1:{port}: reply byte 0 is ca, expected be (mask ff)"


def test_udp_silence_passes_unless_a_reply_is_required() -> None:
    with udp_responder(lambda data: []) as (port, rec):
        quiet = asyncio.run(udp_check(UdpCheck(opts(port, 0.3))))
        needy = asyncio.run(udp_check(UdpCheck(opts(port, 0.3), reply=ReplyRule())))
    assert quiet.ok and quiet.reason == f"UDP to 127.0.0.1:{port}: no ICMP error within 0.3 s"
    assert not needy.ok and needy.reason == f"UDP to 127.0.0.1:{port}: no reply within 0.3 s"
    assert len(rec.requests[0]) == 32  # keepalived's filler payload size


def test_udp_port_unreachable_fails() -> None:
    port = closed_port(kind=socket.SOCK_DGRAM)
    result = asyncio.run(udp_check(UdpCheck(opts(port))))
    assert not result.ok and result.reason == f"UDP to 127.0.0.1:{port}: connection refused"


# -- FILE ----------------------------------------------------------------------------------


def test_file_check(tmp_path: Path) -> None:
    f = tmp_path / "weight"
    missing = file_check(str(f), weight=0)
    assert missing.ok and missing.reason == f"{f}: value 0 (file missing, reads as 0)"
    f.write_text("3\n")
    assert file_check(str(f), weight=2).weight == 6
    assert file_check(str(f), weight=2, reverse=True).weight == -6
    zero = file_check(str(f), weight=0)
    assert not zero.ok and zero.reason == f"{f}: value 3 is not 0 (weight 0)"
    f.write_text(str(-(2**31)))
    assert not file_check(str(f), weight=1).ok
    f.write_text("99999999999")
    out = file_check(str(f))
    assert not out.ok and "out of int32 range" in out.reason


# -- from the configuration ----------------------------------------------------------------


def test_make_probe_from_model(tmp_path: Path) -> None:
    f = tmp_path / "w"
    f.write_text("2")
    vs = VirtualServer(name="192.0.2.1 80", ip="192.0.2.1", port=80, connect_timeout=4)
    tracked = {"tf": TrackFile(name="tf", file=str(f), weight=3)}
    pinger = Pinger()
    with silent_tcp_server() as port:
        rs = RealServer(ip="127.0.0.1", port=port)
        tcp = make_probe(Checker(kind="TCP_CHECK"), rs, vs, pinger)
        assert asyncio.run(tcp()).ok
    probe = make_probe(Checker(kind="FILE_CHECK", track_file="tf"), rs, vs, pinger, tracked)
    assert asyncio.run(probe()).weight == 6
    own = Checker(kind="FILE_CHECK", track_file="tf", weight=-1, weight_reverse=True)
    assert asyncio.run(make_probe(own, rs, vs, pinger, tracked)()).weight == 2
    for bad in (Checker(kind="FILE_CHECK", track_file="nope"), Checker(kind="MISC_CHECK")):
        with pytest.raises(CheckerConfigError):
            make_probe(bad, rs, vs, pinger, tracked)
    smtp = ConnectOptions.from_model(
        Checker(kind="SMTP_CHECK"), RealServer(ip="198.51.100.2"), vs, 25
    )
    assert (smtp.connect_port, smtp.connect_timeout) == (80, 4)  # the VS port is inherited
    rs_only = ConnectOptions.from_model(
        Checker(kind="DNS_CHECK", connect_port=5353, connect_timeout=1), rs, vs
    )
    assert (rs_only.connect_port, rs_only.connect_timeout) == (5353, 1)


def test_ipv6_udp_and_dns() -> None:
    with udp_responder(dns_answer(), host="::1") as (port, _):
        result = asyncio.run(dns_check(opts(port, host="::1")))
    assert result.ok and result.reason == f"DNS SOA . to [::1]:{port}: answered with rcode 0"
    port = closed_port("::1", socket.SOCK_DGRAM)
    result = asyncio.run(udp_check(UdpCheck(opts(port, host="::1"))))
    assert result.reason == f"UDP to [::1]:{port}: connection refused"


def test_socket_options_reach_the_socket() -> None:
    from checkd.checkers.connection import make_socket

    o = ConnectOptions("127.0.0.1", 9, bindto="127.0.0.3", bind_port=0, bind_if="lo", fwmark=7)
    with make_socket(o, socket.SOCK_STREAM) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_MARK) == 7
        device = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
        assert device.rstrip(b"\0") == b"lo"
        assert sock.getsockname()[0] == "127.0.0.3"
