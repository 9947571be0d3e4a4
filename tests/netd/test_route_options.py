"""Pure logic for multipath routes, encapsulations, metrics and rule selectors: the desired
model's validation and wire form, the config mapping, the loose nexthop comparison and the
hand-written route message codec (no kernel)."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

import core
from netd import InvalidItemError, Route, Rule, WireFormatError, item_from_wire, item_to_wire
from netd.desired import ROUTE_METRICS, Encap, Nexthop
from netd.fromconfig import intent_items
from netd.fromconfig import route as route_from_config
from netd.fromconfig import rule as rule_from_config
from netd.reconcile import satisfies
from netd.routemsg import encode_route, parse_rtmsg

IFINDEX = {"eth0": 2, "eth1": 3}


def _decoded(route: Route) -> dict[str, Any]:
    body = encode_route(route, False, 112, IFINDEX.__getitem__)
    data = struct.pack("=IHHII", 16 + len(body), 24, 0, 1, 0) + body
    return parse_rtmsg(data, 0, len(data))


def test_one_nexthop_is_spelled_as_a_plain_route() -> None:
    one = Route("198.51.100.0/24", nexthops=(Nexthop(via="192.0.2.1", dev="eth0", onlink=True),))
    assert one == Route("198.51.100.0/24", via="192.0.2.1", dev="eth0", onlink=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nexthops": (Nexthop(via="2001:db8::1"), Nexthop(dev="eth0"))}, "another family"),
        ({"via": "192.0.2.1", "nexthops": (Nexthop(dev="eth0"), Nexthop(dev="eth1"))}, "via/dev"),
        ({"dev": "eth0", "pref": 1}, "pref is IPv6-only"),
        ({"dev": "eth0", "expires": 5}, "expires is IPv6-only"),
        ({"dev": "eth0", "metrics": (("bogus", 1),)}, "unknown metric"),
        ({"dev": "eth0", "metrics": (("advmss", -1),)}, "not a 32-bit"),
        ({"dev": "eth0", "metrics": (("congctl", 5),)}, "congctl needs a name"),
    ],
)
def test_route_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidItemError, match=message):
        Route("198.51.100.0/24", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "gre"}, "unknown type"),
        ({"type": "mpls"}, "at least one label"),
        ({"type": "mpls", "labels": (1 << 20,)}, "20-bit"),
        ({"type": "ip"}, "needs a dst or an id"),
        ({"type": "ip", "dst": "2001:db8::1"}, "another family"),
        ({"type": "ip6", "id": 1, "ttl": 256}, "8-bit"),
        ({"type": "ila", "locator": "1:2:3"}, "bad locator"),
    ],
)
def test_encap_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidItemError, match=message):
        Encap(**kwargs)


def test_encap_spelling_matches_the_kernel() -> None:
    assert Encap("ip", dst="192.0.2.1", src="0.0.0.0").src is None
    assert Encap("ila", locator="2001:DB8:1:2").locator == "2001:0db8:0001:0002"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"l3mdev": True, "table": 5}, "l3mdev takes no table"),
        ({"table": 5, "uid_start": 5}, "uid_start needs uid_end"),
        ({"table": 5, "sport_start": 9, "sport_end": 8}, "sport_start above sport_end"),
        ({"table": 5, "dport_start": 1, "dport_end": 70000}, "16-bit"),
        ({"table": 5, "ip_proto": 300}, "8-bit"),
    ],
)
def test_rule_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidItemError, match=message):
        Rule(priority=5, **kwargs)


ROUTES = [
    Route(
        "198.51.100.0/24",
        nexthops=(
            Nexthop(via="192.0.2.1", dev="eth0", weight=3, realms=5),
            Nexthop(via="192.0.2.2", onlink=True, encap=Encap("ip", id=7, dst="192.0.2.9")),
        ),
        metrics=(("congctl", "cubic"), ("advmss", 1300), ("lock", 256)),
        realms=0x30004,
    ),
    Route(
        "2001:db8:1::/64",
        dev="eth0",
        encap=Encap("ip6", id=1, dst="2001:db8::5", tos=2, ttl=3, flags=1),
        pref=1,
        expires=60,
    ),
    Route("198.51.100.9/32", via="192.0.2.1", encap=Encap("mpls", labels=(16, 17))),
    Route("2001:db8:2::/64", dev="eth0", encap=Encap("ila", locator="1:2:3:4")),
    Route("2001:db8:3::/64", via="2001:db8::1", from_prefix="2001:db8:a::/48"),
]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.dst)
def test_route_wire_round_trip_through_json(route: Route) -> None:
    # The state file is JSON, the bus msgpack: lists must come back as tuples.
    back = item_from_wire(json.loads(json.dumps(item_to_wire(route))))
    assert back == route and back.expires == route.expires


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "route", "dst": "198.51.100.0/24", "dev": "eth0", "encap": "ip"},
        {"kind": "route", "dst": "198.51.100.0/24", "nexthops": [{"via": "192.0.2.1", "x": 1}]},
        {"kind": "route", "dst": "198.51.100.0/24", "nexthops": ["192.0.2.1"]},
        {"kind": "route", "dst": "198.51.100.0/24", "dev": "eth0", "metrics": [["advmss"]]},
        {"kind": "route", "dst": "198.51.100.0/24", "dev": "eth0", "encap": {"type": "x"}},
        {"kind": "rule", "priority": 1, "table": 1, "metrics": [["advmss", 1]]},
    ],
)
def test_malformed_route_wire_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(WireFormatError):
        item_from_wire(bad)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.dst)
def test_route_message_codec_round_trip(route: Route) -> None:
    got = _decoded(route)
    assert got["family"] == route.family and got["proto"] == 112
    if route.encap is not None:
        enc = dict(got["RTA_ENCAP"])
        assert Encap(**enc) == route.encap
    hops = got.get("RTA_MULTIPATH", [])
    assert len(hops) == len(route.nexthops)
    for hop, nh in zip(hops, route.nexthops, strict=True):
        assert hop.get("RTA_GATEWAY") == nh.via and hop["weight"] == nh.weight
        assert hop["oif"] == (IFINDEX[nh.dev] if nh.dev else 0)
        assert bool(hop["flags"] & 0x04) == nh.onlink and hop.get("RTA_FLOW") == nh.realms
        assert (Encap(**hop["RTA_ENCAP"]) if "RTA_ENCAP" in hop else None) == nh.encap
    assert got.get("RTA_FLOW") == route.realms and got.get("RTA_PREF") == route.pref
    assert got.get("RTA_EXPIRES") == route.expires
    src = f"{got.get('RTA_SRC')}/{got['src_len']}" if got["src_len"] else None
    assert src == route.from_prefix
    assert dict(got.get("RTA_METRICS", {})) == dict(route.metrics)


@given(
    weights=st.lists(st.integers(1, 256), min_size=2, max_size=6),
    labels=st.lists(st.integers(0, 0xFFFFF), min_size=1, max_size=4),
    metrics=st.dictionaries(
        st.sampled_from([m for m in ROUTE_METRICS if m != "congctl"]),
        st.integers(0, 2**32 - 1),
    ),
)
def test_route_codec_property(
    weights: list[int], labels: list[int], metrics: dict[str, int]
) -> None:
    route = Route(
        "198.51.100.0/24",
        nexthops=tuple(
            Nexthop(via=f"192.0.2.{i + 1}", weight=w, encap=Encap("mpls", labels=tuple(labels)))
            for i, w in enumerate(weights)
        ),
        metrics=tuple(metrics.items()),
    )
    got = _decoded(route)
    hops = got["RTA_MULTIPATH"]
    assert [h["weight"] for h in hops] == weights
    assert all(h["RTA_ENCAP"]["labels"] == tuple(labels) for h in hops)
    assert dict(got.get("RTA_METRICS", {})) == metrics


def test_delete_names_only_the_identity() -> None:
    body = encode_route(ROUTES[0], True, 112, IFINDEX.__getitem__)
    data = struct.pack("=IHHII", 16 + len(body), 25, 0, 1, 0) + body
    got = parse_rtmsg(data, 0, len(data))
    assert "RTA_MULTIPATH" not in got and "RTA_METRICS" not in got and got["scope"] == 255


def test_nexthop_without_dev_is_satisfied_by_the_kernels_choice() -> None:
    want = Route("198.51.100.0/24", nexthops=(Nexthop(via="192.0.2.1"), Nexthop(via="192.0.2.2")))
    have = Route(
        "198.51.100.0/24",
        nexthops=(Nexthop(via="192.0.2.1", dev="eth0"), Nexthop(via="192.0.2.2", dev="eth0")),
        scope=0,
    )
    assert satisfies(want, have)
    other = Route(
        "198.51.100.0/24",
        nexthops=(Nexthop(via="192.0.2.1", dev="eth0", weight=2), Nexthop(via="192.0.2.2")),
    )
    assert not satisfies(want, other)
    pinned = Route(
        "198.51.100.0/24",
        nexthops=(Nexthop(via="192.0.2.1", dev="eth1"), Nexthop(via="192.0.2.2")),
    )
    assert not satisfies(pinned, have)


def _parsed_route(line: str) -> core.Route:
    r = core.loads(f"static_routes {{\n {line}\n}}\n", config_id="n", script_env=None)
    (route,) = r.config.static_routes
    return route


def test_route_options_map_onto_kernel_values() -> None:
    got = route_from_config(
        _parsed_route(
            "198.51.100.0/24 dev eth0 rtt 10ms rttvar 5ms rto_min 1s advmss lock 1300 "
            "mtu lock 1400 congctl lock bbr features ecn realms 3/4 tos 0x10 protocol static "
            "no_track"
        ),
        None,
    )
    assert dict(got.metrics) == {
        "rtt": 80,
        "rttvar": 20,
        "rto_min": 1000,
        "advmss": 1300,
        "congctl": "bbr",
        "features": 1,
        "lock": (1 << 8) | (1 << 2) | (1 << 16) | (1 << 13),  # rto_min: always locked
    }
    assert (got.mtu, got.realms, got.tos, got.proto) == (1400, 0x30004, 16, 4)
    raw = route_from_config(_parsed_route("198.51.100.0/24 dev eth0 rtt 10"), None)
    assert dict(raw.metrics) == {"rtt": 10}  # no unit: the kernel's own units
    v6 = route_from_config(_parsed_route("2001:db8::/64 dev eth0 pref low expires 30"), None)
    assert (v6.pref, v6.expires) == (3, 30)


def test_nexthops_inherit_the_route_dev_and_or_becomes_two_paths() -> None:
    got = route_from_config(
        _parsed_route(
            "198.51.100.0/24 dev eth1 nexthop via 192.0.2.1 weight 2 nexthop via 192.0.2.2 "
            "dev eth0 realms 7 encap ip id 3"
        ),
        "eth9",
    )
    assert got.dev is None and got.nexthops == (
        Nexthop(via="192.0.2.1", dev="eth1", weight=2),
        Nexthop(via="192.0.2.2", dev="eth0", realms=7, encap=Encap("ip", id=3)),
    )
    either = route_from_config(_parsed_route("198.51.100.0/24 via 192.0.2.1 or 192.0.2.2"), None)
    assert either.via is None
    assert either.nexthops == (Nexthop(via="192.0.2.1"), Nexthop(via="192.0.2.2"))


def test_rule_selectors_map_onto_kernel_values() -> None:
    text = (
        "static_rules {\n"
        " not from 192.0.2.0/24 uidrange 10-20 ipproto udp sport 53 dport 1000-2000 "
        "tunnel-id 9 realms 3/4 suppress_ifgroup 2 sup_pl 8 tos 0x10 protocol 99 table 5 pref 7 "
        "no_track\n"
        " l3mdev pref 8\n"
        "}\n"
    )
    parts = core.loads(text, config_id="n", script_env=None).config.static_rules
    full, l3 = (rule_from_config(p, i) for i, p in enumerate(parts))
    assert full == Rule(
        priority=7,
        table=5,
        src="192.0.2.0/24",
        invert=True,
        uid_start=10,
        uid_end=20,
        ip_proto=socket.IPPROTO_UDP,
        sport_start=53,
        sport_end=53,
        dport_start=1000,
        dport_end=2000,
        tun_id=9,
        realms=0x30004,
        suppress_ifgroup=2,
        suppress_prefixlength=8,
        tos=16,
        protocol=99,
    )
    assert l3 == Rule(priority=8, l3mdev=True)


def test_vrrpd_intent_carries_nexthops_encap_and_rule_selectors() -> None:
    text = (
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n"
        " virtual_ipaddress {\n  192.0.2.100/24\n }\n"
        " virtual_routes {\n"
        "  198.51.100.0/24 nexthop via 192.0.2.1 weight 2 encap mpls 16/17 nexthop via 192.0.2.2\n"
        " }\n"
        " virtual_rules {\n"
        "  from 192.0.2.0/24 uidrange 1-2 ipproto tcp dport 22 table 5 pref 9\n"
        " }\n"
        "}\n"
    )
    inst = core.loads(text, config_id="n", script_env=None).config.instances[0]
    entries = [{"kind": "route", "spec": core.part_to_wire(r)} for r in inst.virtual_routes]
    entries += [{"kind": "rule", "spec": core.part_to_wire(r)} for r in inst.virtual_rules]
    on_the_bus = msgpack.unpackb(msgpack.packb(entries))
    route, rule = intent_items(on_the_bus, "eth0")
    assert route == Route(
        "198.51.100.0/24",
        nexthops=(
            Nexthop(via="192.0.2.1", weight=2, encap=Encap("mpls", labels=(16, 17))),
            Nexthop(via="192.0.2.2"),
        ),
    )
    assert isinstance(rule, Rule)
    assert (rule.uid_start, rule.uid_end, rule.ip_proto, rule.dport_start) == (1, 2, 6, 22)
