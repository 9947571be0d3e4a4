"""Accept_Mode drop rules: the pure choice of addresses, and the nftables table in a namespace."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroute2.nftables.main import NFTables
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import IPv6

from core import loads
from netd.desired import Address, Item, Route
from netd.errors import FirewallError
from netd.firewall import (
    DEFAULT_TABLE,
    MARKER,
    Firewall,
    FirewallSettings,
    blocked_addresses,
    expressions,
)
from tests.lab import Lab, Node
from tests.netd.accept import answered, ping, tables

# ---- pure ------------------------------------------------------------------------------------

_ips = st.sampled_from(
    [f"192.0.2.{i}" for i in range(1, 9)]
    + [f"2001:db8::{i}" for i in range(1, 9)]
    + [f"fe80::{i}" for i in range(1, 4)]
)
_owners = st.sampled_from(["vrrp:VI_1", "vrrp:VI_2", "static", "~leftover"])


@given(
    st.dictionaries(_owners, st.lists(_ips, max_size=6)),
    st.dictionaries(_owners, st.booleans()),
)
def test_blocked_are_exactly_the_addresses_of_non_accepting_owners(
    held: dict[str, list[str]], accepting: dict[str, bool]
) -> None:
    route: Item = Route(dst="198.51.100.0/24", dev="eth0")
    owned: dict[str, list[Item]] = {
        o: [*(Address(ip, 32 if ":" not in ip else 128, "eth0") for ip in ips), route]
        for o, ips in held.items()
    }
    blocked = blocked_addresses(owned, accepting)
    # A link-local address is blocked on its own interface only; the others anywhere.
    want = {
        (ip, "eth0" if ip.startswith("fe80:") else None)
        for o, ips in held.items()
        if accepting.get(o) is False
        for ip in ips
    }
    assert set(blocked) == want
    for (ip, _), owner in blocked.items():
        assert accepting[owner] is False and ip in held[owner]


def test_settings_from_global_nftables_keywords() -> None:
    base = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n}\n"
    assert FirewallSettings.from_config(loads(base).config) == FirewallSettings(DEFAULT_TABLE, -1)
    text = "global_defs {\n nftables pk_fw\n nftables_priority -5\n}\n" + base
    assert FirewallSettings.from_config(loads(text).config) == FirewallSettings("pk_fw", -5)
    bare = "global_defs {\n nftables\n}\n" + base
    assert FirewallSettings.from_config(loads(bare).config).table == DEFAULT_TABLE


def _payload_slice(exprs: list[dict[str, Any]], packet: bytes) -> bytes:
    """Apply the rule's first network-header payload load to a packet, as the kernel does."""
    for e in exprs:
        attrs = dict(e["attrs"])
        if attrs["NFTA_EXPR_NAME"] == "payload":
            data = dict(attrs["NFTA_EXPR_DATA"]["attrs"])
            off, length = data["NFTA_PAYLOAD_OFFSET"], data["NFTA_PAYLOAD_LEN"]
            return packet[off : off + length]
    raise AssertionError("no payload expression")


@pytest.mark.parametrize("version", [4, 6])
def test_rule_loads_the_addresses_from_where_the_header_has_them(version: int) -> None:
    src, dst = ("192.0.2.1", "192.0.2.2") if version == 4 else ("2001:db8::1", "2001:db8::2")
    pkt = bytes(IP(src=src, dst=dst) / ICMP() if version == 4 else IPv6(src=src, dst=dst))
    for field, ip in (("saddr", src), ("daddr", dst)):
        for link_local in (False, True) if version == 6 else (False,):
            loaded = _payload_slice(expressions(version, field, link_local=link_local), pkt)
            assert loaded == ipaddress.ip_address(ip).packed


# ---- kernel ----------------------------------------------------------------------------------


VIP4, VIP6, VIP_LL = "192.0.2.200", "2001:db8::200", "fe80::200"
B4, B6 = (VIP4, None), (VIP6, None)
B_LL = (VIP_LL, "eth0")


def add_vips(node: Node) -> None:
    with node.ipr() as ipr:
        idx = ipr.link_lookup(ifname=node.ifname)[0]
        ipr.addr("add", index=idx, address=VIP4, prefixlen=24)
        for ip in (VIP6, VIP_LL):
            ipr.addr("add", index=idx, address=ip, prefixlen=64, flags=0x80)  # IFA_F_NODAD


def neighbour_mac(node: Node, ip: str) -> str | None:
    """The MAC ``node`` resolved ``ip`` to, if the entry is usable (not FAILED/INCOMPLETE)."""
    with node.ipr() as ipr:
        for msg in ipr.neigh("dump", family=socket.AF_INET6):
            if msg.get("NDA_DST") == ip and not msg["state"] & (0x01 | 0x20):
                return str(msg.get("NDA_LLADDR"))
    return None


@pytest.fixture
def fw_lab(lab: Lab) -> Lab:
    add_vips(lab.node(0))
    return lab


def in_node(node: Node, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return node.call(fn, *args, **kwargs)


@pytest.mark.netns
def test_blocked_vips_are_not_answered_and_read_back(fw_lab: Lab) -> None:
    n0, n1 = fw_lab.nodes
    ll = f"{VIP_LL}%{n1.ifname}"
    assert answered(n1, VIP4) and answered(n1, VIP6) and answered(n1, ll)
    fw = in_node(n0, Firewall)
    try:
        wanted = {B4: "vrrp:VI_1", B6: "vrrp:VI_1", B_LL: "vrrp:VI_1"}
        in_node(n0, fw.sync, wanted, removing=False)
        assert tables(n0) == {DEFAULT_TABLE: MARKER}
        assert in_node(n0, fw.blocked) == {B4, B6, B_LL}
        n1.run(["ip", "-6", "neigh", "flush", "dev", n1.ifname])
        assert not ping(n1, VIP4) and not ping(n1, VIP6) and not ping(n1, ll)
        # Neighbour discovery of a blocked IPv6 VIP still works (its NA comes from the VIP).
        assert neighbour_mac(n1, VIP6) == n0.mac() and neighbour_mac(n1, VIP_LL) == n0.mac()
        # The node's own addresses are untouched.
        assert answered(n1, n0.ip4) and answered(n1, n0.ip6)
        # Unblocking one family only: that one is answered again.
        in_node(n0, fw.sync, {B6: "vrrp:VI_1"}, removing=True)
        assert in_node(n0, fw.blocked) == {B6}
        assert answered(n1, VIP4) and answered(n1, ll) and not ping(n1, VIP6)
        # Without removing, sync only adds: what the reconcile does before the VIPs go on.
        in_node(n0, fw.sync, {B4: "vrrp:VI_1"}, removing=False)
        assert in_node(n0, fw.blocked) == {B4, B6}
    finally:
        in_node(n0, fw.close)
    assert tables(n0) == {}
    assert answered(n1, VIP4) and answered(n1, VIP6)


@pytest.mark.netns
def test_a_link_local_vip_is_blocked_on_its_interface_only(fw_lab: Lab) -> None:
    n0, n1 = fw_lab.nodes
    fw = in_node(n0, Firewall)
    try:
        # Blocked on another interface (lo) of node 0: still answered on eth0.
        in_node(n0, fw.sync, {(VIP_LL, "lo"): "vrrp:VI_1"}, removing=True)
        assert in_node(n0, fw.blocked) == {(VIP_LL, "lo")}
        assert answered(n1, f"{VIP_LL}%{n1.ifname}")
    finally:
        in_node(n0, fw.close)


@pytest.mark.netns
def test_leftovers_are_removed_whatever_their_name_and_foreign_tables_kept(lab: Lab) -> None:
    n0 = lab.node(0)
    old = in_node(n0, Firewall)
    old.configure(FirewallSettings("pk_old", -1))
    in_node(n0, old.sync, {B4: "vrrp:VI_1"}, removing=False)

    def foreign() -> None:
        with NFTables(nfgen_family=1) as nft:
            nft.table("add", name="keepalived")  # someone else's, no marker

    n0.call(foreign)
    # A new run (the old one was killed: its socket just goes away) cleans up at start.
    fresh = in_node(n0, Firewall)
    try:
        assert in_node(n0, fresh.remove_leftovers) == ["pk_old"]
        assert set(tables(n0)) == {"keepalived"}
        # The foreign table of our default name is refused, not taken over.
        with pytest.raises(FirewallError, match="not ours"):
            in_node(n0, fresh.sync, {B4: "vrrp:VI_1"}, removing=False)
        assert tables(n0) == {"keepalived": None}
    finally:
        in_node(n0, fresh.close)
        in_node(n0, old.close)


@pytest.mark.netns
def test_new_table_name_moves_the_rules(lab: Lab) -> None:
    n0 = lab.node(0)
    fw = in_node(n0, Firewall)
    try:
        in_node(n0, fw.sync, {B4: "vrrp:VI_1"}, removing=False)
        fw.configure(FirewallSettings("pk_new", -2))
        in_node(n0, fw.sync, {B4: "vrrp:VI_1"}, removing=True)
        assert tables(n0) == {"pk_new": MARKER}
        assert in_node(n0, fw.blocked) == {B4}
    finally:
        in_node(n0, fw.close)
    assert tables(n0) == {}
