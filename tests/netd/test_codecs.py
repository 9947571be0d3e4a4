"""Hand-written netlink codecs checked against pyroute2's encoder/decoder (no kernel)."""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netd.kernel import _parse_ifaddr
from netd.nlbatch import NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_ERROR, parse_acks
from netd.routemsg import parse_rtmsg as _parse_rtmsg


def _encoded(msg: Any) -> bytes:
    """A pyroute2 message (untyped) as the kernel would send it."""
    msg["header"]["type"] = 20
    msg.encode()
    return bytes(msg.data)


@given(
    host=st.integers(1, 254),
    prefix=st.integers(0, 32),
    label=st.sampled_from([None, "eth0", "eth0:vip"]),
    proto=st.sampled_from([None, 112, 3]),
    flags=st.sampled_from([0, 0x80, 0x202]),
)
def test_ifaddr_parser_matches_pyroute2(
    host: int, prefix: int, label: str | None, proto: int | None, flags: int
) -> None:
    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["index"], msg["scope"] = socket.AF_INET, prefix, 7, 253
    attrs: list[tuple[str, object]] = [
        ("IFA_ADDRESS", f"192.0.2.{host}"),
        ("IFA_LOCAL", f"192.0.2.{host}"),
        ("IFA_BROADCAST", "192.0.2.255"),
        ("IFA_FLAGS", flags),
    ]
    if label is not None:
        attrs.append(("IFA_LABEL", label))
    if proto is not None:
        attrs.append(("IFA_PROTO", proto))
    msg["attrs"] = attrs
    data = _encoded(msg)
    got = _parse_ifaddr(data, 0, len(data))
    assert (got["family"], got["prefixlen"], got["index"], got["scope"]) == (2, prefix, 7, 253)
    assert got["IFA_LOCAL"] == got["IFA_ADDRESS"] == f"192.0.2.{host}"
    assert got["IFA_BROADCAST"] == "192.0.2.255" and got["IFA_FLAGS"] == flags
    assert got.get("IFA_LABEL") == label and got.get("IFA_PROTO") == proto


@given(
    net=st.integers(0, 255),
    table=st.sampled_from([100, 254, 1000, 70000]),
    metric=st.sampled_from([None, 1, 1024]),
    mtu=st.sampled_from([None, 1400]),
)
def test_rtmsg_parser_matches_pyroute2(
    net: int, table: int, metric: int | None, mtu: int | None
) -> None:
    msg = rtmsg()
    msg["family"], msg["dst_len"], msg["proto"], msg["scope"], msg["type"] = (
        socket.AF_INET6, 64, 112, 0, 1,
    )  # fmt: skip
    msg["table"] = table if table < 256 else 252
    attrs: list[tuple[str, object]] = [
        ("RTA_DST", f"2001:db8:{net:x}::"),
        ("RTA_GATEWAY", "2001:db8::1"),
        ("RTA_OIF", 3),
        ("RTA_TABLE", table),
    ]
    if metric is not None:
        attrs.append(("RTA_PRIORITY", metric))
    if mtu is not None:
        attrs.append(("RTA_METRICS", {"attrs": [("RTAX_MTU", mtu)]}))
    msg["attrs"] = attrs
    data = _encoded(msg)
    got = _parse_rtmsg(data, 0, len(data))
    dst = str(ipaddress.IPv6Address(f"2001:db8:{net:x}::"))
    assert got["RTA_DST"] == dst and got["RTA_GATEWAY"] == "2001:db8::1"
    assert got["RTA_OIF"] == 3 and got["RTA_TABLE"] == table and got["proto"] == 112
    assert got.get("RTA_PRIORITY") == metric
    assert got.get("RTA_METRICS", {}).get("RTAX_MTU") == mtu


def _ack(seq: int, err: int, text: str | None) -> bytes:
    inner = struct.pack("=IHHII", 40, 20, 5, seq, 0)  # capped echo of the request header
    tlvs = b""
    flags = NLM_F_CAPPED
    if text is not None:
        payload = text.encode() + b"\0"
        tlvs = struct.pack("=HH", 4 + len(payload), 1) + payload + b"\0" * (-len(payload) % 4)
        flags |= NLM_F_ACK_TLVS
    body = struct.pack("=i", err) + inner + tlvs
    return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, flags, seq, 0) + body


def test_acks_with_extended_messages_are_decoded() -> None:
    data = (
        _ack(1, 0, None)
        + _ack(2, -errno.EEXIST, None)
        + _ack(3, -101, "Nexthop has invalid gateway")
    )
    acks = dict(parse_acks(data))
    assert acks[1].code == 0 and acks[1].errno_name == "OK"
    assert acks[2].errno_name == "EEXIST" and acks[2].message is None
    assert acks[3].errno_name == "ENETUNREACH"
    assert acks[3].reason == "Network is unreachable: Nexthop has invalid gateway"
