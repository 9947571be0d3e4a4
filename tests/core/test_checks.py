from collections.abc import Callable

import core
from tests.core.conftest import MINIMAL, no_scripts_env

Parse = Callable[..., core.LoadResult]


def inst(**opts: str) -> str:
    extra = "\n".join(f"    {k} {v}".rstrip() for k, v in opts.items())
    return MINIMAL.replace("    interface eth0", "    interface eth0\n" + extra)


def problem(r: core.LoadResult, code: str) -> core.Problem:
    found = [p for p in r.problems if p.code == code]
    assert len(found) == 1, [(p.code, p.message) for p in r.problems]
    return found[0]


def test_missing_vrid(parse: Parse) -> None:
    r = parse(MINIMAL.replace("virtual_router_id 51", ""))
    assert problem(r, "missing-vrid").line == 2 and r.exit_code == 5


def test_duplicate_vrid_same_interface_and_family(parse: Parse) -> None:
    two = MINIMAL + MINIMAL.replace("VI_1", "VI_2").replace("192.0.2.1", "192.0.2.2")
    p = problem(parse(two), "duplicate-vrid")
    assert "VI_1 and VI_2 both use VRID 51" in p.message and p.line == 12
    # Another interface, or the other family, is fine.
    assert parse(two.replace("eth0", "eth1", 1)).exit_code == 0
    v6 = MINIMAL.replace("VI_1", "VI_2").replace("192.0.2.1/24", "fe80::1/64")
    assert parse(MINIMAL + v6).exit_code == 0


def test_nopreempt_with_state_master_is_cleared(parse: Parse) -> None:
    r = parse(inst(state="MASTER", priority="100", nopreempt=""))
    problem(r, "nopreempt-master")
    assert not r.config.instances[0].nopreempt and r.exit_code == 5


def test_auth_pass_truncated(parse: Parse) -> None:
    text = inst(**{"authentication {\n auth_type PASS\n auth_pass secretpassword\n }": ""})
    r = parse(text)
    assert "secretpa" in problem(r, "auth-pass-long").message
    assert r.config.instances[0].authentication == core.Authentication("PASS", "secretpa")


def test_fractional_advert_int_v2_rounded_v3_kept(parse: Parse) -> None:
    r = parse(inst(advert_int="2.4"))
    problem(r, "advert-int-fraction")
    assert r.config.instances[0].advert_int == 2.0
    r3 = parse(inst(advert_int="2.4", version="3"))
    assert r3.exit_code == 0 and r3.config.instances[0].advert_int == 2.4
    r3b = parse(inst(advert_int="0.015", version="3"))
    assert r3b.config.instances[0].advert_int == 0.02


def test_ah_with_initial_master(parse: Parse) -> None:
    r = parse(
        inst(
            state="MASTER",
            priority="100",
            **{"authentication {\n auth_type AH\n auth_pass x\n }": ""},
        )
    )
    problem(r, "ah-master")
    assert r.config.instances[0].state == "BACKUP"


def test_unknown_tracked_names_are_dropped(parse: Parse) -> None:
    text = inst(
        **{
            "track_script {\n nosuch\n }\n track_file {\n nofile\n }\n"
            " track_process {\n noproc\n }": ""
        }
    )
    r = parse(text)
    assert sorted((p.message, p.line) for p in r.problems if p.code == "unknown-track") == [
        ("(VI_1) track file nofile not found, ignoring it: no track_file nofile is defined", 8),
        (
            "(VI_1) track process noproc not found, ignoring it: "
            "no vrrp_track_process noproc is defined",
            11,
        ),
        ("(VI_1) track script nosuch not found, ignoring it: no vrrp_script nosuch is defined", 5),
    ]
    i = r.config.instances[0]
    assert i.track_script == i.track_file == i.track_process == ()


def test_vrrp_script_without_script_is_kept_for_an_external_checker(parse: Parse) -> None:
    # keepalived removes it ("No script set"); docs/design.md lets the bus feed it instead.
    r = parse("vrrp_script s {\n interval 1\n}\n" + inst(**{"track_script {\n s\n }": ""}))
    p = problem(r, "external-script")
    assert p.severity == "warning" and "health.s" in p.message
    assert [s.name for s in r.config.vrrp_scripts] == ["s"]
    assert [t.name for t in r.config.instances[0].track_script] == ["s"]


def test_weight_lints(parse: Parse) -> None:
    text = "track_file f {\n file /x\n weight 5\n}\n" + inst(
        priority="255", **{"track_file {\n f\n }": ""}
    )
    r = parse(text)
    problem(r, "weight-owner")
    assert r.exit_code == 5  # keepalived: "ignoring ... due to address owner"
    assert r.config.instances[0].track_file == ()
    text2 = "track_file f {\n file /x\n weight 5\n}\n" + inst(
        nopreempt="", **{"track_file {\n f\n }": ""}
    )
    problem(parse(text2), "weight-nopreempt")


def test_sync_groups(parse: Parse) -> None:
    r = parse(MINIMAL + "vrrp_sync_group G {\n group {\n VI_1\n VI_9\n }\n}\n")
    problem(r, "unknown-instance")
    problem(r, "sync-group-one-member")
    assert r.config.sync_groups[0].group == ("VI_1",)
    r2 = parse(MINIMAL + "vrrp_sync_group G {\n group {\n VI_9\n }\n}\n")
    problem(r2, "empty-sync-group")
    assert r2.config.sync_groups == ()


def test_no_vip_and_mixed_families(parse: Parse) -> None:
    problem(parse(MINIMAL.replace("192.0.2.1/24", "")), "no-vip")
    assert (
        parse(
            MINIMAL.replace("192.0.2.1/24", "").replace("eth0", "eth0\nno_virtual_ipaddress")
        ).exit_code
        == 0
    )
    r = parse(MINIMAL.replace("192.0.2.1/24", "192.0.2.1\n2001:db8::1"))
    problem(r, "mixed-family")
    assert [a.address for a in r.config.instances[0].virtual_ipaddress] == ["192.0.2.1/32"]


def test_route_without_dev(parse: Parse) -> None:
    r = parse(
        inst(
            **{
                "virtual_routes {\n 198.51.100.0/24 via 192.0.2.254\n"
                " 203.0.113.0/24 via 192.0.2.254 no_track\n }": ""
            }
        )
    )
    assert "198.51.100.0/24" in problem(r, "route-no-dev").message


def test_duplicate_names_and_peers(parse: Parse) -> None:
    problem(parse(MINIMAL + MINIMAL.replace("eth0", "eth1")), "duplicate-name")
    problem(parse(inst(**{"unicast_peer {\n 192.0.2.9\n 192.0.2.9\n }": ""})), "duplicate-peer")


def test_fwmark_with_protocol(parse: Parse) -> None:
    r = parse("virtual_server fwmark 1 {\n protocol TCP\n}\n")
    assert problem(r, "fwmark-protocol").line == 2


def test_script_security_exit_6_and_beats_5() -> None:
    text = "vrrp_script s {\n script /bin/ok\n}\n" + inst(**{"track_script {\n s\n }": ""})
    env = no_scripts_env({"/bin/ok"})
    assert core.loads(text, script_env=env).exit_code == 6
    assert core.loads(text + "bogus\n", script_env=env).exit_code == 6
    secure = "global_defs {\n enable_script_security\n script_user nobody\n}\n" + text
    assert core.loads(secure, script_env=env).exit_code == 0
    no_user = "global_defs {\n enable_script_security\n}\n" + text
    assert core.loads(no_user, script_env=env).exit_code == 5
    env_user = no_scripts_env({"/bin/ok"}, {"keepalived_script"})
    assert core.loads(no_user, script_env=env_user).exit_code == 0


def test_missing_scripts() -> None:
    text = "vrrp_script s {\n script /bin/missing\n}\n" + inst(**{"track_script {\n s\n }": ""})
    r = core.loads(text, script_env=no_scripts_env())
    assert [p.code for p in r.problems] == ["script-not-found"] and r.exit_code == 5
    # A missing notify script is silently disabled by keepalived: not an error.
    assert (
        core.loads(inst(notify_master="/bin/missing"), script_env=no_scripts_env()).exit_code == 0
    )
    # Shell constructs are not looked up.
    text2 = text.replace("/bin/missing", '"</dev/tcp/127.0.0.1/80"')
    assert core.loads(text2, script_env=no_scripts_env()).exit_code == 0


def test_interfaces_checked_only_when_given(parse: Parse) -> None:
    text = MINIMAL.replace("192.0.2.1/24", "192.0.2.1/24 dev eth7").replace(
        "interface eth0", "interface eth0\n    track_interface {\n eth9\n }"
    )
    assert parse(text).exit_code == 0
    r = parse(text, interfaces={"eth0", "lo"})
    assert sorted((p.text, p.line) for p in r.problems) == [("eth7", 9), ("eth9", 5)]
    assert r.exit_code == 5
    dyn = "global_defs {\n dynamic_interfaces\n}\n" + text
    assert parse(dyn, interfaces={"eth0"}).exit_code == 0


def test_duplicate_named_blocks_keep_the_first(parse: Parse) -> None:
    r = parse(MINIMAL + MINIMAL.replace("eth0", "eth1"))
    (i,) = r.config.instances
    assert i.interface == "eth0"


def test_route_problem_points_at_the_route_line(parse: Parse) -> None:
    text = inst(
        **{"virtual_routes {\n 198.51.100.0/24 dev eth0\n 203.0.113.0/24 via 192.0.2.9\n }": ""}
    )
    p = problem(parse(text), "route-no-dev")
    assert p.line == 6 and p.text == "203.0.113.0/24"


def test_preempt_delay_conflicts(parse: Parse) -> None:
    for extra in ({"nopreempt": ""}, {"state": "MASTER"}):
        r = parse(inst(preempt_delay="5", **extra))
        problem(r, "preempt-delay-ignored")
        assert r.config.instances[0].preempt_delay == 0.0
    strict = "global_defs {\n vrrp_strict\n}\n" + inst(preempt_delay="5")
    problem(parse(strict), "preempt-delay-ignored")
    assert parse(inst(preempt_delay="5")).config.instances[0].preempt_delay == 5.0


def test_strict_mode_drops_authentication(parse: Parse) -> None:
    auth = {"authentication {\n auth_type PASS\n auth_pass x\n }": ""}
    r = parse(inst(strict_mode="", **auth))
    problem(r, "strict-auth")
    assert r.config.instances[0].authentication is None


_STRICT_RESETS = {
    # option -> (problem code, field, value after the reset)
    "down_timer_adverts 5": ("strict-down-timer", "down_timer_adverts", 3),
    "accept": ("strict-accept-v2", "accept", False),
    "garp_lower_prio_repeat 3": ("strict-garp-repeat", "garp_lower_prio_repeat", None),
    "garp_lower_prio_delay 2": ("strict-garp-delay", "garp_lower_prio_delay", None),
    "lower_prio_no_advert false": ("strict-lower-prio-advert", "lower_prio_no_advert", True),
    "higher_prio_send_advert": ("strict-higher-prio-advert", "higher_prio_send_advert", False),
    "use_vmac vrrp51\n    vmac_xmit_base": ("strict-xmit-base", "vmac_xmit_base", False),
}


def test_strict_mode_resets_what_keepalived_resets(parse: Parse) -> None:
    for option, (code, field, value) in _STRICT_RESETS.items():
        key, _, arg = option.partition(" ")
        r = parse(inst(strict_mode="", priority="100", **{key: arg}))
        problem(r, code)
        assert getattr(r.config.instances[0], field) == value, option
        assert r.exit_code == 5
        # Without strict mode the same option is fine.
        plain = parse(inst(priority="100", **{key: arg}))
        assert not [p for p in plain.problems if p.code.startswith("strict-")], option


def test_strict_mode_refuses_a_vmac_mac_and_keeps_the_vmac(parse: Parse) -> None:
    r = parse(inst(strict_mode="", use_vmac="vrrp51 02:00:5e:00:01:33"))
    problem(r, "strict-vmac-mac")
    assert r.config.instances[0].use_vmac == core.Vmac(name="vrrp51", mac=None)


def test_strict_v2_accept_only_refused_for_a_non_owner(parse: Parse) -> None:
    owner = parse(inst(strict_mode="", priority="255", accept=""))
    assert owner.exit_code == 0 and owner.config.instances[0].accept
    v3 = parse(inst(strict_mode="", version="3", accept=""))
    assert v3.exit_code == 0
    assert core.vrrp_settings(v3.config, v3.config.instances[0]).accept


def test_strict_initial_state_follows_ownership(parse: Parse) -> None:
    for state, priority, want in (("MASTER", "100", "BACKUP"), ("BACKUP", "255", "MASTER")):
        r = parse(inst(strict_mode="", state=state, priority=priority))
        problem(r, "strict-master-owner")
        assert r.config.instances[0].effective_state == want
    assert parse(inst(strict_mode="", priority="255")).exit_code == 0


def test_strict_ipv6_wants_v3_and_a_link_local_first_vip(parse: Parse) -> None:
    v6 = inst(strict_mode="", version="2").replace("192.0.2.1/24", "2001:db8::1/64")
    r = parse(v6)
    problem(r, "strict-ipv6-v2")
    problem(r, "strict-ipv6-link-local")
    assert r.config.instances[0].version == 3
    ll = parse(inst(strict_mode="", version="3").replace("192.0.2.1/24", "fe80::1/64"))
    assert ll.exit_code == 0


def test_sync_group_member_weights(parse: Parse) -> None:
    two = inst(**{"track_interface {\n eth1 weight 10\n }": ""}) + MINIMAL.replace(
        "VI_1", "VI_2"
    ).replace("51", "52")
    group = "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n"
    r = parse(two + group)
    problem(r, "sync-group-weight")
    assert r.config.instances[0].track_interface == (core.TrackRef("eth1", 0),)
    allowed = group.replace("}\n}\n", "}\n sync_group_tracking_weight\n}\n")
    r2 = parse(two + allowed)
    assert r2.exit_code == 0 and r2.config.instances[0].track_interface[0].weight == 10


def test_virtual_server_without_real_servers(parse: Parse) -> None:
    problem(parse("virtual_server 192.0.2.1 80 {\n lb_algo rr\n}\n"), "no-real-servers")


def test_script_with_missing_user_is_disabled_not_counted() -> None:
    env = no_scripts_env({"/bin/true"})
    r = core.loads(inst(notify_master="/bin/true nosuchuser"), script_env=env)
    assert [p.code for p in r.problems] == ["script-user-missing"] and r.exit_code == 0
    r2 = core.loads(
        inst(notify_master="/bin/true root"), script_env=no_scripts_env({"/bin/true"}, {"root"})
    )
    assert r2.exit_code == 6


def test_entry_locations_skip_dropped_entries(parse: Parse) -> None:
    routes = "virtual_routes {\n 999.1.1.1/24 dev eth0\n 203.0.113.0/24 via 192.0.2.9\n }"
    p = problem(parse(inst(**{routes: ""})), "route-no-dev")
    assert p.line == 6


def test_problem_locations_inside_sub_blocks(parse: Parse) -> None:
    text = inst(**{"authentication {\n auth_type PASS\n auth_pass secretpassword\n }": ""})
    assert problem(parse(text), "auth-pass-long").line == 6
    sec = core.loads(
        "global_defs {\n router_id x\n}\n" + inst(notify_master="/bin/ok"),
        script_env=no_scripts_env({"/bin/ok"}, {"root"}),
    )
    assert problem(sec, "script-security").line == 1


def test_insecure_root_scripts_are_disabled() -> None:
    found = {"/opt/chk", "/opt/notify"}
    env = core.ScriptEnv(
        lambda c: c if c in found else None,
        lambda u: u == "root",
        lambda path: "/opt is world-writable",
    )
    head = "global_defs {\n enable_script_security\n script_user root\n}\n"
    tracked = (
        head + "vrrp_script s {\n script /opt/chk\n}\n" + inst(**{"track_script {\n s\n }": ""})
    )
    r = core.loads(tracked, script_env=env)
    assert [(p.code, p.severity) for p in r.problems] == [("script-insecure", "error")]
    assert r.exit_code == 5
    notify = core.loads(head + inst(notify_master="/opt/notify"), script_env=env)
    assert [(p.code, p.severity) for p in notify.problems] == [("script-insecure", "warning")]
    assert notify.exit_code == 0
    # Not run as root: not checked.
    as_nobody = tracked.replace("script_user root", "script_user nobody")
    assert core.loads(as_nobody, script_env=env).exit_code == 0


def test_own_interface_and_duplicates_are_both_dropped_across_track_blocks() -> None:
    # Found by test_mutated_configs_never_crash: dropping the instance's own interface used to
    # put back the duplicates fix_tracks had just removed, so the loaded config did not survive
    # its own render.
    text = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_interface {
        eth1
        eth2
    }
    track_interface {
        eth0
        eth2
    }
}
"""
    r = core.loads(text, config_id="n", script_env=no_scripts_env())
    (inst,) = r.config.instances
    assert [t.name for t in inst.track_interface] == ["eth1", "eth2"]
    assert {p.code for p in r.problems} >= {"duplicate-track", "track-own-interface"}
    assert core.loads(core.render(r.config), config_id="n", script_env=None).config == r.config
