"""keepalived-style VRRPv2 IPsec-AH (vrrpd.ah).

scapy's own AH support needs the `cryptography` package for HMAC-MD5-96 (not installed) and
zeroes the TTL as RFC 4302 says, which keepalived does not do for multicast; so the ICV here is
recomputed independently with the standard library from the rules written in
the VRRP RFCs, and scapy is used to dissect the headers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.ipsec import AH

from tests.vrrpd.strategies import v4_addresses
from vrrpd.ah import AH_LEN, AhError, AhSession, unwrap, wrap
from vrrpd.ah_sockets import vrid_of
from vrrpd.packet import MCAST_V4, Advert, AuthType, encode
from vrrpd.validate import Accepted, Expectations, IpFacts, validate

SRC = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
VIP = IPv4Address("192.0.2.100")
PAYLOAD = encode(Advert(2, 51, 100, (VIP,), 1, auth_type=AuthType.AH))


def _expected_icv(datagram: bytes, password: bytes, unicast: bool) -> bytes:
    ip = datagram[:20]
    zeroed_ip = (
        ip[:1] + b"\x00" + ip[2:6] + b"\x00\x00" + (b"\x00" if unicast else ip[8:9]) + ip[9:10]
    )
    zeroed_ip += b"\x00\x00" + ip[12:20]
    ah = datagram[20:32] + bytes(12)
    key = password[:8].ljust(8, b"\x00")
    return hmac.new(key, zeroed_ip + ah + datagram[44:], hashlib.md5).digest()[:12]


@given(
    v4_addresses,
    st.booleans(),
    st.binary(min_size=1, max_size=12),
    st.integers(1, 2**32 - 1),
    st.integers(0, 0xFFFF),
)
def test_wrap_layout_and_icv(
    src: IPv4Address, unicast: bool, password: bytes, seq: int, ip_id: int
) -> None:
    dst = PEER if unicast else MCAST_V4
    datagram = wrap(
        PAYLOAD, src=src, dst=dst, auth_pass=password, seq=seq, ip_id=ip_id, unicast=unicast
    )
    pkt = IP(datagram)
    assert pkt.proto == 51
    assert pkt.tos == 0xC0
    assert pkt.ttl == 255
    assert pkt.id == ip_id
    assert pkt.len == 20 + AH_LEN + len(PAYLOAD)
    del pkt.chksum
    assert IP(bytes(pkt)).chksum == IP(datagram).chksum  # the header checksum is valid
    ah = IP(datagram)[AH]
    assert ah.nh == 112
    assert ah.payloadlen == 4
    assert ah.spi == int(src)
    assert ah.seq == seq
    assert bytes(ah.icv) == _expected_icv(datagram, password, unicast)
    assert datagram[44:] == PAYLOAD


@given(st.booleans(), st.integers(1, 1000))
def test_round_trip(unicast: bool, seq: int) -> None:
    dst = PEER if unicast else MCAST_V4
    datagram = wrap(PAYLOAD, src=SRC, dst=dst, auth_pass=b"pw", seq=seq, ip_id=1, unicast=unicast)
    got = unwrap(datagram, auth_pass=b"pw", last_seq=seq - 1, unicast=unicast)
    assert got.payload == PAYLOAD
    assert got.seq == seq
    assert got.src == SRC
    assert got.ttl == 255


def _datagram(**kw: Any) -> bytes:
    return wrap(PAYLOAD, src=SRC, dst=MCAST_V4, auth_pass=b"pw", seq=5, ip_id=1, **kw)


def test_mutable_fields_do_not_break_the_icv() -> None:
    d = bytearray(_datagram())
    d[1] = 0x00  # TOS rewritten on the way
    d[10:12] = b"\xab\xcd"  # IP checksum recomputed
    assert unwrap(bytes(d), auth_pass=b"pw", last_seq=0).seq == 5


def test_multicast_ttl_is_covered_but_unicast_ttl_is_not() -> None:
    d = bytearray(_datagram())
    d[8] = 254
    with pytest.raises(AhError):
        unwrap(bytes(d), auth_pass=b"pw", last_seq=0)
    u = bytearray(wrap(PAYLOAD, src=SRC, dst=PEER, auth_pass=b"pw", seq=5, ip_id=1, unicast=True))
    u[8] = 64
    assert unwrap(bytes(u), auth_pass=b"pw", last_seq=0, unicast=True).ttl == 64


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "ICV"),
        (lambda d: d[:24] + (int.from_bytes(d[24:28]) ^ 1).to_bytes(4) + d[28:], "ICV"),
    ],
)
def test_tampering_is_rejected(mutate: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(AhError, match=message):
        unwrap(mutate(_datagram()), auth_pass=b"pw", last_seq=0)


def test_wrong_password_replay_and_spi() -> None:
    with pytest.raises(AhError, match="ICV"):
        unwrap(_datagram(), auth_pass=b"other", last_seq=0)
    with pytest.raises(AhError, match="already seen"):
        unwrap(_datagram(), auth_pass=b"pw", last_seq=5)
    # A sender whose SPI is not its address (forged source) is rejected after the ICV passes.
    forged = wrap(PAYLOAD, src=SRC, dst=MCAST_V4, auth_pass=b"pw", seq=5, ip_id=1)
    d = bytearray(forged)
    d[24:28] = int(PEER).to_bytes(4, "big")
    d[32:44] = bytes(12)
    icv = _expected_icv(bytes(d), b"pw", unicast=False)
    d[32:44] = icv
    with pytest.raises(AhError, match="SPI"):
        unwrap(bytes(d), auth_pass=b"pw", last_seq=0)


def test_not_ah() -> None:
    with pytest.raises(AhError):
        unwrap(b"\x45" + bytes(30), auth_pass=b"pw", last_seq=0)
    with pytest.raises(AhError):
        unwrap(b"\x45", auth_pass=b"pw", last_seq=0)


def test_unwrapped_payload_validates_as_ah_advert() -> None:
    got = unwrap(_datagram(), auth_pass=b"pw", last_seq=0)
    expect = Expectations(
        vrid=51, version=2, addresses=(VIP,), auth_type=AuthType.AH, auth_pass=b"pw"
    )
    facts = IpFacts(src=got.src, dst=got.dst, ttl=got.ttl, ah_seq=got.seq)
    result = validate(got.payload, facts, expect)
    assert isinstance(result, Accepted)


def test_total_length_shorter_than_the_ah_header_is_an_ah_error() -> None:
    d = bytearray(_datagram())
    d[2:4] = (20 + 10).to_bytes(2, "big")  # claims to end inside the AH header
    with pytest.raises(AhError, match="total length"):
        unwrap(bytes(d), auth_pass=b"pw", last_seq=0)


@given(st.integers(1, 4), st.integers(1, 40))
def test_session_round_uses_one_sequence_and_one_ip_id_for_every_destination(
    peers: int, rounds: int
) -> None:
    dsts = tuple(IPv4Address(int(PEER) + i) for i in range(peers))
    session = AhSession(auth_pass=b"pw", src=SRC, unicast=True)
    for n in range(1, rounds + 1):
        datagrams = session.seal(PAYLOAD, dsts)
        assert [IP(d).dst for d in datagrams] == [str(d) for d in dsts]
        assert {IP(d)[AH].seq for d in datagrams} == {n}
        assert {IP(d).id for d in datagrams} == {n}
        for d in datagrams:  # each one verifies on its own (the ICV covers the destination)
            assert unwrap(d, auth_pass=b"pw", last_seq=n - 1, unicast=True).seq == n


def test_session_ip_id_skips_zero_and_sequence_stops_before_wrapping() -> None:
    session = AhSession(auth_pass=b"pw", src=SRC, seq=0xFFFFFFFD, ip_id=0xFFFE)
    ids, seqs = [], []
    for _ in range(3):
        (d,) = session.seal(PAYLOAD, (MCAST_V4,))
        ids.append(IP(d).id)
        seqs.append(IP(d)[AH].seq)
    assert ids == [0xFFFF, 1, 2]
    # keepalived's "cycled" counter: it stays at 0xFFFFFFFE rather than going back to 0.
    assert seqs == [0xFFFFFFFE] * 3


@given(st.lists(st.sampled_from(["a_sends", "b_sends", "b_replays"]), max_size=30))
def test_sessions_share_one_counter_per_direction_like_keepalived(steps: list[str]) -> None:
    """What a router accepts raises its own counter, so whoever sends next continues above
    everything already seen on the link, and nothing already seen is accepted twice."""
    a = AhSession(auth_pass=b"pw", src=SRC)
    b = AhSession(auth_pass=b"pw", src=PEER)
    last_from_b: bytes | None = None
    for step in steps:
        if step == "a_sends":
            (d,) = a.seal(PAYLOAD, (MCAST_V4,))
            got = b.open(d)
            assert got.seq == a.seq == b.seq
        elif step == "b_sends":
            (last_from_b,) = b.seal(PAYLOAD, (MCAST_V4,))
            assert a.open(last_from_b).seq == a.seq == b.seq
        elif last_from_b is not None:
            before = a.seq
            with pytest.raises(AhError, match="already seen"):
                a.open(last_from_b)
            assert a.seq == before


def test_session_rejects_a_wrong_password_without_moving_its_counter() -> None:
    a = AhSession(auth_pass=b"secret", src=SRC)
    b = AhSession(auth_pass=b"other", src=PEER, seq=7)
    (d,) = a.seal(PAYLOAD, (MCAST_V4,))
    with pytest.raises(AhError, match="ICV"):
        b.open(d)
    assert b.seq == 7


def test_only_the_first_8_password_bytes_key_the_icv() -> None:
    # keepalived keeps auth_pass in its 8-byte auth_data; longer passwords are truncated.
    d = wrap(PAYLOAD, src=SRC, dst=MCAST_V4, auth_pass=b"12345678-and-more", seq=1, ip_id=1)
    assert unwrap(d, auth_pass=b"12345678", last_seq=0).seq == 1


@pytest.mark.parametrize("length", [0, 19, 20, 44, 45])
def test_vrid_of_reads_behind_the_ah_header(length: int) -> None:
    datagram = _datagram()[:length]
    assert vrid_of(datagram) == (51 if length >= 46 else -1)
    assert vrid_of(_datagram()) == 51


def test_plan_keys_ah_with_the_truncated_auth_pass() -> None:
    from core import loads
    from vrrpd.plan import plan

    text = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    authentication {
        auth_type AH
        auth_pass 0123456789
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""
    (p,) = plan(loads(text).config)
    assert (p.auth_type, p.auth_pass, p.version) == (AuthType.AH, b"01234567", 2)
