"""Keywords an operator sets either act (parsed where vrrpd reads them) or say they do not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import core
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]


def with_option(option: str) -> str:
    return MINIMAL.replace("virtual_router_id 51", f"virtual_router_id 51\n    {option}")


def not_implemented(r: core.LoadResult) -> list[str]:
    return [p.message for p in r.problems if p.severity == "not-implemented"]


def test_mcast_src_ip_is_unicast_src_ip_as_in_keepalived(parse: Parse) -> None:
    r = parse(with_option("mcast_src_ip 192.0.2.7"))
    (i,) = r.config.instances
    assert i.unicast_src_ip == "192.0.2.7"
    assert r.exit_code == 0 and not r.problems
    # One handler in keepalived: both set means the last wins, with a warning.
    r = parse(with_option("unicast_src_ip 192.0.2.8\n    mcast_src_ip 192.0.2.7"))
    assert r.config.instances[0].unicast_src_ip == "192.0.2.7"
    assert [p.code for p in r.problems] == ["duplicate-keyword"]


def test_bare_notify_deleted_parses_and_renders_back(parse: Parse) -> None:
    r = parse(with_option("notify_deleted"))
    assert r.exit_code == 0, r.problems
    (i,) = r.config.instances
    assert i.notify_deleted == core.Script("")
    text = core.render(r.config)
    assert "notify_deleted\n" in text and 'notify_deleted ""' not in text
    assert parse(text).config == r.config


def test_notify_deleted_with_a_command_keeps_user_and_group(parse: Parse) -> None:
    (i,) = parse(with_option("notify_deleted /bin/true nobody nogroup")).config.instances
    assert i.notify_deleted == core.Script("/bin/true", "nobody", "nogroup")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        (with_option("vrf blue"), "'vrf'"),
        ("global_defs {\n    max_auto_priority 10\n}\n" + MINIMAL, "'max_auto_priority'"),
        (MINIMAL.replace("192.0.2.1/24", "192.0.2.1/24 track_group TG"), "'track_group'"),
        (
            "static_routes {\n    198.51.100.0/24 via 192.0.2.2 track_group TG\n}\n" + MINIMAL,
            "'track_group'",
        ),
        (
            "static_rules {\n    from 192.0.2.5 table 7 preference 5 track_group TG\n}\n" + MINIMAL,
            "'track_group'",
        ),
    ],
)
def test_keywords_nothing_acts_on_say_so(parse: Parse, text: str, word: str) -> None:
    r = parse(text)
    assert r.exit_code == 0, r.problems
    assert any(word in m and "not implemented" in m for m in not_implemented(r)), r.problems


@pytest.mark.parametrize(
    "option",
    [
        "unicast_ttl 64",
        "track_src_ip",
        "unicast_fault_no_peer",
        "notify_deleted",
        "no_virtual_ipaddress",
        "mcast_src_ip 192.0.2.7",
        "native_ipv6",
    ],
)
def test_keywords_vrrpd_acts_on_report_no_not_implemented(parse: Parse, option: str) -> None:
    assert not not_implemented(parse(with_option(option)))


def test_checkers_and_virtual_servers_are_not_reported_as_not_implemented(parse: Parse) -> None:
    text = (
        "virtual_server 192.0.2.9 80 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind NAT\n"
        "    protocol TCP\n    real_server 192.0.2.2 80 {\n        weight 1\n"
        "        TCP_CHECK {\n            connect_timeout 3\n        }\n"
        "        MISC_CHECK {\n            misc_path /bin/true\n        }\n    }\n}\n" + MINIMAL
    )
    r = parse(text)
    words = [m for m in not_implemented(r)]
    assert not any(w in m for m in words for w in ("'virtual_server'", "CHECK", "real_server"))
    # netd programs the datapath keywords (docs/lvs.md)
    assert not any("'lb_algo'" in m or "'lb_kind'" in m for m in words)


def test_the_sorry_servers_method_must_match_the_virtual_servers(parse: Parse) -> None:
    text = (
        "virtual_server 192.0.2.9 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n"
        "    sorry_server 192.0.2.4 80\n    sorry_server_lvs_method NAT\n"
        "    real_server 192.0.2.2 80 {\n    }\n}\n" + MINIMAL
    )
    r = parse(text)
    assert not not_implemented(r)
    (p,) = [p for p in r.problems if p.code == "lvs-not-forwarded"]
    assert "mix lvs_method DR and NAT" in p.message
    (vs,) = r.config.virtual_servers
    assert vs.sorry_forwarding() == "NAT"
    same = parse(text.replace("sorry_server_lvs_method NAT", "sorry_server_lvs_method DR"))
    assert not [p for p in same.problems if p.code.startswith("lvs-")]


def test_real_servers_mixing_nat_and_dr_are_reported_at_the_method_line(parse: Parse) -> None:
    text = (
        "virtual_server 192.0.2.9 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n"
        "    real_server 192.0.2.2 80 {\n        lvs_method DR\n    }\n"
        "    real_server 192.0.2.3 80 {\n    }\n}\n" + MINIMAL
    )
    r = parse(text)
    (p,) = [p for p in r.problems if p.code == "lvs-not-forwarded"]
    assert "mix lvs_method DR and NAT" in p.message and p.line == 6
    assert r.exit_code == 0  # keepalived accepts it: ours is a warning
    alone = parse(text.replace("    real_server 192.0.2.3 80 {\n    }\n", ""))
    assert not [p for p in alone.problems if p.code.startswith("lvs-")]


@pytest.mark.parametrize(
    ("options", "codes"),
    [
        ("lb_algo rr\n    lb_kind NAT", []),
        ("lb_algo wlc\n    lb_kind NAT", ["lvs-sched-fallback"]),
        ("lb_algo rr\n    lb_kind DR", []),
        ("lb_algo rr\n    lb_kind TUN", ["lvs-not-forwarded"]),
    ],
)
def test_what_the_nftables_datapath_does_differently_is_reported(
    parse: Parse, options: str, codes: list[str]
) -> None:
    text = (
        "global_defs {\n    lvs_backend nftables\n}\n"
        f"virtual_server 192.0.2.9 80 {{\n    {options}\n    protocol TCP\n"
        "    real_server 192.0.2.2 80 {\n        TCP_CHECK {\n        }\n    }\n}\n" + MINIMAL
    )
    r = parse(text)
    assert [p.code for p in r.problems if p.code.startswith("lvs-")] == codes
    assert r.exit_code == 0


def test_a_vrrp_script_named_for_a_virtual_servers_quorum_is_not_external(parse: Parse) -> None:
    vs = (
        "virtual_server 192.0.2.9 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n"
        "    real_server 192.0.2.2 80 {\n        TCP_CHECK {\n        }\n    }\n}\n"
    )
    fed = parse("vrrp_script vs:192.0.2.9:tcp:80 {\n    weight -20\n}\n" + vs + MINIMAL)
    assert not [p for p in fed.problems if p.code == "external-script"]
    other = parse("vrrp_script vs:192.0.2.9:tcp:81 {\n    weight -20\n}\n" + vs + MINIMAL)
    assert [p for p in other.problems if p.code == "external-script"]
