from collections.abc import Callable

import core
from core import Address, Checker, HostPort, Route, Rule, Script, TrackRef, UnicastPeer, Vmac
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]


def codes(r: core.LoadResult, severity: str | None = None) -> list[str]:
    return [p.code for p in r.problems if severity is None or p.severity == severity]


def test_minimal_instance_and_defaults(parse: Parse) -> None:
    r = parse(MINIMAL)
    assert r.exit_code == 0, r.problems
    (i,) = r.config.instances
    assert (i.name, i.interface, i.virtual_router_id) == ("VI_1", "eth0", 51)
    assert i.priority is None and i.effective_priority == 100 and i.effective_state == "BACKUP"
    assert i.advert_int == 1.0 and not i.nopreempt
    assert i.virtual_ipaddress == (Address("192.0.2.1/24"),)
    g = r.config.global_defs
    assert (g.vrrp_version, g.vrrp_garp_master_delay, g.vrrp_mcast_group4) == (2, 5, "224.0.0.18")


def test_state_master_without_priority_means_owner(parse: Parse) -> None:
    (i,) = parse(MINIMAL.replace("interface eth0", "interface eth0\nstate MASTER")).config.instances
    assert i.effective_priority == 255


def test_blocks_on_one_line_and_brace_on_next_line(parse: Parse) -> None:
    text = """vrrp_instance VI_1
{ interface eth0
virtual_router_id 7 }
vrrp_instance VI_2 { interface eth1 ; }
"""
    r = parse(text.replace(" ; ", " "))
    assert [(i.name, i.interface) for i in r.config.instances] == [
        ("VI_1", "eth0"),
        ("VI_2", "eth1"),
    ]
    assert r.config.instances[0].virtual_router_id == 7


def test_one_line_value_block_gives_one_entry_plus_error(parse: Parse) -> None:
    r = parse(MINIMAL.replace("192.0.2.1/24", "192.0.2.1 192.0.2.2"))
    assert [a.address for a in r.config.instances[0].virtual_ipaddress] == ["192.0.2.1/32"]
    (p,) = [p for p in r.problems if p.code == "unknown-entry"]
    assert p.text == "192.0.2.2" and p.severity == "error"


def test_unknown_keyword_is_error_with_hint_and_location(parse: Parse) -> None:
    r = parse(MINIMAL.replace("interface eth0", "interface eth0\n    virtual_router_di 9"))
    (p,) = [p for p in r.problems if p.code == "unknown-keyword"]
    assert (p.line, p.col, p.text, p.hint) == (4, 5, "virtual_router_di", "virtual_router_id")
    assert r.exit_code == 5
    assert r.config.instances[0].virtual_router_id == 51  # parsing carried on


def test_case_sensitive_keywords_hint_the_right_case(parse: Parse) -> None:
    r = parse("global_defs {\n Router_ID x\n}\n")
    (p,) = r.problems
    assert p.code == "unknown-keyword" and p.hint == "router_id"


def test_unknown_block_is_skipped_whole(parse: Parse) -> None:
    r = parse(MINIMAL.replace("interface eth0", "interface eth0\nfoo {\n bar\n}\npriority 90"))
    assert codes(r) == ["unknown-keyword"]
    assert r.config.instances[0].priority == 90


def test_brace_errors(parse: Parse) -> None:
    assert "extra-brace" in codes(parse(MINIMAL + "}\n"))
    assert "missing-brace" in codes(parse(MINIMAL.rstrip().rstrip("}")))
    assert "unexpected-brace" in codes(parse("{\n}\n"))
    assert "missing-brace" in codes(
        parse(MINIMAL.replace("virtual_ipaddress {", "virtual_ipaddress\n"))
    )


def test_bad_values_fall_back_to_default(parse: Parse) -> None:
    r = parse(MINIMAL.replace("interface eth0", "interface eth0\npriority 300\nadvert_int x"))
    i = r.config.instances[0]
    assert i.priority is None and i.advert_int == 1.0
    assert codes(r) == ["bad-value", "bad-value"]
    assert "outside range" in r.problems[0].message


def test_full_instance(parse: Parse) -> None:
    text = """
vrrp_script chk { script "/bin/true" }
track_file tf { file /tmp/x }
vrrp_track_process tp { process haproxy }
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 2
    nopreempt
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.10/24 dev eth1 brd + scope link label eth1:vip no_track
        192.0.2.11
    }
    virtual_ipaddress_excluded {
        2001:db8::1/64 dev eth0 -nodad
    }
    virtual_routes {
        src 192.0.2.1 198.51.100.0/24 via 192.0.2.254 dev eth0 table 100 metric 5 onlink
        blackhole 203.0.113.0/24 dev eth0
    }
    virtual_rules {
        from 192.0.2.0/24 table 100 priority 10
        to 198.51.100.0/24 lookup main preference 11 fwmark 0x10/0xff
    }
    track_interface {
        eth1 weight -20
        eth2
    }
    track_script {
        chk weight 10 reverse
    }
    track_file {
        tf
    }
    track_process {
        tp weight -5
    }
    unicast_src_ip 192.0.2.2
    unicast_peer {
        192.0.2.3
        192.0.2.4 min_ttl 250 max_ttl 255
    }
    use_vmac vrrp51
    notify_master "/bin/echo master" root root
    notify /bin/notify.sh
    garp_master_delay 1
    no_accept
}
"""
    r = parse(text, script_env=None)
    assert r.exit_code == 0, [core.format_problem(p) for p in r.problems]
    i = r.config.instances[0]
    assert i.nopreempt and i.priority == 150 and i.advert_int == 2.0
    assert i.authentication == core.Authentication("PASS", "secret")
    assert i.virtual_ipaddress[0] == Address(
        "192.0.2.10/24", dev="eth1", broadcast="+", scope="link", label="eth1:vip", no_track=True
    )
    assert i.virtual_ipaddress_excluded == (Address("2001:db8::1/64", dev="eth0", nodad=True),)
    assert i.virtual_routes == (
        Route(
            "198.51.100.0/24",
            src="192.0.2.1",
            via="192.0.2.254",
            dev="eth0",
            table="100",
            metric=5,
            onlink=True,
        ),
        Route("203.0.113.0/24", type="blackhole", dev="eth0"),
    )
    assert i.virtual_rules == (
        Rule(from_="192.0.2.0/24", table="100", preference=10),
        Rule(to="198.51.100.0/24", table="main", preference=11, fwmark="0x10/0xff"),
    )
    assert i.track_interface == (TrackRef("eth1", -20), TrackRef("eth2"))
    assert i.track_script == (TrackRef("chk", 10, True),)
    assert i.unicast_peer == (UnicastPeer("192.0.2.3"), UnicastPeer("192.0.2.4", 250, 255))
    assert i.use_vmac == Vmac("vrrp51")
    assert i.notify_master == Script("/bin/echo master", "root", "root")
    assert i.notify_master.argv == ["/bin/echo", "master"]
    assert i.notify == Script("/bin/notify.sh")
    assert i.accept is False and i.garp_master_delay == 1


def test_trackers(parse: Parse) -> None:
    text = """
vrrp_script s { script "killall -0 x"
  interval 2.5
  weight -30 reverse
  rise 3
  fall 4
  user nobody nogroup
  init_fail }
vrrp_track_process p { process "nginx: master" -c x
  weight 10
  quorum 2
  delay 1.5
  full_command }
track_file f { file /run/f
  weight -3
  init_file 0x10 overwrite }
vrrp_track_file old { file /run/old }
"""
    r = parse(text)
    (s,) = r.config.vrrp_scripts
    assert (s.script, s.interval, s.weight, s.weight_reverse, s.rise, s.fall, s.init_fail) == (
        Script("killall -0 x"),
        2.5,
        -30,
        True,
        3,
        4,
        True,
    )
    assert s.user == core.UserGroup("nobody", "nogroup") and s.effective_timeout == 2.5
    (p,) = r.config.track_processes
    assert p.process == ("nginx: master", "-c", "x") and p.quorum == 2
    assert (p.fork_delay, p.terminate_delay, p.full_command) == (1.5, 1.5, True)
    f, old = r.config.track_files
    assert (f.file, f.weight, f.init_file) == ("/run/f", -3, core.InitFile(16, True))
    assert old.name == "old" and "deprecated-synonym" in codes(r)


def test_global_defs_merge_and_values(parse: Parse) -> None:
    text = """
global_defs {
   notification_email {
     a@example.com b@example.com
     "Name <c@example.com>"
   }
   smtp_server 192.0.2.5 2525
   router_id LVS_1
   vrrp_strict
   enable_script_security
   script_user nobody
   vrrp_garp_interval 0.001
}
global_defs {
   vrrp_version 3
   snmp_socket udp:1.2.3.4:705
}
"""
    r = parse(text)
    g = r.config.global_defs
    assert g.notification_email == ("a@example.com", "b@example.com", "Name <c@example.com>")
    assert g.smtp_server == HostPort("192.0.2.5", 2525)
    assert g.router_id == "LVS_1" and g.vrrp_strict and g.enable_script_security
    assert g.script_user == core.UserGroup("nobody") and g.vrrp_version == 3
    assert g.vrrp_garp_interval == 0.001
    assert g.other == (core.RawOption("snmp_socket", ("udp:1.2.3.4:705",)),)
    assert codes(r) == ["not-implemented"]
    assert r.exit_code == 0


def test_sync_group_and_garp_group(parse: Parse) -> None:
    text = (
        MINIMAL
        + MINIMAL.replace("VI_1", "VI_2").replace("51", "52")
        + """
vrrp_sync_group G1 {
  group {
    VI_1
    VI_2
  }
  notify_master "/bin/m x"
}
garp_group { garp_interval 0.5
  interfaces { eth0 eth1 } }
"""
    )
    r = parse(text)
    (g,) = r.config.sync_groups
    assert g.group == ("VI_1", "VI_2") and g.notify_master == Script("/bin/m x")
    (gg,) = r.config.garp_groups
    assert gg.garp_interval == 0.5 and gg.interfaces == ("eth0", "eth1")


def test_lvs(parse: Parse) -> None:
    text = """
virtual_server_group VSG {
   192.0.2.1 80
   192.0.2.3-10 80
   fwmark 7 inet6
}
virtual_server group VSG {
   lb_algo wrr
   lb_kind DR
   persistence_timeout
   protocol TCP
   sorry_server 192.0.2.100 8080
   real_server 192.0.2.20 80 {
       weight 3
       HTTP_GET {
           url {
             path /health
             digest 9b3a0c85a887a256d6939da88aabd8cd
             status_code 200-299 301
           }
           connect_timeout 3
           nb_get_retry 3
       }
       TCP_CHECK {
           connect_port 8080
       }
       MISC_CHECK {
           misc_path "/bin/check arg"
           misc_dynamic
       }
   }
}
virtual_server fwmark 1 {
   lvs_sched rr
   lvs_method DR
   real_server 192.0.2.21 {
       DNS_CHECK { type a
         name example.org }
       UDP_CHECK { payload 00ff }
       PING_CHECK { retry 4 }
   }
}
"""
    r = parse(text)
    (vsg,) = r.config.virtual_server_groups
    assert [(e.address, e.port, e.fwmark, e.family) for e in vsg.entries] == [
        ("192.0.2.1", 80, None, None),
        ("192.0.2.3-10", 80, None, None),
        (None, None, 7, "inet6"),
    ]
    vs1, vs2 = r.config.virtual_servers
    assert (vs1.name, vs1.group, vs1.lvs_sched, vs1.lvs_method, vs1.persistence_timeout) == (
        "group VSG",
        "VSG",
        "wrr",
        "DR",
        360,
    )
    assert vs1.sorry_server == HostPort("192.0.2.100", 8080) and vs1.delay_loop == 60.0
    (rs,) = vs1.real_servers
    assert (rs.ip, rs.port, rs.weight) == ("192.0.2.20", 80, 3)
    http, tcp, misc = rs.checkers
    assert http.kind == "HTTP_GET" and http.retry == 3 and http.connect_timeout == 3
    assert http.urls[0].status_code == ("200-299", "301") and http.urls[0].path == "/health"
    assert tcp == Checker("TCP_CHECK", connect_port=8080)
    assert misc.misc_path == Script("/bin/check arg") and misc.misc_dynamic
    assert vs2.name == "fwmark 1" and vs2.fwmark == 1
    assert [c.kind for c in vs2.real_servers[0].checkers] == [
        "DNS_CHECK",
        "UDP_CHECK",
        "PING_CHECK",
    ]
    assert vs2.real_servers[0].checkers[0].type == "A"
    assert codes(r, "error") == []
    assert "deprecated" in codes(r)  # nb_get_retry


def test_checker_keyword_outside_its_checker(parse: Parse) -> None:
    r = parse(
        "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n"
        " TCP_CHECK {\n misc_path /x\n }\n }\n}\n"
    )
    (p,) = [p for p in r.problems if p.code == "unknown-keyword"]
    assert p.text == "misc_path" and "TCP_CHECK" in p.message


def test_static_blocks(parse: Parse) -> None:
    text = """
static_ipaddress {
  192.0.2.1/24 dev eth0 scope link
}
static_routes {
  198.51.100.0/24 via 192.0.2.254 dev eth0
  default via 192.0.2.1
}
static_rules {
  from 192.0.2.0/24 table 10 pref 100
}
"""
    c = parse(text).config
    assert c.static_ipaddress == (Address("192.0.2.1/24", dev="eth0", scope="link"),)
    assert [r.dest for r in c.static_routes] == ["198.51.100.0/24", "default"]
    assert c.static_rules == (Rule(from_="192.0.2.0/24", table="10", preference=100),)


def test_invalid_entries_are_dropped_with_errors(parse: Parse) -> None:
    r = parse(
        "static_rules {\n from 192.168.100./24 table 1 pref 1\n}\n"
        "static_ipaddress {\n 300.1.1.1\n}\n"
    )
    assert r.config.static_rules == () and r.config.static_ipaddress == ()
    assert [p.line for p in r.problems] == [2, 5]


def test_raw_keywords_are_kept_and_reported(parse: Parse) -> None:
    r = parse(
        MINIMAL.replace("interface eth0", "interface eth0\nauth_hmac {\n key 1 hex:00\n}\ndebug 2")
    )
    i = r.config.instances[0]
    assert [o.keyword for o in i.other] == ["auth_hmac", "debug"]
    assert i.other[0].children == (core.RawOption("key", ("1", "hex:00")),)
    assert codes(r) == ["not-implemented", "not-implemented"] and r.exit_code == 0


def test_root_options_and_conditional_sample(parse: Parse) -> None:
    text = "@node1 net_namespace blue\n@^node1 net_namespace red\ninstance i1\n"
    assert parse(text).config.net_namespace == "blue"
    assert parse(text, config_id="x").config.net_namespace == "red"
    assert parse(text).config.instance == "i1"


def test_keyword_in_the_wrong_block_says_where_it_belongs(parse: Parse) -> None:
    r = parse(MINIMAL.replace("interface eth0", "interface eth0\n    vrrp_strict"))
    (p,) = r.problems
    assert p.message == "Unknown keyword 'vrrp_strict' in vrrp_instance (it belongs in global_defs)"


def test_file_check_takes_no_timing_keywords(parse: Parse) -> None:
    # keepalived 2.2.7's FILE_CHECK takes track_file and weight alone (its file is watched,
    # never scheduled) and -t fails on anything else (tests/core/test_samples_interop.py)
    text = (
        "track_file tf {\n file /tmp/tf\n}\nvirtual_server 192.0.2.1 80 {\n lb_algo rr\n"
        " lb_kind NAT\n protocol TCP\n real_server 192.0.2.2 80 {\n  FILE_CHECK {\n"
        "   track_file tf\n   weight 2\n   delay_loop 5\n   retry 3\n  }\n }\n}\n"
    )
    r = parse(text)
    assert [(p.code, p.line) for p in r.problems] == [
        ("unknown-keyword", 12),
        ("unknown-keyword", 13),
    ]
    assert r.problems[1].message.startswith("Unknown keyword 'retry' in FILE_CHECK")
    assert r.exit_code == 5
    (checker,) = r.config.virtual_servers[0].real_servers[0].checkers
    assert (checker.track_file, checker.weight) == ("tf", 2)


def test_keyword_set_twice_warns_and_last_wins(parse: Parse) -> None:
    r = parse(MINIMAL.replace("interface eth0", "interface eth0\n    priority 90\n    priority 80"))
    assert r.config.instances[0].priority == 80
    assert codes(r) == ["duplicate-keyword"] and r.problems[0].line == 5 and r.exit_code == 0


def test_bad_choice_value_hints_the_right_spelling(parse: Parse) -> None:
    r = parse(MINIMAL.replace("interface eth0", "interface eth0\n    state Master"))
    (p,) = r.problems
    assert (p.code, p.text, p.hint) == ("bad-value", "Master", "MASTER")
    assert r.config.instances[0].effective_state == "BACKUP"


def test_address_helpers(parse: Parse) -> None:
    a = parse(MINIMAL.replace("192.0.2.1/24", "2001:DB8:0::5/64")).config.instances[0]
    vip = a.virtual_ipaddress[0]
    assert (vip.address, vip.ip, vip.prefixlen, vip.family) == (
        "2001:db8::5/64",
        "2001:db8::5",
        64,
        6,
    )


def test_misc_path_words_are_joined_keeping_argv(parse: Parse) -> None:
    text = (
        "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n MISC_CHECK {\n"
        ' misc_path /bin/echo "it\'s here" x\n }\n }\n}\n'
    )
    config = parse(text, script_env=None).config
    misc = config.virtual_servers[0].real_servers[0].checkers[0].misc_path
    assert misc is not None and misc.argv == ["/bin/echo", "it's here", "x"]
    again = core.loads(core.render(config), script_env=None)
    assert again.config == config


def test_unquoted_vrrp_script_runs_only_its_first_word(parse: Parse) -> None:
    r = parse("vrrp_script s {\n script /bin/echo hello world\n}\n", script_env=None)
    assert r.config.vrrp_scripts[0].script == core.Script("/bin/echo")
    assert [(p.code, p.text) for p in r.problems if p.code != "unused-script"] == [
        ("script-words-ignored", "hello")
    ]


def test_escapes_inside_quotes(parse: Parse) -> None:
    text = 'vrrp_script s {\n script "/bin/echo x\\"y z\\"w \\\\x41 \\x42"\n}\n'
    config = parse(text, script_env=None).config
    script = config.vrrp_scripts[0].script
    assert script is not None
    assert script.argv == ["/bin/echo", "xy zw", "A", "B"]  # as keepalived 2.2.7's -d dump
    assert core.loads(core.render(config), script_env=None).config == config
