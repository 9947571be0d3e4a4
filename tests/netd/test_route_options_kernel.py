"""Multipath routes, route encapsulations, route metrics and the newer rule selectors against
a real kernel: netd installs them, pyroute2 reads them back, and a second reconcile finds
nothing to do (the adapter's own read-back satisfies the desired item)."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import pytest

import core
from ctl.snapshot import collect
from netd import NETD_PROTO, Action, KernelAdapter, Route, Rule
from netd.desired import Encap, Nexthop
from netd.fromconfig import static_items
from tests.daemon import daemon_group
from tests.lab import Node, wait_until

pytestmark = pytest.mark.netns

LWTUNNEL_ENCAP_IP = 2
LWTUNNEL_ENCAP_IP6 = 4
RTAX_FEATURE_ECN = 1
FIB_RULE_INVERT = 0x02


def _route_msgs(node: Node, dst: str, table: int = 254) -> list[Any]:
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with node.ipr() as ipr:
        msgs = list(ipr.route("dump", family=family, table=table))
    net, plen = dst.split("/")
    return [
        m
        for m in msgs
        if m.get("RTA_DST") == net and m["dst_len"] == int(plen) and m.get("RTA_TABLE") == table
    ]


def _one_route(node: Node, dst: str, table: int = 254) -> Any:
    found = _route_msgs(node, dst, table)
    assert len(found) == 1, found
    return found[0]


def _ip_show(node: Node, dst: str) -> str:
    """iproute2's decoding, for the encapsulations pyroute2 0.9 cannot decode."""
    fam = "-6" if ":" in dst else "-4"
    return node.run(["ip", "-d", fam, "route", "show", dst]).stdout


def _installed_once(ka: KernelAdapter, *items: Route | Rule) -> None:
    res = ka.reconcile(list(items))
    assert res.ok, res.failures
    again = ka.reconcile(list(items))
    assert again.done == () and again.ok, again.done  # read back satisfies desired


@pytest.mark.parametrize(
    "route",
    [
        Route(
            "198.51.100.0/24",
            nexthops=(
                Nexthop(via="192.0.2.1", dev="eth0", weight=2),
                Nexthop(via="192.0.2.2", dev="eth0", weight=5),
            ),
        ),
        Route(
            "2001:db8:1::/64",
            nexthops=(Nexthop(via="2001:db8::1", weight=3), Nexthop(via="2001:db8::2")),
        ),
        Route(
            "203.0.113.0/24",
            table=100,
            nexthops=(
                Nexthop(via="192.0.2.1", dev="eth0"),
                Nexthop(via="198.51.100.1", dev="eth0", onlink=True, weight=7),
            ),
        ),
    ],
    ids=lambda r: r.dst,
)
def test_multipath_nexthops_with_weights_reach_the_kernel(
    node: Node, ka: KernelAdapter, route: Route
) -> None:
    _installed_once(ka, route)
    msg = _one_route(node, route.dst, route.table)
    assert msg["proto"] == NETD_PROTO
    hops = msg.get("RTA_MULTIPATH")
    eth0 = node.ifindex("eth0")
    assert [(h.get("RTA_GATEWAY"), h["hops"] + 1, h["oif"]) for h in hops] == [
        (nh.via, nh.weight, eth0) for nh in route.nexthops
    ]
    assert [bool(h["flags"] & 0x04) for h in hops] == [nh.onlink for nh in route.nexthops]


def test_multipath_weight_change_is_a_replace_and_removal_clears_it(
    node: Node, ka: KernelAdapter
) -> None:
    def mp(w1: int, w2: int) -> Route:
        return Route(
            "198.51.100.0/24",
            nexthops=(Nexthop(via="192.0.2.1", weight=w1), Nexthop(via="192.0.2.2", weight=w2)),
        )

    _installed_once(ka, mp(1, 1))
    res = ka.reconcile([mp(1, 4)])
    assert [op.action for op in res.done] == [Action.REPLACE]
    hops = _one_route(node, "198.51.100.0/24").get("RTA_MULTIPATH")
    assert [h["hops"] + 1 for h in hops] == [1, 4]
    assert ka.reconcile([]).ok
    assert _route_msgs(node, "198.51.100.0/24") == []


@pytest.mark.parametrize(
    ("route", "encap_type", "expect"),
    [
        (
            Route(
                "198.51.100.1/32",
                dev="eth0",
                encap=Encap("ip", id=5, dst="192.0.2.50", src="192.0.2.9", tos=8, ttl=3),
            ),
            LWTUNNEL_ENCAP_IP,
            "encap ip id 5 src 192.0.2.9 dst 192.0.2.50 ttl 3 tos 8 ",
        ),
        (
            Route("198.51.100.2/32", dev="eth0", encap=Encap("ip", dst="192.0.2.51")),
            LWTUNNEL_ENCAP_IP,
            "encap ip id 0 src 0.0.0.0 dst 192.0.2.51 ttl 0 tos 0 ",
        ),
        (
            Route(
                "2001:db8:3::/64",
                dev="eth0",
                encap=Encap("ip6", id=6, dst="2001:db8::50", tos=2, ttl=4),
            ),
            LWTUNNEL_ENCAP_IP6,
            "encap ip6 id 6 src :: dst 2001:db8::50 hoplimit 4 tc 2 ",
        ),
        (
            Route(
                "198.51.100.3/32",
                nexthops=(
                    Nexthop(via="192.0.2.1", encap=Encap("ip", id=9, dst="192.0.2.52")),
                    Nexthop(via="192.0.2.2"),
                ),
            ),
            LWTUNNEL_ENCAP_IP,
            "encap ip id 9 src 0.0.0.0 dst 192.0.2.52 ttl 0 tos 0 via 192.0.2.1",
        ),
    ],
    ids=lambda v: getattr(v, "dst", None),
)
def test_ip_and_ip6_encap_reach_the_kernel(
    node: Node, ka: KernelAdapter, route: Route, encap_type: int, expect: str
) -> None:
    _installed_once(ka, route)
    msg = _one_route(node, route.dst)
    if route.nexthops:
        (hop, plain) = msg.get("RTA_MULTIPATH")
        assert hop.get("RTA_ENCAP_TYPE") == encap_type and plain.get("RTA_ENCAP_TYPE") is None
    else:
        assert msg.get("RTA_ENCAP_TYPE") == encap_type
    assert expect in _ip_show(node, route.dst)


@pytest.mark.parametrize(
    "encap",
    [Encap("mpls", labels=(100, 200)), Encap("ila", locator="2001:db8:1:2")],
    ids=lambda e: e.type,
)
def test_encap_kinds_this_kernel_lacks_fail_per_item_with_the_kernels_reason(
    node: Node, ka: KernelAdapter, encap: Encap
) -> None:
    dst = "2001:db8:5::/64" if encap.type == "ila" else "198.51.100.5/32"
    route = Route(dst, via="2001:db8::1" if ":" in dst else "192.0.2.1", encap=encap)
    bystander = Route("198.51.100.6/32", dev="eth0")
    res = ka.reconcile([route, bystander])
    if res.ok:  # a kernel with the module: then it must read back like the rest
        assert ka.reconcile([route, bystander]).done == ()
        return
    (failure,) = res.failures
    assert failure.op.item == route
    assert failure.code == errno.EOPNOTSUPP
    assert failure.errno_name == errno.errorcode[errno.EOPNOTSUPP]
    assert "encapsulation type not supported" in failure.reason
    assert _route_msgs(node, "198.51.100.6/32")  # the rest of the batch went in


def test_route_metrics_realms_tos_and_ipv6_pref_reach_the_kernel(
    node: Node, ka: KernelAdapter
) -> None:
    metrics = (
        ("lock", (1 << 8) | (1 << 16)),  # advmss and congctl locked
        ("window", 100),
        ("rtt", 80),
        ("rttvar", 20),
        ("ssthresh", 20),
        ("cwnd", 10),
        ("advmss", 1300),
        ("reordering", 3),
        ("hoplimit", 64),
        ("initcwnd", 10),
        ("features", RTAX_FEATURE_ECN),
        ("rto_min", 5),
        ("initrwnd", 11),
        ("quickack", 1),
        ("congctl", "cubic"),
        ("fastopen_no_cookie", 1),  # pyroute2 0.9 cannot name it; iproute2 can
    )
    v4 = Route("198.51.100.0/24", dev="eth0", metrics=metrics, mtu=1400, realms=0x30004, tos=8)
    v6 = Route("2001:db8:7::/64", dev="eth0", pref=1, expires=300)
    _installed_once(ka, v4, v6)
    msg = _one_route(node, v4.dst)
    got = dict(msg.get("RTA_METRICS")["attrs"])
    got.pop("UNKNOWN")
    assert "fastopen_no_cookie 1" in _ip_show(node, v4.dst)
    want = {f"RTAX_{k.upper()}": v for k, v in metrics if k != "fastopen_no_cookie"}
    want["RTAX_CC_ALGO"] = want.pop("RTAX_CONGCTL")
    want["RTAX_MTU"] = 1400
    assert got == want
    assert msg.get("RTA_FLOW") == 0x30004 and msg["tos"] == 8
    msg6 = _one_route(node, v6.dst)
    assert msg6.get("RTA_PREF") == 1  # high
    assert msg6.get("RTA_CACHEINFO")["rta_expires"] > 0  # counting down from 300 s
    assert " expires " in _ip_show(node, v6.dst)


@pytest.mark.parametrize(
    ("rule", "expect"),
    [
        (Rule(priority=2000, table=100, uid_start=100, uid_end=200), {"FRA_UID_RANGE": (100, 200)}),
        (
            Rule(
                priority=2001,
                table=101,
                ip_proto=6,
                sport_start=1000,
                sport_end=2000,
                dport_start=80,
                dport_end=80,
            ),
            {"FRA_IP_PROTO": 6, "FRA_SPORT_RANGE": (1000, 2000), "FRA_DPORT_RANGE": (80, 80)},
        ),
        (Rule(priority=2002, l3mdev=True), {"FRA_L3MDEV": 1}),
        (Rule(priority=2003, table=103, tun_id=77), {"FRA_TUN_ID": 77}),
        (Rule(priority=2004, table=104, realms=0x30004), {"FRA_FLOW": 0x30004}),
        (Rule(priority=2005, table=105, suppress_ifgroup=2), {"FRA_SUPPRESS_IFGROUP": 2}),
        (Rule(priority=2006, table=106, suppress_prefixlength=8), {"FRA_SUPPRESS_PREFIXLEN": 8}),
        (Rule(priority=2007, table=107, src="192.0.2.0/24", invert=True), {"flags": 2}),
        (Rule(priority=2008, action="nop", tos=0x10), {"action": 3, "tos": 0x10}),
        (
            Rule(
                priority=2009,
                table=109,
                family=socket.AF_INET6,
                ip_proto=17,
                dport_start=53,
                dport_end=53,
            ),
            {"FRA_IP_PROTO": 17, "FRA_DPORT_RANGE": (53, 53)},
        ),
    ],
    ids=lambda v: str(getattr(v, "priority", "")) or None,
)
def test_rule_selectors_reach_the_kernel(
    node: Node, ka: KernelAdapter, rule: Rule, expect: dict[str, object]
) -> None:
    _installed_once(ka, rule)
    with node.ipr() as ipr:
        found = [
            m
            for m in ipr.rule("dump", family=rule.family)
            if m.get("FRA_PRIORITY") == rule.priority
        ]
    assert len(found) == 1, found
    (msg,) = found
    assert msg.get("FRA_PROTOCOL") == NETD_PROTO
    for key, value in expect.items():
        got = msg.get(key) if key.startswith("FRA_") else msg[key]
        if isinstance(value, tuple):
            got = tuple(int(n) for n in str(got).split(":"))
        assert got == value, (key, msg)
    assert ka.reconcile([]).ok
    with node.ipr() as ipr:
        assert not [m for m in ipr.rule("dump") if m.get("FRA_PRIORITY") == rule.priority]


CONFIG = """
static_routes {
  198.51.100.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2 weight 3
  2001:db8:1::/64 nexthop via 2001:db8::1 weight 4 nexthop via 2001:db8::2 dev eth0
  198.51.100.1/32 dev eth0 encap ip id 5 dst 192.0.2.50 ttl 3 advmss lock 1300 rtt 10ms
  2001:db8:2::/64 dev eth0 encap ip6 dst 2001:db8::50 hoplimit 9 pref low
  203.0.113.0/24 via 192.0.2.1 or 192.0.2.2
  203.0.113.128/25 dev eth0 congctl lock cubic features ecn quickack 1 protocol static no_track
}
static_rules {
  from 192.0.2.0/24 uidrange 100-200 table 5 preference 100
  from 192.0.2.0/24 ipproto tcp sport 1000-2000 dport 443 table 5 preference 101
  l3mdev preference 102
  not from 198.51.100.0/24 tunnel-id 7 realms 3/4 table 6 preference 103
  to 203.0.113.0/24 suppress_ifgroup 2 sup_pl 8 dsfield 0x10 table 7 preference 104
}
"""


def test_config_to_kernel_end_to_end(node: Node, ka: KernelAdapter) -> None:
    loaded = core.loads(CONFIG, config_id="n", script_env=None)
    assert [p.code for p in loaded.problems] == ["deprecated"]  # the `or`
    items = static_items(loaded.config)
    res = ka.reconcile(items)
    assert res.ok, res.failures
    assert ka.reconcile(items).done == ()
    hops = _one_route(node, "198.51.100.0/24").get("RTA_MULTIPATH")
    assert [h["hops"] + 1 for h in hops] == [2, 3]
    assert len(_one_route(node, "203.0.113.0/24").get("RTA_MULTIPATH")) == 2  # `or`
    assert "encap ip id 5 src 0.0.0.0 dst 192.0.2.50 ttl 3 " in _ip_show(node, "198.51.100.1/32")
    metrics = dict(_one_route(node, "198.51.100.1/32").get("RTA_METRICS")["attrs"])
    assert metrics == {"RTAX_LOCK": 1 << 8, "RTAX_ADVMSS": 1300, "RTAX_RTT": 80}
    assert _one_route(node, "2001:db8:2::/64").get("RTA_PREF") == 3  # low
    assert _one_route(node, "203.0.113.128/25")["proto"] == 4  # static
    with node.ipr() as ipr:
        rules = {m.get("FRA_PRIORITY"): m for m in ipr.rule("dump", family=socket.AF_INET)}
    assert rules[100].get("FRA_UID_RANGE") == "100:200"
    assert rules[101].get("FRA_DPORT_RANGE") == "443:443"
    assert rules[102].get("FRA_L3MDEV") == 1
    assert rules[103]["flags"] & FIB_RULE_INVERT and rules[103].get("FRA_TUN_ID") == 7
    assert rules[104].get("FRA_SUPPRESS_IFGROUP") == 2 and rules[104]["tos"] == 0x10


DAEMON_CONFIG = """
global_defs {
    router_id n0
}
static_routes {
    198.51.100.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2 weight 3
    198.51.100.5/32 via 192.0.2.1 encap mpls 100/200
}
static_rules {
    from 192.0.2.0/24 ipproto tcp dport 443 table 5 preference 100
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.5
    virtual_ipaddress {
        192.0.2.100/24
    }
    virtual_routes {
        203.0.113.0/24 no_track nexthop via 192.0.2.1 weight 4 nexthop via 192.0.2.2
    }
}
"""


def test_daemon_installs_multipath_and_reports_an_unsupported_encap_in_net_applied(
    node: Node,
) -> None:
    loaded = core.loads(DAEMON_CONFIG, config_id="n", script_env=None)
    assert [p.severity for p in loaded.problems] == [], loaded.problems
    with daemon_group(node, DAEMON_CONFIG) as group:
        group.wait_started()

        def static_applied() -> dict[str, Any] | None:
            snap = asyncio.run(collect(group.runtime, listen=0.5))
            return snap.applied.get("static")

        body = wait_until(static_applied, 20, 0.2, "net.applied.static")
        if not body["failures"]:  # a kernel with mpls_iptunnel installs it
            assert _route_msgs(node, "198.51.100.5/32")
            return
        (failure,) = body["failures"]
        # named as the configuration gave it: the core model part, as on the bus everywhere
        spec = core.part_to_wire(loaded.config.static_routes[1])
        assert failure["item"] == {"kind": "route", "spec": spec}
        assert failure["errno"] == errno.errorcode[errno.EOPNOTSUPP]
        assert "lwt encapsulation type not supported" in failure["reason"]
        hops = _one_route(node, "198.51.100.0/24").get("RTA_MULTIPATH")
        assert [h["hops"] + 1 for h in hops] == [2, 3]
        wait_until(lambda: bool(_route_msgs(node, "203.0.113.0/24")), 20, 0.1, "the virtual route")
        hops = _one_route(node, "203.0.113.0/24").get("RTA_MULTIPATH")
        assert [h["hops"] + 1 for h in hops] == [4, 1]


@pytest.mark.parametrize(
    ("dst", "gw1", "gw2"),
    [
        ("198.51.100.0/24", "192.0.2.1", "192.0.2.2"),
        ("2001:db8:9::/64", "2001:db8::1", "2001:db8::2"),
    ],
)
def test_path_set_changes_converge(
    node: Node, ka: KernelAdapter, dst: str, gw1: str, gw2: str
) -> None:
    single = Route(dst, via=gw1)
    multi = Route(dst, nexthops=(Nexthop(via=gw1, weight=2), Nexthop(via=gw2)))
    gw3 = gw2[:-1] + "3"
    three = Route(dst, nexthops=(Nexthop(via=gw3), Nexthop(via=gw2), Nexthop(via=gw1)))
    for want in (single, multi, three, multi, single, three):
        res = ka.reconcile([want])
        assert res.ok, res.failures
        assert ka.reconcile([want]).done == (), want
        (msg,) = _route_msgs(node, dst)
        hops = msg.get("RTA_MULTIPATH") or []
        assert [h.get("RTA_GATEWAY") for h in hops] == [nh.via for nh in want.nexthops]


def test_ipv6_source_specific_routes_are_told_apart_by_their_source(
    node: Node, ka: KernelAdapter
) -> None:
    a = Route("2001:db8:4::/64", via="2001:db8::1", from_prefix="2001:db8:a::/48")
    b = Route("2001:db8:4::/64", via="2001:db8::2", from_prefix="2001:db8:b::/48")
    _installed_once(ka, a, b)
    with node.ipr() as ipr:
        got = {
            (m.get("RTA_SRC"), m["src_len"]): m.get("RTA_GATEWAY")
            for m in ipr.route("dump", family=socket.AF_INET6, table=254)
            if m.get("RTA_DST") == "2001:db8:4::"
        }
    assert got == {("2001:db8:a::", 48): "2001:db8::1", ("2001:db8:b::", 48): "2001:db8::2"}
    assert ka.reconcile([a]).ok
    assert len(_route_msgs(node, "2001:db8:4::/64")) == 1
