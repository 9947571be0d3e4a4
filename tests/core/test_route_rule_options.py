"""Route and rule entry options: multipath nexthops, encap, metrics and the rule selectors
(uidrange, ipproto, sport/dport, l3mdev, ...): parsing, errors with their line, rendering and
round trips through the renderer and the wire."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import core
from core import Encap, Nexthop, Route, Rule

Parse = Callable[..., core.LoadResult]


def _static(parse: Parse, block: str, *lines: str) -> core.LoadResult:
    body = "".join(f"  {line}\n" for line in lines)
    return parse(f"{block} {{\n{body}}}\n")


def _problems(r: core.LoadResult) -> list[tuple[int, str, str]]:
    return [(p.line, p.severity, p.message) for p in r.problems]


def _round_trips(r: core.LoadResult) -> None:
    again = core.loads(core.render(r.config), config_id="n", script_env=None)
    assert again.config == r.config, core.render(r.config)
    assert core.from_wire(core.to_wire(r.config)) == r.config


def test_multipath_nexthops_with_weight_onlink_and_realms(parse: Parse) -> None:
    r = _static(
        parse,
        "static_routes",
        "198.51.100.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 "
        "nexthop via 192.0.2.2 dev eth1 weight 3 onlink realms 4/5",
        "2001:db8:1::/64 nexthop via inet6 2001:db8::1 dev eth0 nexthop via 2001:db8::2",
    )
    assert _problems(r) == []
    v4, v6 = r.config.static_routes
    assert v4.nexthops == (
        Nexthop(via="192.0.2.1", dev="eth0", weight=2),
        Nexthop(via="192.0.2.2", dev="eth1", weight=3, onlink=True, realms="4/5"),
    )
    assert v6.nexthops == (Nexthop(via="2001:db8::1", dev="eth0"), Nexthop(via="2001:db8::2"))
    assert v4.via is None and v4.dev is None
    _round_trips(r)


def test_route_encap_kinds(parse: Parse) -> None:
    r = _static(
        parse,
        "static_routes",
        "198.51.100.1/32 dev eth0 encap mpls 100/200",
        "198.51.100.2/32 dev eth0 encap ip id 5 dst 192.0.2.50 src 192.0.2.1 tos 0x10 ttl 3",
        "198.51.100.3/32 dev eth0 encap ip6 id 6 dst 2001:db8::50 tc 2 hoplimit 4 flags 1",
        "2001:db8:5::/64 dev eth0 encap ila 2001:DB8:1:2",
        "198.51.100.4/32 nexthop via 192.0.2.1 dev eth0 encap ip id 7 nexthop dev eth1",
    )
    assert _problems(r) == []
    mpls, ip, ip6, ila, nh = r.config.static_routes
    assert mpls.encap == Encap("mpls", labels=(100, 200))
    assert ip.encap == Encap("ip", id=5, dst="192.0.2.50", src="192.0.2.1", tos=16, ttl=3)
    assert ip6.encap == Encap("ip6", id=6, dst="2001:db8::50", tos=2, ttl=4, flags=1)
    assert ila.encap == Encap("ila", locator="2001:0db8:0001:0002")
    assert nh.nexthops[0].encap == Encap("ip", id=7)
    assert nh.nexthops[1] == Nexthop(dev="eth1")
    _round_trips(r)


def test_route_metrics_and_ipv6_options_are_validated_words(parse: Parse) -> None:
    r = _static(
        parse,
        "static_routes",
        "198.51.100.0/24 dev eth0 mtu lock 1400 advmss 1300 rtt 10ms rttvar lock 5 "
        "reordering 3 window 100 cwnd lock 10 ssthresh 20 rto_min 5ms initcwnd 10 initrwnd 11 "
        "hoplimit 64 quickack 1 fastopen_no_cookie 1 congctl lock cubic features ecn "
        "dsfield 0x10 realms 3",
        "2001:db8:7::/64 dev eth0 pref high expires 100",
    )
    assert _problems(r) == []
    v4, v6 = r.config.static_routes
    assert dict((o[0], o[1:]) for o in v4.options) == {
        "mtu": ("lock", "1400"),
        "advmss": ("1300",),
        "rtt": ("10ms",),
        "rttvar": ("lock", "5"),
        "reordering": ("3",),
        "window": ("100",),
        "cwnd": ("lock", "10"),
        "ssthresh": ("20",),
        "rto_min": ("5ms",),
        "initcwnd": ("10",),
        "initrwnd": ("11",),
        "hoplimit": ("64",),
        "quickack": ("1",),
        "fastopen_no_cookie": ("1",),
        "congctl": ("lock", "cubic"),
        "features": ("ecn",),
        "tos": ("16",),
        "realms": ("3",),
    }
    assert v6.options == (("pref", "high"), ("expires", "100"))
    _round_trips(r)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("198.51.100.0/24 nexthop via 192.0.2.1 weight 0", "Invalid weight 0 specified for route"),
        ("198.51.100.0/24 nexthop via 192.0.2.1 weight 257", "number '257' outside range"),
        ("198.51.100.0/24 nexthop via 2001:db8::1", "Address family mismatch for next hop"),
        ("198.51.100.0/24 nexthop via 192.0.2.1 bogus", "trailing nonsense after nexthops"),
        ("198.51.100.0/24 nexthop weight 2", "nexthop needs 'via' or 'dev'"),
        ("198.51.100.0/24 via 192.0.2.1 or 192.0.2.2 nexthop dev eth0", "Cannot specify nexthops"),
        ("198.51.100.0/24 dev eth0 encap ip dst 2001:db8::1", "IPv6 address 2001:db8::1 not valid"),
        ("198.51.100.0/24 dev eth0 encap ip ttl 3", "address or id missing for ip encapsulation"),
        ("198.51.100.0/24 dev eth0 encap foo 1", "Unknown encap type - foo"),
        ("198.51.100.0/24 dev eth0 encap mpls 100/abc", "invalid mpls address 100/abc"),
        ("198.51.100.0/24 dev eth0 encap mpls 2000000", "invalid mpls address 2000000"),
        ("198.51.100.0/24 dev eth0 encap mpls", "missing address for MPLS encapsulation"),
        ("2001:db8::/64 dev eth0 encap ila", "missing locator for ILA encapsulation"),
        ("2001:db8::/64 dev eth0 encap ila 1:2:3", "invalid locator 1:2:3"),
        ("198.51.100.0/24 dev eth0 pref high", "pref is only valid for IPv6"),
        ("198.51.100.0/24 dev eth0 expires 10", "expires is only valid for IPv6"),
        ("2001:db8::/64 dev eth0 realms 3", "realms are only valid for IPv4"),
        ("198.51.100.0/24 dev eth0 features ecn,foo", "feature ecn,foo not supported"),
        ("198.51.100.0/24 dev eth0 quickack 2", "number '2' outside range"),
        ("198.51.100.0/24 dev eth0 rtt 5parsecs", "invalid rtt time '5parsecs'"),
        ("198.51.100.0/24 dev eth0 tos 300", "TOS value 300 is invalid"),
        ("198.51.100.0/24 via 192.0.2.1 src 2001:db8::1", "Cannot mix IPv4 and IPv6"),
        ("198.51.100.0/24 dev eth0 vrf blue", "'vrf blue' is not supported"),
        ("198.51.100.0/24 dev eth0 protocol foo", "Protocol foo not found or invalid for route"),
        (
            "198.51.100.0/24 via 192.0.2.1 nexthop via 192.0.2.2 nexthop via 192.0.2.3",
            "'via' cannot be combined with nexthops",
        ),
        (
            "198.51.100.0/24 encap ip id 1 nexthop via 192.0.2.2 nexthop via 192.0.2.3",
            "'encap' cannot be combined with nexthops",
        ),
        ("198.51.100.0/24 nexthop via 192.0.2.1 no_track", "trailing nonsense after nexthops"),
    ],
)
def test_bad_route_options_drop_the_route_with_file_and_line(
    parse: Parse, line: str, message: str
) -> None:
    r = parse(f"static_routes {{\n  198.51.100.9/32 dev eth0\n  {line}\n}}\n", path="/etc/ka.conf")
    assert [rt.dest for rt in r.config.static_routes] == ["198.51.100.9/32"]
    (p,) = [p for p in r.problems if p.severity == "error"]
    assert (p.file, p.line, p.severity) == ("/etc/ka.conf", 3, "error")
    assert message in p.message and p.message.endswith("ignoring route")
    assert core.format_problem(p).startswith("/etc/ka.conf:3:")


@pytest.mark.parametrize(
    ("words", "severity", "message"),
    [
        ("ttl-propagate enabled", "warning", "'ttl-propagate' applies to MPLS routes only"),
        ("as to 192.0.2.7", "error", '"as to" for MPLS only - ignoring'),
        ("append", "warning", "'append' is not supported"),
    ],
)
def test_unsupported_route_options_are_reported_and_the_route_kept(
    parse: Parse, words: str, severity: str, message: str
) -> None:
    r = _static(parse, "static_routes", f"198.51.100.0/24 dev eth0 {words} metric 7")
    (route,) = r.config.static_routes
    assert route == Route("198.51.100.0/24", dev="eth0", metric=7)
    (p,) = r.problems
    assert (p.line, p.severity) == (2, severity) and message in p.message


def test_rule_selectors(parse: Parse) -> None:
    r = _static(
        parse,
        "static_rules",
        "from 192.0.2.0/24 uidrange 100-200 table 5 preference 10",
        "from 192.0.2.0/24 ipproto tcp sport 1000-2000 dport 80 table 5 preference 11",
        "l3mdev preference 12",
        "not from 192.0.2.0/24 tunnel-id 5 realms 3/4 table 5 preference 13",
        "from 192.0.2.0/24 suppress_ifgroup 2 sup_pl 8 protocol boot table 5 preference 14 "
        "no_track",
        "to 198.51.100.0/24 ipproto 17 dsfield 0x10 nop preference 15",
        "from 192.0.2.0/24 unreachable preference 16",
    )
    assert _problems(r) == []
    assert r.config.static_rules == (
        Rule(from_="192.0.2.0/24", uidrange="100-200", table="5", preference=10),
        Rule(
            from_="192.0.2.0/24",
            ipproto=6,
            sport="1000-2000",
            dport="80-80",
            table="5",
            preference=11,
        ),
        Rule(l3mdev=True, preference=12),
        Rule(
            from_="192.0.2.0/24",
            invert=True,
            tunnel_id=5,
            realms="3/4",
            table="5",
            preference=13,
        ),
        Rule(
            from_="192.0.2.0/24",
            suppress_ifgroup=2,
            suppress_prefixlength=8,
            protocol=3,
            no_track=True,
            table="5",
            preference=14,
        ),
        Rule(to="198.51.100.0/24", ipproto=17, tos="16", type="nop", preference=15),
        Rule(from_="192.0.2.0/24", type="unreachable", preference=16),
    )
    _round_trips(r)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("uidrange 100", "Invalid uidrange 100 specified"),
        ("uidrange 200-100", "invalid uid range 200-100"),
        ("ipproto nosuchproto", "Invalid ipproto nosuchproto"),
        ("sport 1-2-3", "invalid sport range 1-2-3"),
        ("dport 70000", "invalid dport range 70000"),
        ("tunnel-id x", "'x' is not an integer"),
        ("protocol nosuch", "Invalid protocol nosuch"),
        ("realms 1/2/3", "Invalid realms 1/2/3"),
        ("l3mdev", "Cannot specify more than one of table"),
    ],
)
def test_bad_rule_options_drop_the_rule_with_line(parse: Parse, words: str, message: str) -> None:
    r = _static(parse, "static_rules", "from 192.0.2.0/24 table 5 pref 1", f"table 6 {words}")
    assert [rl.table for rl in r.config.static_rules] == ["5"]
    (p,) = r.problems
    assert (p.line, p.severity) == (3, "error")
    assert message in p.message and p.message.endswith("ignoring rule")


def test_ipv6_route_from_source_prefix(parse: Parse) -> None:
    r = _static(parse, "static_routes", "2001:db8:1::/64 from 2001:db8:a::/48 via 2001:db8::1")
    assert _problems(r) == []
    (route,) = r.config.static_routes
    assert route.from_ == "2001:db8:a::/48"
    _round_trips(r)
    bad = _static(parse, "static_routes", "198.51.100.0/24 from 192.0.2.0/24 dev eth0")
    assert bad.config.static_routes == ()
    assert [(line, msg) for line, _, msg in _problems(bad)] == [
        (2, "route from address only supported with IPv6 (192.0.2.0/24) - ignoring route")
    ]


@pytest.mark.parametrize(
    ("block", "line", "what", "foreign", "own"),
    [
        ("static_routes", "198.51.100.0/24 dev eth0 protocol {}", "Route", "static", "keepalived"),
        ("static_rules", "from 192.0.2.0/24 table 5 preference 5 protocol {}", "Rule", 99, 18),
    ],
)
def test_a_tracked_item_gets_no_foreign_protocol(
    parse: Parse, block: str, line: str, what: str, foreign: object, own: object
) -> None:
    r = _static(
        parse, block, line.format(foreign), line.format(foreign) + " no_track", line.format(own)
    )
    items = r.config.static_routes if block == "static_routes" else r.config.static_rules
    assert [item.protocol for item in items] == [None, foreign, own]
    (p,) = r.problems
    assert (p.line, p.severity) == (2, "error")
    assert p.message.startswith(f"{what} cannot be tracked if protocol is not RTPROT_KEEPALIVED")
