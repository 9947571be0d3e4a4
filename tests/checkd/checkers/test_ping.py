"""PING_CHECK and connect timeouts across two network namespaces: reachable, no route, and an
on-link address nobody answers for; IPv4 and IPv6; one shared ICMP socket per family."""

from __future__ import annotations

import asyncio
import socket

import pytest

from checkd.checkers import ConnectOptions, Pinger, tcp_check
from checkd.checkers.ping import checksum, echo_request, parse_reply
from tests.lab import Lab

pytestmark = pytest.mark.netns


def test_checksum_and_packets() -> None:
    packet = echo_request(socket.AF_INET, 0x1234, 7, b"abc")
    assert checksum(packet) == 0
    reply = b"\x00" + packet[1:]
    assert parse_reply(socket.AF_INET, False, reply) == (0x1234, 7)
    ip_header = bytes([0x45]) + bytes(19)
    assert parse_reply(socket.AF_INET, True, ip_header + reply) == (0x1234, 7)
    assert parse_reply(socket.AF_INET, False, packet) is None  # a request, not a reply
    assert parse_reply(socket.AF_INET6, False, bytes([129, 0, 0, 0, 0, 1, 0, 2])) == (1, 2)


def _opts(ip: str, timeout: float = 1.0) -> ConnectOptions:
    return ConnectOptions(ip, connect_timeout=timeout)


@pytest.mark.parametrize("unprivileged", [False, True], ids=["raw", "dgram"])
def test_ping_between_namespaces(lab: Lab, unprivileged: bool) -> None:
    here, there = lab.node(0), lab.node(1)
    if unprivileged:  # let root use SOCK_DGRAM ICMP sockets in this namespace
        here.run(["sysctl", "-qw", "net.ipv4.ping_group_range=0 0"])

    async def scenario() -> list[tuple[bool, str]]:
        pinger = Pinger()
        try:
            probes = [
                pinger.ping(_opts(there.ip4)),
                pinger.ping(_opts(there.ip6)),
                pinger.ping(_opts("192.0.2.99", 0.5)),  # on-link, nobody there
                pinger.ping(_opts("203.0.113.9")),  # no route
                *(pinger.ping(_opts(there.ip4)) for _ in range(20)),
            ]
            results = await asyncio.gather(*probes)
            # one socket per family, however many checks
            assert [s.raw for s in pinger.sockets] == [not unprivileged] * 2
            return [(r.ok, r.reason) for r in results]
        finally:
            pinger.close()

    with here.inside():
        results = asyncio.run(scenario())
    assert results[0] == (True, f"echo reply from {there.ip4}")
    assert results[1] == (True, f"echo reply from {there.ip6}")
    assert results[2] == (False, "no echo reply from 192.0.2.99 within 0.5 s")
    assert results[3] == (
        False,
        "ping 203.0.113.9: cannot send echo request: network is unreachable",
    )
    assert all(ok for ok, _ in results[4:])


def test_ping_fails_once_the_route_is_gone(lab: Lab) -> None:
    here, there = lab.node(0), lab.node(1)
    here.run(["ip", "route", "add", "198.51.100.7/32", "via", there.ip4])
    there.run(["ip", "addr", "add", "198.51.100.7/32", "dev", "lo"])

    async def once() -> tuple[bool, str]:
        pinger = Pinger()
        try:
            result = await pinger.ping(_opts("198.51.100.7"))
            return result.ok, result.reason
        finally:
            pinger.close()

    with here.inside():
        assert asyncio.run(once()) == (True, "echo reply from 198.51.100.7")
    here.run(["ip", "route", "del", "198.51.100.7/32"])
    with here.inside():
        ok, reason = asyncio.run(once())
    assert not ok and reason.endswith("network is unreachable")


def test_tcp_connect_timeout_names_the_peer(lab: Lab) -> None:
    with lab.node(0).inside():
        result = asyncio.run(tcp_check(ConnectOptions("192.0.2.99", 80, connect_timeout=0.5)))
    assert result.reason == "connect timeout after 0.5 s to 192.0.2.99:80"
