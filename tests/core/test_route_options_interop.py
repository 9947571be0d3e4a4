"""Our `-t` verdict on route and rule entries with multipath, encap, metrics and the rule
selectors equals keepalived 2.2.7's own (computed live in a throw-away namespace)."""

from __future__ import annotations

from pathlib import Path

import pytest

import core
from tests.core.test_samples_interop import (
    NETNS_IFACES,
    keepalived_verdict,
    netns,  # noqa: F401 - the module-scoped namespace fixture
)
from tests.core.test_samples_interop import pytestmark as interop_marks

pytestmark = interop_marks

_BASE = """vrrp_instance VI_1 {
 interface eth0
 virtual_router_id 51
 priority 100
 virtual_ipaddress {
  192.0.2.1/24
 }
 virtual_routes {
  %s
 }
 virtual_rules {
  %s
 }
}
"""
_ROUTE = "198.51.100.99/32 dev eth0"
_RULE = "from 192.0.2.0/24 table 9 preference 9"

ROUTES = {
    "multipath": "198.51.100.0/24 dev eth0 nexthop via 192.0.2.2 dev eth0 weight 2 "
    "nexthop via 192.0.2.3 dev eth1 weight 3 onlink",
    "multipath-v6": "2001:db8:8::/64 dev eth0 nexthop via 2001:db8::1 dev eth0 weight 2 "
    "nexthop via inet6 2001:db8::2 dev eth1",
    "multipath-encap": "198.51.100.0/24 dev eth0 nexthop via 192.0.2.2 dev eth0 "
    "encap ip id 1 dst 192.0.2.9 nexthop via 192.0.2.3 dev eth1 realms 3",
    "encap-ip": "198.51.100.1/32 dev eth0 encap ip id 5 dst 192.0.2.50 src 192.0.2.1 ttl 3 tos 2",
    "encap-ip6": "198.51.100.2/32 dev eth0 encap ip6 id 6 dst 2001:db8::50 hoplimit 3 tc 1",
    "encap-mpls": "198.51.100.3/32 dev eth0 encap mpls 100/200 via 192.0.2.1",
    "encap-ila": "2001:db8:5::/64 dev eth0 encap ila 2001:db8:1:2",
    "metrics": "198.51.100.6/32 dev eth0 mtu lock 1400 advmss 1300 rtt 10ms rttvar 5 "
    "reordering 3 window 100 cwnd 10 ssthresh 20 realms 3/4 initcwnd 10 initrwnd 10 "
    "hoplimit 64 quickack 1 congctl lock cubic rto_min 5ms fastopen_no_cookie 1 features ecn",
    "ipv6-pref-expires": "2001:db8:7::/64 dev eth0 pref high expires 100",
    "from": "2001:db8:1::/64 dev eth0 from 2001:db8::/64",
    "tos": "198.51.100.7/32 dev eth0 tos 0x10",
    "weight-0": "198.51.100.0/24 dev eth0 nexthop via 192.0.2.2 weight 0",
    "weight-257": "198.51.100.0/24 dev eth0 nexthop via 192.0.2.2 weight 257",
    "nexthop-family": "198.51.100.0/24 dev eth0 nexthop via 2001:db8::1",
    "nexthop-trailing": "198.51.100.0/24 dev eth0 nexthop via 192.0.2.2 no_track",
    "encap-ip-v6-dst": "198.51.100.8/32 dev eth0 encap ip dst 2001:db8::1",
    "encap-ip-no-dst": "198.51.100.8/32 dev eth0 encap ip ttl 3",
    "encap-unknown": "198.51.100.8/32 dev eth0 encap foo 1",
    "encap-bad-mpls": "198.51.100.8/32 dev eth0 encap mpls 100/abc",
    "pref-ipv4": "198.51.100.8/32 dev eth0 pref high",
    "expires-ipv4": "198.51.100.8/32 dev eth0 expires 10",
    "feature-unknown": "198.51.100.8/32 dev eth0 features ecn,foo",
    "quickack-2": "198.51.100.8/32 dev eth0 quickack 2",
    "from-ipv4": "198.51.100.8/32 dev eth0 from 192.0.2.0/24",
    "as-to": "198.51.100.8/32 dev eth0 as to 192.0.2.77",
    "vrf": "198.51.100.8/32 dev eth0 vrf blue",
    "ttl-propagate": "198.51.100.8/32 dev eth0 ttl-propagate enabled",
    "append": "198.51.100.8/32 dev eth0 append",
    "or": "198.51.100.8/32 dev eth0 via 192.0.2.2 or 192.0.2.3",
    "protocol-unknown": "198.51.100.8/32 dev eth0 protocol foo",
    "protocol-named": "198.51.100.8/32 dev eth0 protocol static",
    "via-and-nexthops": "198.51.100.0/24 dev eth0 via 192.0.2.1 nexthop via 192.0.2.2 "
    "nexthop via 192.0.2.3",
    "encap-and-nexthops": "198.51.100.0/24 dev eth0 encap ip id 5 nexthop via 192.0.2.2 "
    "nexthop via 192.0.2.3",
}
RULES = {
    "uidrange": "from 192.0.2.0/24 uidrange 100-200 table 5 preference 10",
    "ports": "from 192.0.2.0/24 ipproto tcp sport 1000-2000 dport 80-81 table 5 preference 11",
    "l3mdev": "l3mdev preference 12",
    "not-tunnel-realms": "not from 192.0.2.0/24 tunnel-id 5 realms 3/4 table 5 preference 13",
    "suppress": "from 192.0.2.0/24 suppress_ifgroup 2 sup_pl 8 table 5 preference 14",
    "protocol": "from 192.0.2.0/24 protocol 18 table 5 preference 15",
    "nop": "from 192.0.2.0/24 nop preference 16",
    "uidrange-single": "from 192.0.2.0/24 uidrange 100 table 5 preference 17",
    "ipproto-unknown": "from 192.0.2.0/24 ipproto nosuch table 5 preference 18",
    "dport-range": "from 192.0.2.0/24 dport 70000-70001 table 5 preference 19",
    "l3mdev-table": "from 192.0.2.0/24 l3mdev table 5 preference 20",
    "tunnel-id-bad": "from 192.0.2.0/24 tunnel-id x table 5 preference 21",
    "sport-single": "from 192.0.2.0/24 ipproto udp sport 53 table 5 preference 22",
}

# name -> (keepalived's exit code, ours, why we deliberately differ)
_NEXTHOPS_REASON = (
    "keepalived passes a top-level via/encap on with the nexthops; the kernel refuses a "
    "gateway that differs from the first nexthop's, so we refuse the route at parse time"
)
DIFFERENCES: dict[str, tuple[int, int, str]] = {
    "route via-and-nexthops": (0, 5, _NEXTHOPS_REASON),
    "route encap-and-nexthops": (0, 5, _NEXTHOPS_REASON),
    "rule sport-single": (
        5,
        0,
        "keepalived 2.2.7 wants N-M ('invalid sport range 53'); ip rule and the kernel take a "
        "single port as N-N",
    ),
    "rule dport-range": (
        0,
        5,
        "keepalived 2.2.7 does not range-check port ranges; a port above 65535 cannot be "
        "installed, so we refuse the rule",
    ),
}


def _verdicts(ns: str, tmp_path: Path, text: str) -> tuple[int, int, list[str]]:
    conf = tmp_path / "k.conf"
    conf.write_text(text)
    theirs = keepalived_verdict(ns, conf, tmp_path, "pkcfgtest")
    ours = core.load(conf, config_id="pkcfgtest", interfaces=NETNS_IFACES)
    return theirs, ours.exit_code, [core.format_problem(p) for p in ours.problems]


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_entry_verdicts_match_keepalived(netns: str, tmp_path: Path, name: str) -> None:  # noqa: F811
    theirs, ours, problems = _verdicts(netns, tmp_path, _BASE % (ROUTES[name], _RULE))
    expected = DIFFERENCES.get(f"route {name}")
    assert (theirs, ours) == (expected[:2] if expected else (theirs, theirs)), problems


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_entry_verdicts_match_keepalived(netns: str, tmp_path: Path, name: str) -> None:  # noqa: F811
    theirs, ours, problems = _verdicts(netns, tmp_path, _BASE % (_ROUTE, RULES[name]))
    expected = DIFFERENCES.get(f"rule {name}")
    assert (theirs, ours) == (expected[:2] if expected else (theirs, theirs)), problems
