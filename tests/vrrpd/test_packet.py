"""Codec tests: known-answer vectors and property tests against scapy in both directions.

scapy pitfalls and how these tests avoid them:
* scapy has no RFC 9568 message-only IPv4 checksum: we build with ``chksum=0`` and set the
  value from ``scapy.utils.checksum`` over the VRRP bytes ourselves.
* ``VRRPv3`` without an IP layer below cannot decode addresses: we always dissect
  ``IP``/``IPv6`` + payload and build under ``IP``/``IPv6``.
* The VRRP↔VRRPv3 dispatch needs >= 9 bytes, so a v3 advert with 0 addresses (8 bytes) is
  dissected as v2 by scapy: scapy comparisons use >= 1 address; count 0 is tested on our codec
  alone.
* ``scapy.contrib.carp`` rebinds protocol 112: it is never imported here.
* v2 auth data is two 32-bit ints in scapy: we split the 8 bytes into ``auth1``/``auth2``.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from tests.vrrpd.strategies import V4_GROUP, adverts, source_for, v4_addresses
from vrrpd.errors import (
    BadChecksumError,
    BadIntervalError,
    BadLengthError,
    BadTypeError,
    BadVersionError,
    DecodeError,
    EncodeError,
    TooShortError,
)
from vrrpd.packet import (
    MCAST_V6,
    Advert,
    AuthType,
    ChecksumForm,
    IPAddress,
    decode,
    encode,
    internet_checksum,
    matching_checksum_form,
    parse,
    prepare,
)

VIP = IPv4Address("192.0.2.100")
SRC = IPv4Address("192.0.2.11")


# ---- known answers (from an implementation independent of ours) ------------------------


@pytest.mark.parametrize(
    ("advert", "kwargs", "hexstr"),
    [
        (Advert(2, 51, 100, (VIP,), 1), {}, "213364010001b865c00002640000000000000000"),
        (
            Advert(2, 51, 100, (VIP,), 1, auth_type=AuthType.PASS, auth_data=b"secret"),
            {},
            "2133640101017b19c00002647365637265740000",
        ),
        (Advert(3, 51, 100, (VIP,), 100), {"src": SRC}, "3133640100640568c0000264"),
        (
            Advert(3, 51, 100, (VIP,), 100),
            {"src": SRC, "form": ChecksumForm.MESSAGE},
            "313364010064a802c0000264",
        ),
        (Advert(3, 51, 0, (VIP,), 100), {"src": SRC}, "3133000100646968c0000264"),
        (
            Advert(
                3, 51, 100, (IPv6Address("fe80::1"), IPv6Address("2001:db8::100")), 100, family=6
            ),
            {"src": IPv6Address("fe80::11")},
            "3133640200643eecfe80000000000000000000000000000120010db8000000000000000000000100",
        ),
    ],
)
def test_known_answer_vectors(advert: Advert, kwargs: dict[str, Any], hexstr: str) -> None:
    wire = encode(advert, **kwargs)
    assert wire.hex() == hexstr
    family = advert.family
    back = decode(wire, family=family, src=kwargs.get("src"), dst=None)
    assert back.priority == advert.priority
    assert back.addresses == advert.addresses


def test_scapy_regression_vector_both_forms() -> None:
    advert = Advert(3, 2, 254, (ip_address("20.0.1.2"), ip_address("20.0.1.3")), 1)
    pseudo = encode(advert, src=ip_address("20.0.0.3"))
    message = encode(advert, form=ChecksumForm.MESSAGE)
    assert pseudo[6:8] == bytes.fromhex("b25e")
    assert message[6:8] == bytes.fromhex("a6f4")


def test_pass_password_is_truncated_to_eight_bytes() -> None:
    advert = Advert(2, 1, 100, (VIP,), 1, auth_type=AuthType.PASS, auth_data=b"secretpassword")
    assert encode(advert)[-8:] == b"secretpa"


# ---- scapy as the independent reference ------------------------------------------------------


def _scapy_bytes_v3(advert: Advert, src: IPAddress, dst: IPAddress) -> bytes:
    layer = VRRPv3(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.interval,
        addrlist=[str(a) for a in advert.addresses],
    )
    if advert.family == 4:
        pkt = IP(src=str(src), dst=str(dst), ttl=255) / layer
        return bytes(pkt)[20:]
    pkt6 = IPv6(src=str(src), dst=str(dst), hlim=255) / layer
    return bytes(pkt6)[40:]


def _scapy_bytes_v2(advert: Advert) -> bytes:
    data = advert.auth_data if advert.auth_type == AuthType.PASS else bytes(8)
    layer = VRRP(
        vrid=advert.vrid,
        priority=advert.priority,
        authtype=int(advert.auth_type),
        adv=advert.interval,
        addrlist=[str(a) for a in advert.addresses],
        auth1=int.from_bytes(data[:4], "big"),
        auth2=int.from_bytes(data[4:], "big"),
    )
    return bytes(IP(src=str(SRC), dst=str(V4_GROUP), ttl=255) / layer)[20:]


@given(adverts(version=2))
def test_v2_encode_matches_scapy(advert: Advert) -> None:
    assert encode(advert) == _scapy_bytes_v2(advert)


@given(adverts(version=3), st.data())
def test_v3_pseudo_encode_matches_scapy(advert: Advert, data: st.DataObject) -> None:
    src = data.draw(source_for(advert.family))
    dst = V4_GROUP if advert.family == 4 else MCAST_V6
    assert encode(advert, src=src, dst=dst) == _scapy_bytes_v3(advert, src, dst)


@given(adverts(version=3, family=4), v4_addresses, v4_addresses)
def test_v3_unicast_pseudo_and_old_unicast_match_scapy(
    advert: Advert, src: IPv4Address, peer: IPv4Address
) -> None:
    # keepalived >= 1.3.7: the pseudo-header names the real unicast destination ...
    assert encode(advert, src=src, dst=peer) == _scapy_bytes_v3(advert, src, peer)
    # ... while old_unicast_checksum (<= 1.3.6) names 224.0.0.18 even when sent unicast.
    old = encode(advert, src=src, dst=peer, form=ChecksumForm.OLD_UNICAST)
    assert old == _scapy_bytes_v3(advert, src, V4_GROUP)


@given(adverts(version=3, family=4))
def test_v3_message_only_matches_scapy_with_manual_checksum(advert: Advert) -> None:
    layer = VRRPv3(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.interval,
        addrlist=[str(a) for a in advert.addresses],
        chksum=0,
    )
    zeroed = bytes(IP(src=str(SRC), dst=str(V4_GROUP)) / layer)[20:]
    ck = scapy_checksum(zeroed)
    expected = zeroed[:6] + ck.to_bytes(2, "big") + zeroed[8:]
    assert encode(advert, form=ChecksumForm.MESSAGE) == expected


@given(adverts(), st.data())
def test_scapy_dissects_our_bytes(advert: Advert, data: st.DataObject) -> None:
    src = data.draw(source_for(advert.family))
    wire = encode(advert, src=src)
    if advert.family == 4:
        pkt = IP(bytes(IP(src=str(src), dst=str(V4_GROUP), proto=112, ttl=255) / Raw(wire)))
        layer = pkt[VRRP] if advert.version == 2 else pkt[VRRPv3]
        recomputed = pkt.__class__(bytes(pkt))  # round trip keeps the checksum we sent
        assert bytes(recomputed)[20:] == wire
    else:
        pkt6 = IPv6(bytes(IPv6(src=str(src), dst=str(MCAST_V6), nh=112, hlim=255) / Raw(wire)))
        layer = pkt6[VRRPv3]
    assert layer.version == advert.version
    assert layer.vrid == advert.vrid
    assert layer.priority == advert.priority
    assert layer.ipcount == len(advert.addresses)
    assert layer.adv == advert.interval
    assert [ip_address(a) for a in layer.addrlist] == list(advert.addresses)
    assert layer.chksum == int.from_bytes(wire[6:8], "big")
    if advert.version == 2:
        assert layer.authtype == advert.auth_type
        auth = layer.auth1.to_bytes(4, "big") + layer.auth2.to_bytes(4, "big")
        assert auth == encode(advert)[-8:]


@given(adverts(), st.data())
def test_we_decode_scapy_bytes(advert: Advert, data: st.DataObject) -> None:
    src = data.draw(source_for(advert.family))
    if advert.version == 2:
        wire = _scapy_bytes_v2(advert)
    else:
        dst = V4_GROUP if advert.family == 4 else MCAST_V6
        wire = _scapy_bytes_v3(advert, src, dst)
    got = decode(wire, family=advert.family, src=src)
    assert got.version == advert.version
    assert got.vrid == advert.vrid
    assert got.priority == advert.priority
    assert got.addresses == advert.addresses
    assert got.interval == advert.interval
    assert got.checksum == int.from_bytes(wire[6:8], "big")
    if advert.version == 2:
        assert got.auth_type == advert.auth_type
        assert got.auth_data == wire[-8:]


# ---- our own invariants ----------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_internet_checksum_matches_scapy(data: bytes) -> None:
    assert internet_checksum(data) == scapy_checksum(data)


@given(adverts(min_addrs=0), st.data())
def test_round_trip(advert: Advert, data: st.DataObject) -> None:
    src = data.draw(source_for(advert.family))
    wire = encode(advert, src=src)
    back = decode(wire, family=advert.family, src=src)
    expected_data = encode(advert)[-8:] if advert.version == 2 else bytes(8)
    assert back == Advert(
        version=advert.version,
        vrid=advert.vrid,
        priority=advert.priority,
        addresses=advert.addresses,
        interval=advert.interval,
        family=advert.family,
        auth_type=advert.auth_type,
        auth_data=expected_data,
        checksum=int.from_bytes(wire[6:8], "big"),
    )


@given(adverts(), st.integers(0, 255), st.data())
def test_with_priority_equals_full_encode(advert: Advert, prio: int, data: st.DataObject) -> None:
    src = data.draw(source_for(advert.family))
    prepared = prepare(advert, src=src)
    changed = prepared.with_priority(prio)
    assert changed.wire == encode(
        Advert(
            advert.version,
            advert.vrid,
            prio,
            advert.addresses,
            advert.interval,
            advert.family,
            advert.auth_type,
            advert.auth_data,
        ),
        src=src,
    )
    assert changed.priority == prio
    assert changed.advert.priority == prio


@given(adverts(version=3, family=4), v4_addresses)
def test_receiver_identifies_checksum_form(advert: Advert, src: IPv4Address) -> None:
    for form in ChecksumForm:
        wire = encode(advert, src=src, dst=V4_GROUP, form=form)
        found = matching_checksum_form(
            wire, version=3, family=4, src=src, dst=V4_GROUP, accept=set(ChecksumForm)
        )
        # Multicast: OLD_UNICAST and PSEUDO are the same bytes, PSEUDO is reported first.
        expected = ChecksumForm.PSEUDO if form is ChecksumForm.OLD_UNICAST else form
        assert found is expected


@given(adverts(), st.data(), st.integers(0, 7), st.integers(1, 255))
def test_corruption_is_detected(
    advert: Advert, data: st.DataObject, bit: int, where_seed: int
) -> None:
    src = data.draw(source_for(advert.family))
    wire = bytearray(encode(advert, src=src))
    # Flip one bit outside the structural header bytes so parse() still succeeds.
    pos = 8 + where_seed % (len(wire) - 8) if len(wire) > 8 else 1
    wire[pos] ^= 1 << bit
    # Only the form we sent: with both forms accepted a single flip could, rarely, turn the
    # pseudo-header checksum into a valid message-only one.
    with pytest.raises(DecodeError):
        decode(bytes(wire), family=advert.family, src=src, accept={ChecksumForm.PSEUDO})


def test_v3_ipv4_checksum_needs_source_for_pseudo_form() -> None:
    with pytest.raises(EncodeError):
        encode(Advert(3, 1, 100, (VIP,), 100))


@pytest.mark.parametrize(
    "advert",
    [
        Advert(4, 1, 100, (VIP,), 1),
        Advert(2, 0, 100, (VIP,), 1),
        Advert(2, 1, 256, (VIP,), 1),
        Advert(2, 1, 100, (VIP,), 0),
        Advert(2, 1, 100, (VIP,), 256),
        Advert(3, 1, 100, (VIP,), 4096),
        Advert(2, 1, 100, (IPv6Address("2001:db8::1"),), 1, family=6),
        Advert(3, 1, 100, (IPv6Address("2001:db8::1"),), 100, family=4),
    ],
)
def test_encode_rejects_out_of_range(advert: Advert) -> None:
    with pytest.raises(EncodeError):
        encode(advert, src=SRC)


def test_decode_errors_are_typed() -> None:
    good = encode(Advert(3, 51, 100, (VIP,), 100), src=SRC)
    with pytest.raises(TooShortError):
        parse(good[:7])
    with pytest.raises(TooShortError):
        parse(good[:-1])
    with pytest.raises(BadLengthError):
        parse(good + b"\x00")
    with pytest.raises(BadVersionError):
        parse(bytes([0x41]) + good[1:])
    with pytest.raises(BadVersionError):
        parse(encode(Advert(2, 51, 100, (VIP,), 1)), family=6)
    with pytest.raises(BadTypeError):
        parse(bytes([0x32]) + good[1:])
    with pytest.raises(BadIntervalError):
        parse(good[:4] + b"\xf0\x00" + good[6:])
    with pytest.raises(BadChecksumError) as info:
        decode(good, src=SRC, accept={ChecksumForm.MESSAGE})
    assert info.value.reason == "checksum"
    assert "0x0568" in info.value.detail


def test_carp_packet_is_rejected_by_length() -> None:
    # OpenBSD CARP: 0x21, vhid, advskew, authlen=7, demote, advbase, cksum, counter, 20-byte HMAC
    carp = bytes([0x21, 1, 0, 7, 0, 1, 0, 0]) + bytes(28)
    with pytest.raises(TooShortError):
        parse(carp)


def test_reserved_interval_bits_are_ignored() -> None:
    wire = encode(Advert(3, 51, 100, (VIP,), 100), form=ChecksumForm.MESSAGE)
    tweaked = wire[:4] + bytes([wire[4] | 0xF0]) + wire[5:]
    assert parse(tweaked).interval == 100


def test_v3_zero_addresses_decode() -> None:
    wire = encode(Advert(3, 9, 0, (), 100), src=SRC)
    assert len(wire) == 8
    assert decode(wire, src=SRC).addresses == ()
