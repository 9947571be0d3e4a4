"""Checker option inheritance, ids and virtual_server_group expansion (docs/checkers.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkd.checkplan import build_plan, expand_group, plan_virtual_server
from checkd.errors import PlanError
from core.model import (
    Checker,
    CheckerKind,
    Config,
    GlobalDefs,
    HostPort,
    RawOption,
    RealServer,
    VirtualServer,
    VirtualServerGroup,
    VsgEntry,
)
from core.vsgroups import VsgMember

G = GlobalDefs()


def vs_with(
    checker: dict[str, Any] | None = None,
    rs: dict[str, Any] | None = None,
    vs: dict[str, Any] | None = None,
    kind: CheckerKind = "TCP_CHECK",
) -> VirtualServer:
    c = Checker(kind=kind, **(checker or {}))
    r = RealServer(ip="198.51.100.1", port=80, checkers=(c,), **(rs or {}))
    return VirtualServer(
        name="192.0.2.1 80",
        ip="192.0.2.1",
        port=80,
        protocol="TCP",
        real_servers=(r,),
        **(vs or {}),
    )


def checker_of(vs: VirtualServer, g: GlobalDefs = G) -> Any:
    return plan_virtual_server(vs, g).real_servers[0].checkers[0]


# option, value at checker / rs / vs level, default
TIMING = [
    ("connect_timeout", 2.0, 3.0, 4.0, 5.0),
    ("retry", 4, 5, 6, 1),
    ("delay_before_retry", 2.0, 3.0, 4.0, 1.0),
    ("warmup", 7.0, 8.0, 9.0, 60.0),
    ("delay_loop", 10.0, 11.0, None, 60.0),
]


@pytest.mark.parametrize(("option", "at_c", "at_rs", "at_vs", "default"), TIMING)
@pytest.mark.parametrize("level", ["checker", "rs", "vs", "default"])
def test_each_timing_option_at_each_level(
    option: str, at_c: Any, at_rs: Any, at_vs: Any, default: Any, level: str
) -> None:
    c = {option: at_c} if level == "checker" else {}
    rs = {option: at_rs} if level in ("checker", "rs") else {}
    vs = {option: at_vs} if level in ("checker", "rs", "vs") and at_vs is not None else {}
    expected = {"checker": at_c, "rs": at_rs, "vs": at_vs, "default": default}[level]
    if expected is None:  # delay_loop has no VS-level None; the VS default applies
        expected = default
    got = getattr(checker_of(vs_with(c, rs, vs)).settings, option)
    assert got == expected


@pytest.mark.parametrize(
    ("kind", "retry", "delay_before_retry"),
    [
        ("TCP_CHECK", 1, 1.0),
        ("HTTP_GET", 1, 3.0),
        ("SSL_GET", 1, 3.0),
        ("DNS_CHECK", 3, 60.0),  # delay_before_retry defaults to delay_loop
        ("MISC_CHECK", 0, 1.0),
        ("SMTP_CHECK", 1, 1.0),
        ("PING_CHECK", 1, 1.0),
        ("UDP_CHECK", 1, 1.0),
    ],
)
def test_per_kind_defaults(kind: CheckerKind, retry: int, delay_before_retry: float) -> None:
    s = checker_of(vs_with(kind=kind)).settings
    assert (s.retry, s.delay_before_retry, s.connect_timeout, s.warmup) == (
        retry,
        delay_before_retry,
        5.0,
        60.0,
    )


def test_warmup_defaults_to_the_checkers_own_delay_loop() -> None:
    assert checker_of(vs_with({"delay_loop": 7.0})).settings.warmup == 7.0


@pytest.mark.parametrize(
    ("c", "rs", "vs", "expected"),
    [
        (None, None, False, False),
        (None, None, True, True),
        (None, False, True, False),
        (None, True, False, True),
        (False, True, True, False),
        (True, None, False, True),
    ],
)
def test_alpha_inheritance(c: bool | None, rs: bool | None, vs: bool, expected: bool) -> None:
    plan = checker_of(vs_with({"alpha": c}, {"alpha": rs}, {"alpha": vs}))
    assert plan.settings.alpha is expected


@pytest.mark.parametrize(
    ("rs", "vs", "expected"), [(None, False, False), (None, True, True), (False, True, False)]
)
def test_inhibit_on_failure_inheritance(rs: bool | None, vs: bool, expected: bool) -> None:
    plan = plan_virtual_server(
        vs_with(rs={"inhibit_on_failure": rs}, vs={"inhibit_on_failure": vs}), G
    )
    assert plan.real_servers[0].inhibit is expected


@pytest.mark.parametrize(
    ("own", "checker_g", "all_g", "rs_expected", "vs_expected"),
    [
        (None, None, None, True, False),  # keepalived's asymmetric defaults
        (None, None, False, False, False),
        (None, None, True, True, True),
        (None, False, True, False, False),
        (None, True, False, True, True),
        (False, True, True, False, False),
        (True, False, False, True, True),
    ],
)
def test_smtp_alert_resolution(
    own: bool | None,
    checker_g: bool | None,
    all_g: bool | None,
    rs_expected: bool,
    vs_expected: bool,
) -> None:
    g = GlobalDefs(smtp_alert_checker=checker_g, smtp_alert=all_g)
    vs = vs_with(rs={"smtp_alert": own}, vs={"smtp_alert": own})
    plan = plan_virtual_server(vs, g)
    assert (plan.real_servers[0].smtp_alert, plan.smtp_alert) == (rs_expected, vs_expected)


def test_rs_smtp_alert_does_not_inherit_from_the_vs() -> None:
    plan = plan_virtual_server(vs_with(vs={"smtp_alert": False}), G)
    assert plan.real_servers[0].smtp_alert is True


@pytest.mark.parametrize(
    ("own", "global_", "expected"),
    [(None, False, False), (True, False, True), (None, True, True), (False, True, True)],
)
def test_log_all_failures(own: bool | None, global_: bool, expected: bool) -> None:
    g = GlobalDefs(checker_log_all_failures=global_)
    assert checker_of(vs_with({"log_all_failures": own}), g).log_all_failures is expected


def test_virtualhost_checker_over_rs_over_vs() -> None:
    assert (
        checker_of(vs_with({}, {"virtualhost": "r"}, {"virtualhost": "v"})).settings.virtualhost
        == "r"
    )
    assert checker_of(vs_with({}, {}, {"virtualhost": "v"})).settings.virtualhost == "v"


def test_ids_are_keepalived_service_texts() -> None:
    vs = vs_with()
    vs = replace(
        vs,
        real_servers=(
            *vs.real_servers,
            replace(
                vs.real_servers[0],
                ip="198.51.100.2",
                checkers=(Checker("TCP_CHECK"), Checker("HTTP_GET"), Checker("TCP_CHECK")),
            ),
        ),
    )
    plan = plan_virtual_server(vs, G)
    assert plan.id == "[192.0.2.1]:tcp:80"
    assert [rs.id for rs in plan.real_servers] == [
        "[192.0.2.1]:tcp:80 [198.51.100.1]:tcp:80",
        "[192.0.2.1]:tcp:80 [198.51.100.2]:tcp:80",
    ]
    assert [c.id.split(" ")[-1] for c in plan.real_servers[1].checkers] == [
        "TCP_CHECK#0",
        "HTTP_GET#0",
        "TCP_CHECK#1",
    ]


@pytest.mark.parametrize(
    ("vs_kw", "rs_port", "method", "vs_id", "rs_text"),
    [
        (
            {"ip": "192.0.2.1", "port": 80, "protocol": "TCP"},
            None,
            "NAT",
            "[192.0.2.1]:tcp:80",
            "[198.51.100.1]:tcp:80",
        ),
        (
            {"ip": "192.0.2.1", "port": 80, "protocol": "TCP"},
            8080,
            "NAT",
            "[192.0.2.1]:tcp:80",
            "[198.51.100.1]:tcp:8080",
        ),
        (
            {"ip": "192.0.2.1", "port": 80, "protocol": "TCP"},
            8080,
            "DR",
            "[192.0.2.1]:tcp:80",
            "[198.51.100.1]:tcp:80",
        ),
        (
            {"ip": "192.0.2.1", "port": 53},
            None,
            "NAT",
            "[192.0.2.1]:udp:53",
            "[198.51.100.1]:udp:53",
        ),
        ({"fwmark": 7}, 80, "DR", "FWM 7", "[198.51.100.1]:none:0"),
        ({"fwmark": 7}, 80, "NAT", "FWM 7", "[198.51.100.1]:none:80"),
        (
            {"ip": "2001:db8::1", "port": 443, "protocol": "SCTP"},
            None,
            "TUN",
            "[2001:db8::1]:sctp:443",
            "[198.51.100.1]:sctp:443",
        ),
    ],
)
def test_service_texts_and_ports(
    vs_kw: dict[str, Any], rs_port: int | None, method: str, vs_id: str, rs_text: str
) -> None:
    rs = RealServer(ip="198.51.100.1", port=rs_port)
    vs = VirtualServer(name="x", lvs_method=method, real_servers=(rs,), **vs_kw)
    plan = plan_virtual_server(vs, G)
    assert (plan.id, plan.real_servers[0].text) == (vs_id, rs_text)


def test_checker_connects_to_the_resolved_rs_port() -> None:
    rs = RealServer(ip="198.51.100.1", checkers=(Checker("TCP_CHECK"),))
    vs = VirtualServer(name="x", ip="192.0.2.1", port=443, protocol="TCP", real_servers=(rs,))
    assert plan_virtual_server(vs, G).real_servers[0].checkers[0].settings.connect_port == 443


@pytest.mark.parametrize(
    ("quorum", "hysteresis", "weights", "expected"),
    [
        (1, 0, (1, 1), (1, 0)),
        (3, 1, (1, 1), (2, 1)),  # quorum clamped to the total weight
        (2, 2, (1, 1), (2, 1)),  # hysteresis clamped to quorum - 1
        (5, 9, (3, 3), (5, 4)),
        (1, 0, (0,), (0, 0)),
    ],
)
def test_quorum_and_hysteresis_clamps(
    quorum: int, hysteresis: int, weights: tuple[int, ...], expected: tuple[int, int]
) -> None:
    rss = tuple(RealServer(ip=f"198.51.100.{i + 1}", weight=w) for i, w in enumerate(weights))
    vs = VirtualServer(
        name="x",
        ip="192.0.2.1",
        port=80,
        protocol="TCP",
        quorum=quorum,
        hysteresis=hysteresis,
        real_servers=rss,
    )
    plan = plan_virtual_server(vs, G)
    assert (plan.quorum, plan.hysteresis) == expected
    assert bool(plan.warnings) == (expected != (quorum, hysteresis))


@pytest.mark.parametrize(
    ("vs_weight", "rs_weights", "expected"),
    [
        (None, (None, None), (1, 1)),  # keepalived's default
        (3, (None, 2), (3, 2)),  # the VS's weight only for real servers without their own
        (4, (0, None), (0, 4)),  # an explicit 0 is not "unset"
    ],
)
def test_a_real_server_without_weight_takes_the_virtual_servers(
    vs_weight: int | None, rs_weights: tuple[int | None, ...], expected: tuple[int, ...]
) -> None:
    rss = tuple(RealServer(ip=f"198.51.100.{i + 1}", weight=w) for i, w in enumerate(rs_weights))
    vs = VirtualServer(name="x", ip="192.0.2.1", port=80, weight=vs_weight, real_servers=rss)
    plan = plan_virtual_server(vs, G)
    assert tuple(rs.weight for rs in plan.real_servers) == expected
    assert plan.quorum == 1 and not plan.warnings  # quorum 1 fits every total above


def test_the_virtual_servers_weight_counts_for_quorum_in_the_config_check() -> None:
    import core

    def problems(vs_weight: str) -> list[str]:
        text = (
            "virtual_server 192.0.2.1 80 {\n  protocol TCP\n  quorum 4\n"
            f"{vs_weight}  real_server 198.51.100.1 80 {{\n  }}\n"
            "  real_server 198.51.100.2 80 {\n  }\n}\n"
        )
        return [p.code for p in core.loads(text, script_env=None).problems]

    assert "quorum-weight" in problems("")  # 1 + 1 < 4
    assert "quorum-weight" not in problems("  weight 2\n")  # 2 + 2 = 4


def test_sorry_server_takes_the_vs_port_and_inhibit() -> None:
    vs = vs_with(vs={"sorry_server": HostPort("203.0.113.9"), "sorry_server_inhibit": True})
    ss = plan_virtual_server(vs, G).sorry_server
    assert ss is not None and (ss.text, ss.inhibit) == ("[203.0.113.9]:tcp:80", True)


@pytest.mark.parametrize(
    ("entry", "member"),
    [
        (VsgEntry("192.0.2.1", 80), VsgMember("192.0.2.1", "192.0.2.1", 80)),
        (VsgEntry("192.0.2.1-10", 80), VsgMember("192.0.2.1", "192.0.2.10", 80)),
        (VsgEntry("192.0.2.250-192.0.3.2", 80), VsgMember("192.0.2.250", "192.0.3.2", 80)),
        (VsgEntry("192.0.2.0/30", 80), VsgMember("192.0.2.0", "192.0.2.3", 80)),
        (VsgEntry("2001:db8::1-1f", 443), VsgMember("2001:db8::1", "2001:db8::1f", 443)),
        (VsgEntry("2001:db8::/126", 443), VsgMember("2001:db8::", "2001:db8::3", 443)),
        (VsgEntry(fwmark=5, family="inet6"), VsgMember(fwmark=5, family="inet6")),
    ],
)
def test_group_expansion(entry: VsgEntry, member: VsgMember) -> None:
    assert expand_group((entry,)) == (member,)


def test_group_member_addresses() -> None:
    (m,) = expand_group((VsgEntry("192.0.2.1-3", 80),))
    assert (m.count, list(m.addresses())) == (3, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("192.0.2.10-5", "not greater"),
        ("192.0.2.10-192.0.2.1", "less than"),
        ("192.0.2.1/24", "host bits"),
        ("192.0.2.1-2001:db8::1", "does not appear|families"),
    ],
)
def test_bad_group_entries_are_named(text: str, reason: str) -> None:
    with pytest.raises(PlanError, match=reason):
        expand_group((VsgEntry(text, 80),))


def test_build_plan_numbers_group_members_and_skips_unknown_groups() -> None:
    rs = (RealServer(ip="198.51.100.1", port=80),)
    cfg = Config(
        global_defs=GlobalDefs(other=(RawOption("no_checker_emails"),)),
        virtual_server_groups=(VirtualServerGroup("web", (VsgEntry("192.0.2.1-2", 80),)),),
        virtual_servers=(
            VirtualServer(name="group web", group="web", protocol="TCP", real_servers=rs),
            VirtualServer(name="group web", group="web", protocol="UDP", real_servers=rs),
            VirtualServer(name="group nope", group="nope", real_servers=rs),
        ),
    )
    plan = build_plan(cfg, hostname="lb1")
    assert [v.id for v in plan.virtual_servers] == ["[web]:0", "[web]:1"]
    assert plan.virtual_servers[1].real_servers[0].text == "[198.51.100.1]:udp:80"
    assert plan.router_id == "lb1" and plan.no_checker_emails
    assert plan.warnings == (
        "virtual server group nope specified but not configured - ignoring virtual server"
        " group nope",
    )


@pytest.mark.parametrize(
    ("own", "checker_loop", "expected"), [(None, 2.0, 60.0), (5.0, 2.0, 5.0), (0.0, None, 60.0)]
)
def test_misc_timeout_defaults_to_the_virtual_servers_delay_loop(
    own: float | None, checker_loop: float | None, expected: float
) -> None:
    c = {"misc_timeout": own, "delay_loop": checker_loop}
    assert checker_of(vs_with(c, kind="MISC_CHECK")).settings.misc_timeout == expected


opt_float = st.none() | st.floats(0.5, 100, allow_nan=False)
opt_int = st.none() | st.integers(0, 9)


@given(
    c=st.tuples(opt_float, opt_int, opt_float, opt_float),
    r=st.tuples(opt_float, opt_int, opt_float, opt_float),
    v=st.tuples(opt_float, opt_int, opt_float, opt_float),
)
def test_first_level_that_sets_an_option_wins(
    c: tuple[Any, ...], r: tuple[Any, ...], v: tuple[Any, ...]
) -> None:
    names = ("connect_timeout", "retry", "delay_before_retry", "warmup")
    defaults = (5.0, 1, 1.0, 60.0)
    vs = vs_with(
        dict(zip(names, c, strict=True)),
        dict(zip(names, r, strict=True)),
        dict(zip(names, v, strict=True)),
    )
    s = checker_of(vs).settings
    for name, values, default in zip(names, zip(c, r, v, strict=True), defaults, strict=True):
        expected = next((x for x in values if x is not None), default)
        assert getattr(s, name) == expected, name


KEEPALIVED_CONF = """
global_defs {
  router_id lb1
  smtp_alert_checker off
}
virtual_server_group web {
  192.0.2.10-12 80
  fwmark 9
}
virtual_server group web {
  delay_loop 6
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  quorum 3
  hysteresis 1
  sorry_server 203.0.113.9 8080
  real_server 198.51.100.1 80 {
    weight 2
    inhibit_on_failure
    TCP_CHECK {
      connect_timeout 3
    }
  }
  real_server 198.51.100.2 80 {
    smtp_alert on
    HTTP_GET {
      url {
        path /health
      }
      retry 2
    }
  }
}
"""


def test_plan_from_a_keepalived_conf() -> None:
    import core

    cfg = core.loads(KEEPALIVED_CONF, config_id="lb1", script_env=None).config
    plan = build_plan(cfg, hostname="ignored")
    (vs,) = plan.virtual_servers
    assert plan.router_id == "lb1"
    assert (vs.id, vs.protocol, vs.quorum, vs.hysteresis, vs.smtp_alert) == (
        "[web]:0",
        "tcp",
        3,
        1,
        False,
    )
    assert [m.count for m in vs.members] == [3, 1]
    assert vs.sorry_server is not None and vs.sorry_server.text == "[203.0.113.9]:tcp:8080"
    one, two = vs.real_servers
    assert (one.weight, one.inhibit, one.smtp_alert) == (2, True, False)
    assert two.smtp_alert is True
    tcp, http = one.checkers[0].settings, two.checkers[0].settings
    assert (tcp.connect_timeout, tcp.retry, tcp.delay_loop, tcp.delay_before_retry) == (
        3.0,
        1,
        6.0,
        1.0,
    )
    assert (http.connect_timeout, http.retry, http.delay_before_retry, http.warmup) == (
        5.0,
        2,
        3.0,
        6.0,
    )
