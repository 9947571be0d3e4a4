"""Kernel adapter against a real kernel in a lab namespace: apply, read back, idempotency,
ownership markers and leftovers."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from netd import (
    NETD_PROTO,
    Action,
    Address,
    Item,
    KernelAdapter,
    Operation,
    Route,
    Rule,
    item_key,
)
from tests.lab import Node

pytestmark = pytest.mark.netns

IFA_F_NODAD = 0x02
IFA_F_DEPRECATED = 0x20


def _addr(node: Node, ip: str) -> dict[str, Any]:
    found = [a for a in node.addresses() if a["address"] == ip]
    assert len(found) == 1, node.addresses()
    return found[0]


@pytest.mark.parametrize(
    ("item", "expect"),
    [
        (Address("192.0.2.100", 32, "eth0"), {"prefixlen": 32, "scope": 0, "brd": None}),
        (Address("192.0.2.101", 24, "eth0", brd="+"), {"brd": "192.0.2.255"}),
        (Address("192.0.2.102", 24, "eth0", brd="192.0.2.77"), {"brd": "192.0.2.77"}),
        (Address("192.0.2.103", 32, "eth0", label="eth0:vip"), {"label": "eth0:vip"}),
        (Address("192.0.2.104", 32, "eth0", scope=253), {"scope": 253}),
        (Address("192.0.2.105", 32, "eth0", scope=254), {"scope": 254}),
        (Address("192.0.2.106", 32, "eth0", peer="198.51.100.1"), {"peer": "198.51.100.1"}),
        (Address("2001:db8::100", 64, "eth0"), {"prefixlen": 64}),
        (Address("2001:db8::101", 128, "eth0"), {"prefixlen": 128}),
        (Address("192.0.2.107", 24, "eth0", noprefixroute=True), {"prefixlen": 24}),
        (Address("2001:db8::102", 64, "eth0", home=True, mngtmpaddr=True), {"prefixlen": 64}),
    ],
    ids=lambda v: str(getattr(v, "cidr", "")) or None,
)
def test_address_options_reach_the_kernel(
    node: Node, ka: KernelAdapter, item: Address, expect: dict[str, object]
) -> None:
    res = ka.reconcile([item])
    assert res.ok, res.failures
    got = _addr(node, item.ip)
    assert got["ifname"] == "eth0"
    assert got["proto"] == NETD_PROTO
    for key, value in expect.items():
        assert got[key] == value, (key, got)
    if item.family == socket.AF_INET6:
        assert int(got["flags"]) & IFA_F_NODAD
        deprecated = bool(int(got["flags"]) & IFA_F_DEPRECATED)
        assert deprecated == (item.prefix == 128)  # keepalived: /128 gets preferred_lft 0
    flags = int(got["flags"])
    assert bool(flags & 0x200) == item.noprefixroute
    assert bool(flags & 0x10) == item.home and bool(flags & 0x100) == item.mngtmpaddr
    # Read back through the adapter too: the kernel's item satisfies the desired one.
    assert ka.reconcile([item]).done == ()


def test_apply_is_idempotent_for_add_and_delete(node: Node, ka: KernelAdapter) -> None:
    vip = Address("192.0.2.200", 32, "eth0")
    add = Operation(Action.ADD, vip)
    assert ka.apply([add]).ok
    second = ka.apply([add])  # EEXIST is a success
    assert second.ok and second.done == (add,)
    delete = Operation(Action.DELETE, vip)
    assert ka.apply([delete]).ok
    assert "192.0.2.200/32" not in node.address_set()
    assert ka.apply([delete]).ok  # EADDRNOTAVAIL is a success
    route = Route("198.51.100.0/24", via="192.0.2.1")
    assert ka.apply([Operation(Action.DELETE, route)]).ok  # ESRCH is a success
    rule = Rule(priority=1234, table=100, src="192.0.2.0/24")
    assert ka.apply([Operation(Action.DELETE, rule)]).ok  # ENOENT is a success


def test_failures_carry_the_kernel_reason(ka: KernelAdapter) -> None:
    res = ka.apply([Operation(Action.ADD, Address("192.0.2.1", 32, "nosuchdev"))])
    assert not res.ok
    assert res.failures[0].errno_name == "ENODEV"
    # Gateway not reachable on any interface: the kernel says ENETUNREACH.
    res = ka.apply([Operation(Action.ADD, Route("198.51.100.0/24", via="203.0.113.1"))])
    assert [f.errno_name for f in res.failures] == ["ENETUNREACH"]
    assert "unreachable" in res.failures[0].reason


def test_reconcile_converges_and_counts_calls(node: Node, ka: KernelAdapter) -> None:
    desired = [Address(f"192.0.2.{i}", 32, "eth0") for i in range(100, 110)]
    before = ka.netlink_calls
    first = ka.reconcile(desired)
    assert len(first.done) == 10 and first.ok
    assert ka.netlink_calls - before >= 10
    assert ka.reconcile(desired).done == ()
    assert {a.cidr for a in desired} <= node.address_set("eth0")
    third = ka.reconcile(desired[:3])
    assert {op.action for op in third.done} == {Action.DELETE}
    assert len(third.done) == 7
    assert not {a.cidr for a in desired[3:]} & node.address_set("eth0")


@pytest.mark.parametrize(
    ("route", "expect"),
    [
        (Route("198.51.100.0/24", via="192.0.2.1"), {"via": "192.0.2.1", "dev": "eth0"}),
        (Route("198.51.100.0/25", dev="eth0"), {"dev": "eth0", "scope": 253}),
        (
            Route("198.51.100.128/25", via="192.0.2.1", src="192.0.2.10"),
            {"src": "192.0.2.10"},
        ),
        (Route("203.0.113.0/24", via="192.0.2.1", table=100), {"table": 100}),
        (Route("203.0.113.0/28", via="192.0.2.1", table=1000), {"table": 1000}),
        (Route("203.0.113.16/28", dev="eth0", mtu=1400), {"dev": "eth0"}),
        (Route("203.0.113.0/25", via="192.0.2.1", metric=77), {"metric": 77}),
        (Route("203.0.113.128/25", type="blackhole"), {"type": 6}),
        (Route("203.0.113.64/26", type="unreachable", table=101), {"type": 7}),
        (Route("203.0.113.32/27", type="prohibit"), {"type": 8}),
        (Route("default", via="192.0.2.1", table=102), {"dst": "default"}),
        (Route("2001:db8:1::/64", via="2001:db8::1"), {"via": "2001:db8::1", "metric": 1024}),
        (Route("2001:db8:2::/64", type="blackhole", metric=5), {"type": 6, "metric": 5}),
        (Route("198.51.100.0/26", via="203.0.113.1", dev="eth0", onlink=True), {}),
    ],
    ids=lambda v: getattr(v, "dst", None),
)
def test_route_options_reach_the_kernel(
    node: Node, ka: KernelAdapter, route: Route, expect: dict[str, object]
) -> None:
    res = ka.reconcile([route])
    assert res.ok, res.failures
    dst = "default" if route.dst.endswith("/0") else route.dst
    got = [r for r in node.routes(table=route.table) if r["dst"] == dst]
    assert len(got) == 1, node.routes(table=route.table)
    assert got[0]["proto"] == NETD_PROTO
    for key, value in expect.items():
        assert got[0][key] == value, (key, got[0])
    assert ka.reconcile([route]).done == ()  # read back satisfies desired


def test_route_change_is_replaced_in_place(node: Node, ka: KernelAdapter) -> None:
    assert ka.reconcile([Route("198.51.100.0/24", via="192.0.2.1")]).ok
    res = ka.reconcile([Route("198.51.100.0/24", via="192.0.2.2")])
    assert [op.action for op in res.done] == [Action.REPLACE]
    got = [r for r in node.routes() if r["dst"] == "198.51.100.0/24"]
    assert [r["via"] for r in got] == ["192.0.2.2"]


@pytest.mark.parametrize(
    ("rule", "expect"),
    [
        (Rule(priority=1000, table=100, src="192.0.2.0/24"), {"from": "192.0.2.0/24"}),
        (Rule(priority=1001, table=101, dst="198.51.100.0/24"), {"to": "198.51.100.0/24"}),
        (Rule(priority=1002, table=102, iif="eth0"), {"iif": "eth0"}),
        (Rule(priority=1003, table=103, fwmark=7), {"fwmark": 7}),
        (Rule(priority=1004, table=104, src="2001:db8::/64"), {"from": "2001:db8::/64"}),
        (Rule(priority=1005, table=1000, oif="eth0"), {"oif": "eth0"}),
        (Rule(priority=1006, table=106, fwmark=8, fwmask=0xFF), {"fwmark": 8}),
    ],
    ids=lambda v: str(getattr(v, "priority", "")) or None,
)
def test_rule_options_reach_the_kernel(
    node: Node, ka: KernelAdapter, rule: Rule, expect: dict[str, object]
) -> None:
    res = ka.reconcile([rule])
    assert res.ok, res.failures
    got = [r for r in node.rules(rule.family) if r["priority"] == rule.priority]
    assert len(got) == 1
    assert got[0]["table"] == rule.table and got[0]["protocol"] == NETD_PROTO
    for key, value in expect.items():
        assert got[0][key] == value, (key, got[0])
    assert ka.reconcile([rule]).done == ()
    assert ka.reconcile([]).ok
    assert not [r for r in node.rules(rule.family) if r["priority"] == rule.priority]


def test_addresses_before_routes_that_use_them_as_src(node: Node, ka: KernelAdapter) -> None:
    vip = Address("198.51.100.1", 24, "eth0")
    route = Route("203.0.113.0/24", dev="eth0", src="198.51.100.1")
    res = ka.reconcile([route, vip])  # listed the wrong way round on purpose
    assert res.ok, res.failures
    assert [r["src"] for r in node.routes() if r["dst"] == "203.0.113.0/24"] == ["198.51.100.1"]


def test_leftovers_found_and_cleaned_operator_address_untouched(node: Node, tmp_path: Path) -> None:
    node.run(["ip", "addr", "add", "192.0.2.250/32", "dev", "eth0"])  # by hand, not ours
    with node.inside():
        first = KernelAdapter(state_dir=tmp_path)
    items: list[Item] = [
        Address("192.0.2.100", 32, "eth0"),
        Address("2001:db8::100", 128, "eth0"),
        Route("198.51.100.0/24", via="192.0.2.1", table=100),
        Rule(priority=1000, table=100, src="192.0.2.100/32"),
    ]
    assert first.reconcile(items).ok
    first.close()  # "crash": nothing removed

    with node.inside():
        fresh = KernelAdapter()  # no state file: markers alone must find them
    try:
        left = fresh.find_leftovers()
        assert {item_key(i) for i in left} == {item_key(i) for i in items}
        assert fresh.cleanup().ok
        assert fresh.find_leftovers() == []
    finally:
        fresh.close()
    addrs = node.address_set("eth0")
    assert "192.0.2.250/32" in addrs  # the operator's address survives
    assert "192.0.2.100/32" not in addrs and "2001:db8::100/128" not in addrs
    assert "192.0.2.10/24" in addrs
    assert not [r for r in node.routes(table=100)]


def test_state_file_covers_items_without_a_marker(node: Node, tmp_path: Path) -> None:
    route = Route("198.51.100.0/24", via="192.0.2.1", proto=4)  # explicit "protocol static"
    with node.inside():
        first = KernelAdapter(state_dir=tmp_path)
    assert first.reconcile([route]).ok
    first.close()
    with node.inside():
        unaware, aware = KernelAdapter(), KernelAdapter(state_dir=tmp_path)
    try:
        assert unaware.find_leftovers() == []
        assert [item_key(i) for i in aware.find_leftovers()] == [item_key(route)]
        assert aware.cleanup().ok
        assert not [r for r in node.routes() if r["dst"] == "198.51.100.0/24"]
    finally:
        unaware.close()
        aware.close()


def test_cleanup_keeps_what_is_still_wanted(node: Node, ka: KernelAdapter) -> None:
    a, b = Address("192.0.2.100", 32, "eth0"), Address("192.0.2.101", 32, "eth0")
    assert ka.reconcile([a, b]).ok
    assert [item_key(i) for i in ka.find_leftovers(keep=[a])] == [item_key(b)]
    assert ka.cleanup(keep=[a]).ok
    assert "192.0.2.100/32" in node.address_set() and "192.0.2.101/32" not in node.address_set()


def test_changed_label_replaces_the_address(node: Node, ka: KernelAdapter) -> None:
    assert ka.reconcile([Address("192.0.2.100", 32, "eth0", label="eth0:a")]).ok
    res = ka.reconcile([Address("192.0.2.100", 32, "eth0", label="eth0:b")])
    assert [op.action for op in res.done] == [Action.REPLACE]
    assert _addr(node, "192.0.2.100")["label"] == "eth0:b"


def test_snapshot_of_links_and_addresses_for_vrrpd(node: Node, ka: KernelAdapter) -> None:
    links = {link.ifname: link for link in ka.links()}
    assert links["eth0"].usable and links["eth0"].ifindex == node.ifindex()
    assert links["eth0"].mac == node.mac()
    ka.reconcile([Address("192.0.2.100", 24, "eth0")])  # same subnet: a secondary
    addrs = {a.ip: a for a in ka.interface_addresses()}
    assert addrs["192.0.2.10"].primary and not addrs["192.0.2.100"].primary
    assert addrs["192.0.2.100"].proto == NETD_PROTO and addrs["192.0.2.10"].proto != NETD_PROTO
    assert not addrs["2001:db8::10"].tentative  # the lab turns DAD off
