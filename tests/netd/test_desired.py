"""The desired-state model: normalisation, validation, origins and the state file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netd import (
    Address,
    InvalidItemError,
    Route,
    Rule,
    WireFormatError,
    describe,
    item_key,
    with_origin,
)
from netd.statefile import item_from_state, item_to_state


def test_brd_plus_and_minus_are_resolved() -> None:
    assert Address("10.9.3.1", 24, "eth0", brd="+").brd == "10.9.3.255"
    assert Address("10.9.3.1", 24, "eth0", brd="-").brd == "10.9.3.0"
    with pytest.raises(InvalidItemError):
        Address("10.9.3.1", 31, "eth0", brd="+")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ip": "192.0.2.300", "prefix": 32, "dev": "eth0"},
        {"ip": "192.0.2.1", "prefix": 33, "dev": "eth0"},
        {"ip": "192.0.2.1", "prefix": 32, "dev": ""},
        {"ip": "192.0.2.1", "prefix": 32, "dev": "eth0", "label": "x" * 16},
        {"ip": "2001:db8::1", "prefix": 64, "dev": "eth0", "label": "eth0:1"},
        {"ip": "2001:db8::1", "prefix": 64, "dev": "eth0", "scope": 253},
        {"ip": "192.0.2.1", "prefix": 32, "dev": "eth0", "peer": "2001:db8::1"},
    ],
)
def test_invalid_addresses_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidItemError):
        Address(**kwargs)


def test_ipv6_text_is_normalised_so_spellings_compare_equal() -> None:
    a = Address("2001:DB8:0::0:1", 64, "eth0")
    assert a == Address("2001:db8::1", 64, "eth0")
    assert item_key(a) == item_key(Address("2001:db8::1", 64, "eth0", no_track=True))


def test_route_defaults_match_kernel_spelling() -> None:
    assert Route("default", via="192.0.2.1").dst == "0.0.0.0/0"
    assert Route("default", via="2001:db8::1").dst == "::/0"
    assert Route("2001:db8:1::/64", dev="eth0").metric == 1024
    assert Route("198.51.100.7/24", dev="eth0", metric=0).dst == "198.51.100.0/24"
    assert Route("198.51.100.0/24", dev="eth0", metric=0).metric is None
    with pytest.raises(InvalidItemError):
        Route("198.51.100.0/24")  # unicast without via or dev
    with pytest.raises(InvalidItemError):
        Route("198.51.100.0/24", via="2001:db8::1")
    assert Route("198.51.100.0/24", type="blackhole").type == "blackhole"


def test_rule_validation_and_fwmask_default() -> None:
    assert Rule(priority=5, table=100, fwmark=3).fwmask == 0xFFFFFFFF
    assert Rule(priority=5, table=100, src="2001:db8::/64").family == 10
    with pytest.raises(InvalidItemError):
        Rule(priority=5)  # action "table" without a table
    with pytest.raises(InvalidItemError):
        Rule(priority=5, table=1, src="192.0.2.0/24", dst="2001:db8::/64")


def test_state_file_round_trip_keeps_every_field_but_the_origin() -> None:
    items = (
        Address("192.0.2.100", 24, "eth0", brd="+", label="eth0:vip", no_track=True),
        Address("2001:db8::100", 128, "eth0"),
        Route("198.51.100.0/24", via="192.0.2.1", table=100, metric=5),
        Route("203.0.113.0/24", type="blackhole"),
        Rule(priority=100, table=100, src="192.0.2.100/32", fwmark=4),
    )
    for item in items:
        with_origin(item, "route", {"dst": "x"})
        saved = json.loads(json.dumps(item_to_state(item)))
        assert "origin" not in saved
        back = item_from_state(saved)
        assert back == item and back.origin is None
    assert item_from_state(item_to_state(items[0])).no_track is True


def test_the_origin_takes_no_part_in_identity_or_equality() -> None:
    a = Address("192.0.2.100", 24, "eth0")
    b = with_origin(Address("192.0.2.100", 24, "eth0"), "vip", {"address": "192.0.2.100/24"})
    assert a == b and hash(a) == hash(b) and item_key(a) == item_key(b)
    assert b.origin == {"kind": "vip", "spec": {"address": "192.0.2.100/24"}}
    assert describe(b) == "addr ip=192.0.2.100 prefix=24 dev=eth0"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"kind": "tunnel"},
        {"kind": "addr", "ip": "x", "prefix": 1},
        {"kind": "addr", "bogus": 1},
        {"kind": "route", "dst": [1]},
    ],
)
def test_bad_state_entries_raise_wire_format_error(payload: object) -> None:
    with pytest.raises(WireFormatError):
        item_from_state(payload)  # type: ignore[arg-type]  # malformed on purpose


@given(
    host=st.integers(1, 254),
    prefix=st.integers(0, 32),
    label=st.sampled_from([None, "eth0:v"]),
    scope=st.sampled_from([0, 200, 253, 254]),
)
def test_address_wire_round_trip(host: int, prefix: int, label: str | None, scope: int) -> None:
    a = Address(f"192.0.2.{host}", prefix, "eth0", label=label, scope=scope)
    assert item_from_state(json.loads(json.dumps(item_to_state(a)))) == a
