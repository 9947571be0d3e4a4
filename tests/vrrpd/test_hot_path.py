"""Per-advert shortcuts in vrrpd: the notice rate limit and the datagram validation key."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bus.notices import NoticeLimiter
from tests.vrrpd.rawip import ipv4_datagram
from vrrpd.sockets import Receiver, sockaddr


@given(
    st.lists(
        st.tuples(st.floats(0.0, 0.7, allow_nan=False), st.sampled_from(["a", "b"])),
        max_size=60,
    )
)
def test_notices_are_spaced_per_key_and_nothing_is_lost_from_the_count(
    steps: list[tuple[float, str]],
) -> None:
    limiter = NoticeLimiter(1.0)
    now = 0.0
    last_sent: dict[str, float] = {}
    calls = {"a": 0, "b": 0}
    reported = {"a": 0, "b": 0}  # notices sent + held back that they reported
    for delta, key in steps:
        now += delta
        calls[key] += 1
        held = limiter.due(key, now)
        if held is None:
            assert now - last_sent[key] < 1.0
            continue
        assert key not in last_sent or now - last_sent[key] >= 1.0
        last_sent[key] = now
        reported[key] += 1 + held
    for key, count in calls.items():
        # Everything is accounted for, except what the next notice will report.
        pending = limiter.due(key, now + 10.0) or 0
        assert reported[key] + pending == count


def _ipv4(ttl: int, src: str, dst: str, payload: bytes, ident: int, padding: bytes = b"") -> bytes:
    return ipv4_datagram(
        payload, IPv4Address(src), IPv4Address(dst), ttl=ttl, ident=ident, padding=padding
    )


FIELDS = st.tuples(
    st.sampled_from([255, 254, 1]),
    st.sampled_from(["192.0.2.1", "192.0.2.2"]),
    st.sampled_from(["224.0.0.18", "192.0.2.9"]),
    st.sampled_from([b"\x31\x01\x64\x01\x00\x0a\x00\x00\xc6\x33\x64\x01", b"\x31\x01\x96\x00"]),
    st.sampled_from([b"", b"\0" * 6]),
)


@given(FIELDS, FIELDS, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_equal_keys_exactly_when_validation_sees_the_same_thing(
    a: tuple[int, str, str, bytes, bytes],
    b: tuple[int, str, str, bytes, bytes],
    id_a: int,
    id_b: int,
) -> None:
    # Decoded apart, then through one receiver that remembers what it decoded.
    da = _receiver()._from_ipv4(_ipv4(*a[:4], ident=id_a, padding=a[4]))
    db = _receiver()._from_ipv4(_ipv4(*b[:4], ident=id_b, padding=b[4]))
    assert da is not None and db is not None
    seen_a = (da.payload, da.facts.src, da.facts.dst, da.facts.ttl, da.facts.declared_len)
    seen_b = (db.payload, db.facts.src, db.facts.dst, db.facts.ttl, db.facts.declared_len)
    assert (da.key == db.key) == (seen_a == seen_b)
    rx = _receiver()
    assert rx._from_ipv4(_ipv4(*a[:4], ident=id_a, padding=a[4])) == da
    assert rx._from_ipv4(_ipv4(*b[:4], ident=id_b, padding=b[4])) == db


def _receiver() -> Receiver:
    """A Receiver without a socket: only its decoding is exercised."""
    rx = object.__new__(Receiver)
    rx.family, rx.ifname, rx._seen = 4, "eth0", {}
    return rx


def test_send_addresses_carry_the_scope_only_where_ipv6_needs_it() -> None:
    assert sockaddr(IPv4Address("224.0.0.18"), 7) == ("224.0.0.18", 0)
    assert sockaddr(IPv4Address("192.0.2.2"), 7) == ("192.0.2.2", 0)
    assert sockaddr(IPv6Address("ff02::12"), 7) == ("ff02::12", 0, 0, 7)
    assert sockaddr(IPv6Address("fe80::1"), 7) == ("fe80::1", 0, 0, 7)
    assert sockaddr(IPv6Address("2001:db8::2"), 7) == ("2001:db8::2", 0, 0, 0)


class _Ipv6Socket:
    """Hands out ``count`` distinct IPv6 datagrams as recvmsg would, then nothing."""

    def __init__(self, count: int) -> None:
        self.left = count

    def recvmsg(self, size: int, ancsize: int) -> tuple[bytes, list[Any], int, tuple[Any, ...]]:
        if not self.left:
            raise BlockingIOError
        self.left -= 1
        anc = [(socket.IPPROTO_IPV6, 50, IPv6Address("ff02::12").packed + bytes(4))]
        return self.left.to_bytes(4, "big"), anc, 0, ("fe80::1%eth0", 0, 0, 2)


def test_every_key_of_a_drain_has_its_datagram_even_when_the_cache_fills_up() -> None:
    rx = _receiver()
    rx.family, rx._batch = 6, None
    rx._seen = {i.to_bytes(8, "big"): object() for i in range(1023)}  # type: ignore[misc]
    rx.sock = _Ipv6Socket(200)  # type: ignore[assignment]
    keys = rx.drain_keys()
    assert len(keys) == 200
    assert all(rx.datagram(key) is not None for key in keys)
