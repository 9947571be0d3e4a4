"""Receive validation: one test per drop reason, the accepted-with-note cases, the counters."""

from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vrrpd.strategies import adverts, source_for
from vrrpd.packet import (
    MCAST_V4,
    MCAST_V6,
    Advert,
    AuthType,
    ChecksumForm,
    encode,
    internet_checksum,
)
from vrrpd.validate import (
    Accepted,
    Drop,
    DropReason,
    Expectations,
    IpFacts,
    ReceiveCounters,
    validate,
)

PEER = IPv4Address("192.0.2.12")
ME = IPv4Address("192.0.2.11")
VIP = IPv4Address("192.0.2.100")
VIP2 = IPv4Address("192.0.2.101")

V3 = Expectations(
    vrid=51, version=3, interval_cs=100, addresses=(VIP,), own_addresses=frozenset({ME})
)
V2 = Expectations(vrid=51, version=2, interval_cs=100, addresses=(VIP,))
MCAST = IpFacts(src=PEER, dst=MCAST_V4, ttl=255)


def v3(prio: int = 100, addrs: tuple[IPv4Address, ...] = (VIP,), **kw: Any) -> bytes:
    form = kw.pop("form", ChecksumForm.PSEUDO)
    interval = kw.pop("interval", 100)
    vrid = kw.pop("vrid", 51)
    src = kw.pop("src", PEER)
    dst = kw.pop("dst", MCAST_V4)
    advert = Advert(3, vrid, prio, addrs, interval)
    return encode(advert, src=src, dst=dst, form=form)


def v2(**kw: Any) -> bytes:
    advert = Advert(
        version=2,
        vrid=51,
        priority=100,
        addresses=(VIP,),
        interval=kw.get("interval", 1),
        auth_type=kw.get("auth_type", AuthType.NONE),
        auth_data=kw.get("auth_data", bytes(8)),
    )
    return encode(advert)


def dropped(result: Accepted | Drop, reason: DropReason) -> Drop:
    assert isinstance(result, Drop), result
    assert result.reason is reason, result
    assert str(result.source) in result.detail  # every explanation names the sender
    return result


def test_accepts_a_good_v3_advert() -> None:
    result = validate(v3(), MCAST, V3)
    assert isinstance(result, Accepted)
    assert result.advert.priority == 100
    assert result.checksum_form is ChecksumForm.PSEUDO
    assert result.notes == ()


def test_accepts_message_only_checksum_and_reports_it() -> None:
    result = validate(v3(form=ChecksumForm.MESSAGE), MCAST, V3)
    assert isinstance(result, Accepted)
    assert result.checksum_form is ChecksumForm.MESSAGE


def test_too_short_header() -> None:
    dropped(validate(b"\x31\x33\x64", MCAST, V3), DropReason.TOO_SHORT)


def test_too_short_for_address_count() -> None:
    dropped(validate(v3()[:-2], MCAST, V3), DropReason.TOO_SHORT)


def test_too_short_against_ip_length() -> None:
    facts = replace(MCAST, declared_len=40)
    dropped(validate(v3(), facts, V3), DropReason.TOO_SHORT)


def test_ethernet_padding_beyond_ip_length_is_ignored() -> None:
    wire = v3()
    facts = replace(MCAST, declared_len=len(wire))
    assert isinstance(validate(wire + bytes(6), facts, V3), Accepted)


def test_length_longer_than_count() -> None:
    dropped(validate(v3() + bytes(4), MCAST, V3), DropReason.LENGTH)


def test_vrid() -> None:
    d = dropped(validate(v3(vrid=52), MCAST, V3), DropReason.VRID)
    assert "52" in d.detail


def test_ttl_multicast() -> None:
    d = dropped(validate(v3(), replace(MCAST, ttl=254), V3), DropReason.TTL)
    assert "254" in d.detail


def test_ttl_not_checked_for_unicast_unless_bounds() -> None:
    expect = replace(V3, unicast=True)
    facts = IpFacts(src=PEER, dst=ME, ttl=64)
    assert isinstance(validate(v3(dst=ME), facts, expect), Accepted)
    bounded = replace(expect, min_ttl=100)
    dropped(validate(v3(dst=ME), facts, bounded), DropReason.TTL)


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_ttl_per_peer_bounds_name_the_peer(lo: int, hi: int, ttl: int) -> None:
    other = IPv4Address("192.0.2.13")
    expect = replace(
        V3,
        unicast=True,
        check_unicast_src=True,
        unicast_peers=frozenset({PEER, other}),
        peer_ttls={PEER: (lo, hi)},
        min_ttl=255,  # the instance-wide bounds do not apply to a peer with its own
    )
    result = validate(v3(dst=ME), IpFacts(src=PEER, dst=ME, ttl=ttl), expect)
    if lo <= ttl <= hi:
        assert isinstance(result, Accepted)
    else:
        d = dropped(result, DropReason.TTL)
        assert f"peer {PEER}" in d.detail and f"{lo}..{hi}" in d.detail
    # A peer without bounds of its own falls back to the instance's.
    facts = IpFacts(src=other, dst=ME, ttl=ttl)
    assert isinstance(validate(v3(dst=ME, src=other), facts, expect), Accepted) == (ttl == 255)


def test_version_nibble_not_vrrp() -> None:
    dropped(validate(bytes([0x41]) + v3()[1:], MCAST, V3), DropReason.VERSION)


def test_version_mismatch() -> None:
    dropped(validate(v2(), MCAST, V3), DropReason.VERSION)


def test_v2_unknown_auth_type() -> None:
    wire = v2()
    bad = wire[:4] + b"\x07" + wire[5:]
    d = dropped(validate(bad, MCAST, V2), DropReason.AUTH_TYPE)
    assert "unknown auth type 7" in d.detail


def test_v2_auth_type_mismatch() -> None:
    wire = v2(auth_type=AuthType.PASS, auth_data=b"secret")
    dropped(validate(wire, MCAST, V2), DropReason.AUTH_TYPE)


def test_v2_pass_auth() -> None:
    expect = replace(V2, auth_type=AuthType.PASS, auth_pass=b"secretpassword")
    good = v2(auth_type=AuthType.PASS, auth_data=b"secretpa")
    assert isinstance(validate(good, MCAST, expect), Accepted)
    bad = v2(auth_type=AuthType.PASS, auth_data=b"secretpb")
    dropped(validate(bad, MCAST, expect), DropReason.AUTH)


def test_v2_ah_needs_a_checked_ah_header() -> None:
    expect = replace(V2, auth_type=AuthType.AH)
    d = dropped(validate(v2(auth_type=AuthType.AH), MCAST, expect), DropReason.AUTH)
    assert "AH" in d.detail
    checked = replace(MCAST, ah_seq=7)
    assert isinstance(validate(v2(auth_type=AuthType.AH), checked, expect), Accepted)


def test_v2_interval_mismatch_drops() -> None:
    d = dropped(validate(v2(interval=2), MCAST, V2), DropReason.INTERVAL)
    assert "2 s" in d.detail


def test_v3_interval_mismatch_is_only_a_note() -> None:
    result = validate(v3(interval=50), MCAST, V3)
    assert isinstance(result, Accepted)
    assert [n.reason for n in result.notes] == [DropReason.INTERVAL]
    assert str(PEER) in result.notes[0].detail


def test_v3_interval_zero_drops() -> None:
    wire = v3()
    # Recompute a valid message-only checksum so interval is what fails.
    zeroed = wire[:4] + b"\x00\x00" + b"\x00\x00" + wire[8:]
    fixed = zeroed[:6] + internet_checksum(zeroed).to_bytes(2, "big") + zeroed[8:]
    dropped(validate(fixed, MCAST, V3), DropReason.INTERVAL)


def test_type() -> None:
    wire = v3()
    dropped(validate(bytes([0x32]) + wire[1:], MCAST, V3), DropReason.TYPE)


def test_checksum() -> None:
    wire = bytearray(v3())
    wire[7] ^= 0xFF
    d = dropped(validate(bytes(wire), MCAST, V3), DropReason.CHECKSUM)
    assert "pseudo" in d.detail


def test_checksum_form_not_accepted() -> None:
    expect = replace(V3, checksum_forms=frozenset({ChecksumForm.PSEUDO}))
    dropped(validate(v3(form=ChecksumForm.MESSAGE), MCAST, expect), DropReason.CHECKSUM)


def test_checksum_any_mimics_v3_checksum_as_v2_receive_quirk() -> None:
    wire = bytearray(v3())
    wire[7] ^= 0xFF
    expect = replace(V3, checksum_any=True)
    result = validate(bytes(wire), MCAST, expect)
    assert isinstance(result, Accepted)
    assert result.checksum_form is None


def test_old_unicast_checksum_accepted_when_enabled() -> None:
    expect = replace(
        V3, unicast=True, checksum_forms=frozenset({ChecksumForm.PSEUDO, ChecksumForm.OLD_UNICAST})
    )
    wire = v3(dst=ME, form=ChecksumForm.OLD_UNICAST)
    facts = IpFacts(src=PEER, dst=ME, ttl=255)
    result = validate(wire, facts, expect)
    assert isinstance(result, Accepted)
    assert result.checksum_form is ChecksumForm.OLD_UNICAST
    dropped(
        validate(wire, facts, replace(expect, checksum_forms=V3.checksum_forms)),
        DropReason.CHECKSUM,
    )


def test_destination_kind() -> None:
    unicast_pkt = IpFacts(src=PEER, dst=ME, ttl=255)
    dropped(validate(v3(dst=ME), unicast_pkt, V3), DropReason.DESTINATION)
    dropped(validate(v3(), MCAST, replace(V3, unicast=True)), DropReason.DESTINATION)


def test_own_address() -> None:
    facts = IpFacts(src=ME, dst=MCAST_V4, ttl=255)
    dropped(validate(v3(src=ME), facts, V3), DropReason.OWN_ADDRESS)


def test_owner_ignore() -> None:
    expect = replace(V3, priority=255, owner_ignore_adverts=True)
    dropped(validate(v3(), MCAST, expect), DropReason.OWNER_IGNORE)
    assert isinstance(validate(v3(), MCAST, replace(expect, owner_ignore_adverts=False)), Accepted)


def test_addr_count_zero_is_dropped() -> None:
    dropped(validate(v3(prio=0, addrs=()), MCAST, V3), DropReason.ADDR_COUNT)


def test_addr_count_zero_accepted_when_we_have_none_too() -> None:
    expect = replace(V3, addresses=())
    assert isinstance(validate(v3(addrs=()), MCAST, expect), Accepted)


def test_addr_count_mismatch_is_note_or_strict_drop() -> None:
    result = validate(v3(addrs=(VIP, VIP2)), MCAST, V3)
    assert isinstance(result, Accepted)
    assert [n.reason for n in result.notes] == [DropReason.ADDR_COUNT]
    strict = replace(V3, strict_addresses=True)
    dropped(validate(v3(addrs=(VIP, VIP2)), MCAST, strict), DropReason.ADDR_COUNT)


def test_addr_mismatch_is_note_or_strict_drop_unless_owner() -> None:
    result = validate(v3(addrs=(VIP2,)), MCAST, V3)
    assert isinstance(result, Accepted)
    assert [n.reason for n in result.notes] == [DropReason.ADDR_MISMATCH]
    assert "192.0.2.101" in result.notes[0].detail
    strict = replace(V3, strict_addresses=True)
    dropped(validate(v3(addrs=(VIP2,)), MCAST, strict), DropReason.ADDR_MISMATCH)
    assert isinstance(validate(v3(prio=255, addrs=(VIP2,)), MCAST, strict), Accepted)


def test_address_order_does_not_matter() -> None:
    expect = replace(V3, addresses=(VIP, VIP2))
    result = validate(v3(addrs=(VIP2, VIP)), MCAST, expect)
    assert isinstance(result, Accepted)
    assert result.notes == ()


def test_unicast_src() -> None:
    other = IPv4Address("198.51.100.7")
    expect = replace(V3, unicast=True, check_unicast_src=True, unicast_peers=frozenset({other}))
    facts = IpFacts(src=PEER, dst=ME, ttl=255)
    dropped(validate(v3(dst=ME), facts, expect), DropReason.UNICAST_SRC)
    ok = replace(expect, unicast_peers=frozenset({PEER}))
    assert isinstance(validate(v3(dst=ME), facts, ok), Accepted)


def test_ipv6_hop_limit_and_checksum() -> None:
    src = IPv6Address("fe80::12")
    vip = IPv6Address("fe80::100")
    advert = Advert(3, 51, 100, (vip,), 100, family=6)
    wire = encode(advert, src=src)
    expect = Expectations(vrid=51, family=6, addresses=(vip,))
    facts = IpFacts(src=src, dst=MCAST_V6, ttl=255)
    assert isinstance(validate(wire, facts, expect), Accepted)
    dropped(validate(wire, replace(facts, ttl=1), expect), DropReason.TTL)
    other = IpFacts(src=IPv6Address("fe80::13"), dst=MCAST_V6, ttl=255)
    dropped(validate(wire, other, expect), DropReason.CHECKSUM)


def test_ipv6_first_address_must_be_link_local_erratum_8300() -> None:
    src = IPv6Address("fe80::12")
    vip = IPv6Address("2001:db8::100")
    wire = encode(Advert(3, 51, 100, (vip,), 100, family=6), src=src)
    expect = Expectations(vrid=51, family=6, addresses=(vip,))
    facts = IpFacts(src=src, dst=MCAST_V6, ttl=255)
    result = validate(wire, facts, expect)
    assert isinstance(result, Accepted)
    assert [n.reason for n in result.notes] == [DropReason.LINK_LOCAL]
    strict = replace(expect, strict_addresses=True)
    dropped(validate(wire, facts, strict), DropReason.LINK_LOCAL)


def test_every_drop_reason_is_exercised() -> None:
    # Guard: a new DropReason must come with a test above.
    source = inspect.getsource(sys.modules[__name__])
    for reason in DropReason:
        assert f"DropReason.{reason.name}" in source, reason


def test_counters() -> None:
    counters = ReceiveCounters()
    counters.record(validate(v3(), MCAST, V3))
    counters.record(validate(v3(prio=0), MCAST, V3))
    counters.record(validate(v3(interval=50), MCAST, V3))
    counters.record(validate(v3(vrid=9), MCAST, V3))
    counters.record(validate(v3(), replace(MCAST, ttl=1), V3))
    counters.record(validate(v3(), replace(MCAST, ttl=2), V3))
    snap = counters.snapshot()
    assert snap["accepted"] == 3
    assert snap["priority_zero"] == 1
    assert snap["drop.vrid"] == 1
    assert snap["drop.ttl"] == 2
    assert snap["note.interval"] == 1
    assert snap["checksum.pseudo"] == 3


@given(adverts(min_addrs=1), st.data())
def test_any_well_formed_advert_is_accepted_by_matching_instance(
    advert: Advert, data: st.DataObject
) -> None:
    src = data.draw(source_for(advert.family))
    dst = MCAST_V4 if advert.family == 4 else MCAST_V6
    wire = encode(advert, src=src, dst=dst)
    expect = Expectations(
        vrid=advert.vrid,
        version=advert.version,
        family=advert.family,
        interval_cs=advert.interval_cs,
        addresses=advert.addresses,
        auth_type=AuthType(advert.auth_type),
        auth_pass=advert.auth_data,
    )
    result = validate(wire, IpFacts(src=src, dst=dst, ttl=255), expect)
    assert isinstance(result, Accepted), result
    assert result.advert.priority == advert.priority


@given(st.binary(max_size=80))
def test_garbage_never_raises(data: bytes) -> None:
    result = validate(data, MCAST, V3)
    assert isinstance(result, (Accepted, Drop))


@pytest.mark.parametrize("n", [0, 1, 2])
def test_validate_does_not_accept_other_family_sizes(n: int) -> None:
    # An IPv6-sized advert on an IPv4 instance fails the length rule, not later ones.
    advert = Advert(3, 51, 100, tuple(IPv6Address(f"2001:db8::{i + 1}") for i in range(n)), 100, 6)
    wire = encode(advert, src=IPv6Address("fe80::1"))
    result = validate(wire, MCAST, V3)
    if n == 0:
        assert isinstance(result, Drop)
    else:
        dropped(result, DropReason.LENGTH)
