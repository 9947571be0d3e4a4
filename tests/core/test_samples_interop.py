"""Our `-t` verdict on Debian's keepalived samples equals keepalived 2.2.7's own.

keepalived -t checks that interfaces exist, so it runs in a throw-away network namespace holding
eth0..eth3 and eth0.1 (veth ends named so), with pid files in a temp dir.
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import core

KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
SAMPLES = Path("/usr/share/doc/keepalived/samples")
INTERFACES = ("eth0", "eth1", "eth2", "eth3", "eth0.1")
# What keepalived sees in the namespace (the veth peers are named pkpN).
NETNS_IFACES = frozenset({*INTERFACES, "lo", *(f"pkp{i}" for i in range(len(INTERFACES)))})

# (sample name, config id) -> (keepalived's exit code, ours, why we deliberately differ)
_NETNS_REASON = (
    "with net_namespace set, keepalived 2.2.7 -t skips the VRRP/checker config checks and exits 0 "
    "even on errors (verified: an unknown keyword gives 0); we still report the missing script"
)
_EXTERNAL_REASON = (
    "the sample has a vrrp_script with no script line: keepalived removes it (error, 5); "
    "pykeepalived keeps it for an external checker on the bus (docs/design.md) with a warning"
)
EXPECTED_DIFFERENCES: dict[tuple[str, str], tuple[int, int, str]] = {
    ("keepalived.conf.conditional_conf", "high"): (0, 5, _NETNS_REASON),
    ("keepalived.conf.conditional_conf", "low"): (0, 5, _NETNS_REASON),
    ("keepalived.conf.conditional_conf", "other"): (5, 0, _EXTERNAL_REASON),
    ("keepalived.conf.conditional_conf", "pkcfgtest"): (5, 0, _EXTERNAL_REASON),
}

pytestmark = [
    pytest.mark.netns,
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists(KEEPALIVED), reason="keepalived not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not SAMPLES.is_dir(), reason="keepalived samples not installed"),
]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"pk-cfg-{secrets.token_hex(3)}"
    _ip("netns", "add", name)
    try:
        for i, ifname in enumerate(INTERFACES):
            # veth is used because the dummy module may not be loadable in CI containers.
            _ip("-n", name, "link", "add", ifname, "type", "veth", "peer", "name", f"pkp{i}")
            _ip("-n", name, "link", "set", ifname, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=10)


def _samples(tmp: Path) -> list[Path]:
    out = []
    for p in sorted(SAMPLES.iterdir()):
        if not p.name.startswith("keepalived.conf"):
            continue
        if p.suffix == ".gz":
            dest = tmp / p.name.removesuffix(".gz")
            dest.write_bytes(gzip.decompress(p.read_bytes()))
            out.append(dest)
        else:
            out.append(p)
    return out


def keepalived_verdict(netns: str, conf: Path, run: Path, config_id: str) -> int:
    proc = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            KEEPALIVED,
            "-t",
            "-f",
            str(conf),
            "-i",
            config_id,
            "-p",
            str(run / "k.pid"),
            "-r",
            str(run / "v.pid"),
            "-c",
            str(run / "c.pid"),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return proc.returncode


def test_sample_verdicts_match_keepalived(netns: str, tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    assert samples, "no samples found"
    mismatches = []
    for conf in samples:
        theirs = keepalived_verdict(netns, conf, tmp_path, "pkcfgtest")
        ours = core.load(conf, config_id="pkcfgtest", interfaces=NETNS_IFACES).exit_code
        expected = EXPECTED_DIFFERENCES.get((conf.name, "pkcfgtest"))
        if expected is not None:
            assert (theirs, ours) == expected[:2], f"{conf.name}: expected difference changed"
            continue
        expected = EXPECTED_DIFFERENCES.get((conf.name, "pkcfgtest"))
        if theirs != ours and (expected is None or (theirs, ours) != expected[:2]):
            mismatches.append(f"{conf.name}: keepalived {theirs}, ours {ours}")
    assert not mismatches, "\n".join(mismatches)


def test_conditional_sample_with_config_ids(netns: str, tmp_path: Path) -> None:
    conf = SAMPLES / "keepalived.conf.conditional_conf"
    if not conf.exists():
        pytest.skip(f"{conf} is not installed (Debian keepalived ships it)")
    for config_id in ("high", "low", "other"):
        theirs = keepalived_verdict(netns, conf, tmp_path, config_id)
        ours = core.load(conf, config_id=config_id, interfaces=NETNS_IFACES).exit_code
        expected = EXPECTED_DIFFERENCES.get((conf.name, config_id))
        if expected is not None:
            assert (theirs, ours) == expected[:2], f"{config_id}: expected difference changed"
        else:
            assert (config_id, ours) == (config_id, theirs)


_BASE = """vrrp_instance VI_1 {
 interface eth0
 virtual_router_id 51
 priority 100
 virtual_ipaddress {
  192.0.2.1
 }
"""
_STRICT = "global_defs {\n vrrp_strict\n}\n"
_SCRIPT = "vrrp_script s1 {\n script /bin/true\n}\n"
_TRACKED = " track_script {\n  s1\n }\n"

# Small configs probing one rule each; keepalived's verdict is computed live, not hard-coded.
PROBES: dict[str, str] = {
    "clean": _BASE + "}\n",
    "route-no-dev": _BASE + " virtual_routes {\n  192.0.2.128/25 via 192.0.2.254\n }\n}\n",
    "nopreempt-master": _BASE + " state MASTER\n nopreempt\n}\n",
    "auth-pass-long": _BASE + " authentication {\n  auth_type PASS\n  auth_pass 123456789\n }\n}\n",
    "advert-fraction-v2": _BASE + " advert_int 2.4\n}\n",
    "advert-fraction-v3": _BASE + " version 3\n advert_int 2.4\n}\n",
    "missing-script": "vrrp_script s1 {\n script /nonexistent/x\n}\n" + _BASE + _TRACKED + "}\n",
    "script-security": _SCRIPT + _BASE + _TRACKED + "}\n",
    "security-beats-errors": _SCRIPT + _BASE + _TRACKED + " foo\n}\n",
    "unused-script": _SCRIPT + _BASE + "}\n",
    "duplicate-vrid": _BASE
    + "}\n"
    + _BASE.replace("VI_1", "VI_2").replace("192.0.2.1", "192.0.2.2")
    + "}\n",
    "priority-range": _BASE + " priority 300\n}\n",
    "missing-vrid": _BASE.replace(" virtual_router_id 51\n", "") + "}\n",
    "unknown-track": _BASE + " track_script {\n  nosuch\n }\n}\n",
    "include-missing": "include /nonexistent/pk.conf\n" + _BASE + "}\n",
    "sync-group-one": "vrrp_sync_group G {\n group {\n  VI_1\n }\n}\n" + _BASE + "}\n",
    "notify-missing": _BASE + " notify_master /nonexistent/x\n}\n",
    "notify-exists": _BASE + " notify_master /bin/true\n}\n",
    "bad-state": _BASE + " state Master\n}\n",
    "vips-on-one-line": _BASE.replace("192.0.2.1", "192.0.2.1 192.0.2.2") + "}\n",
    "unknown-block": _BASE + " foo {\n  bar\n }\n}\n",
    "no-vip": _BASE.replace("  192.0.2.1\n", "") + "}\n",
    "fwmark-protocol": "virtual_server fwmark 1 {\n protocol TCP\n}\n",
    "track-own-interface": _BASE + " track_interface {\n  eth0\n  eth1 weight -10\n }\n}\n",
    "missing-interface": _BASE.replace("interface eth0", "interface eth9") + "}\n",
    "missing-vip-dev": _BASE.replace("192.0.2.1", "192.0.2.1 dev eth9") + "}\n",
    "dynamic-interfaces": "global_defs {\n dynamic_interfaces\n}\n"
    + _BASE.replace("interface eth0", "interface eth9")
    + "}\n",
    "v3-auth": _BASE.replace(" priority 100", " priority 100\n version 3")
    + " authentication {\n  auth_type PASS\n  auth_pass abc\n }\n}\n",
    "strict-auth": "global_defs {\n vrrp_strict\n}\n"
    + _BASE
    + " authentication {\n  auth_type PASS\n  auth_pass abc\n }\n}\n",
    "strict-clean": "global_defs {\n vrrp_strict\n}\n" + _BASE + "}\n",
    "strict-v2-accept": _STRICT + _BASE + " accept\n}\n",
    "strict-v2-accept-owner": _STRICT
    + _BASE.replace("priority 100", "priority 255")
    + " accept\n}\n",
    "strict-v3-no-accept": _STRICT + _BASE + " version 3\n no_accept\n}\n",
    "strict-master-not-owner": _STRICT + _BASE + " state MASTER\n}\n",
    "strict-owner-backup": _STRICT
    + _BASE.replace("priority 100", "priority 255")
    + " state BACKUP\n}\n",
    "strict-down-timer": _STRICT + _BASE + " down_timer_adverts 5\n}\n",
    "strict-garp-lower": _STRICT
    + _BASE
    + " garp_lower_prio_repeat 2\n garp_lower_prio_delay 1\n}\n",
    "strict-lower-prio-advert": _STRICT + _BASE + " lower_prio_no_advert false\n}\n",
    "strict-higher-prio-advert": _STRICT + _BASE + " higher_prio_send_advert\n}\n",
    "strict-vmac-mac": _STRICT + _BASE + " use_vmac vrrp51 02:00:5e:00:01:33\n}\n",
    "strict-vmac-xmit-base": _STRICT + _BASE + " use_vmac\n vmac_xmit_base\n}\n",
    "strict-ipv6-global-first": _STRICT
    + _BASE.replace("192.0.2.1", "2001:db8::1").replace("priority 100", "priority 100\n version 3")
    + "}\n",
    "strict-ipv6-link-local-first": _STRICT
    + _BASE.replace("192.0.2.1", "fe80::1\n  2001:db8::1").replace(
        "priority 100", "priority 100\n version 3"
    )
    + "}\n",
    "strict-ipv6-version-2": _STRICT
    + _BASE.replace("192.0.2.1", "fe80::1").replace("priority 100", "priority 100\n version 2")
    + "}\n",
    "nonstrict-v2-accept": _BASE + " accept\n}\n",
    "preempt-delay-nopreempt": _BASE + " nopreempt\n preempt_delay 5\n}\n",
    "preempt-delay-master": _BASE + " state MASTER\n preempt_delay 5\n}\n",
    "evips-only": _BASE.replace("virtual_ipaddress {", "virtual_ipaddress_excluded {") + "}\n",
    "ipv6-vip-version-2": _BASE.replace("192.0.2.1", "2001:db8::1") + "}\n",
    "track-file-without-file": "track_file tf {\n weight 1\n}\n"
    + _BASE
    + " track_file {\n  tf\n }\n}\n",
    "bfd": "bfd_instance b1 {\n neighbor_ip 192.0.2.9\n}\n" + _BASE + " track_bfd {\n  b1\n }\n}\n",
    "auth-hmac": _BASE + " auth_hmac {\n  key 1 abc\n }\n}\n",
    "notify-unquoted-words": _BASE + " notify_master /bin/echo hello world\n}\n",
    "owner-weight": _BASE.replace("priority 100", "priority 255")
    + " track_interface {\n  eth1 weight 10\n }\n}\n",
    "sync-group-weight": "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n"
    + _BASE
    + " track_interface {\n  eth1 weight 10\n }\n}\n"
    + _BASE.replace("VI_1", "VI_2").replace("eth0", "eth1").replace("192.0.2.1", "192.0.2.5")
    + "}\n",
    "label-too-long": _BASE.replace("192.0.2.1", "192.0.2.1 label eth0:abcdefghijklmn") + "}\n",
    "bad-bool": _BASE + " smtp_alert maybe\n}\n",
    "state-no-value": _BASE + " state\n}\n",
    "mcast-dst-not-multicast": _BASE + " mcast_dst_ip 192.0.2.200\n}\n",
    "vs-no-real-servers": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n}\n",
    "misc-check-no-path": "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n"
    "  MISC_CHECK {\n  }\n }\n}\n",
    "http-get-no-url": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    " real_server 192.0.2.2 80 {\n"
    "  HTTP_GET {\n  }\n }\n}\n",
    "unknown-vsg": "virtual_server group NOPE {\n real_server 192.0.2.2 80 {\n"
    "  TCP_CHECK {\n  }\n }\n}\n",
    "bad-lvs-method": "virtual_server 192.0.2.1 80 {\n lb_kind FOO\n"
    " real_server 192.0.2.2 80 {\n }\n}\n",
    "rule-no-preference": _BASE + " virtual_rules {\n  from 192.0.2.0/24 table 100\n }\n}\n",
    "static-rule-no-preference": "static_rules {\n from 192.0.2.0/24 table 100\n}\n"
    + _BASE
    + "}\n",
    "deprecated-gw": _BASE + " virtual_routes {\n  192.0.2.128/25 gw 192.0.2.254 dev eth0\n }\n}\n",
    "deprecated-nb-get-retry": "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n"
    "  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n }\n}\n",
    "deprecated-vrrp-track-file": "vrrp_track_file tf {\n file /tmp/x\n}\n"
    + _BASE
    + " track_file {\n  tf\n }\n}\n",
    "deprecated-global-synonyms": "global_defs {\n lvs_process_name foo\n lvs_flush_onstop\n"
    " enable_snmp_keepalived\n vrrp_rlimit_rtime 10000\n}\n" + _BASE + "}\n",
    "deprecated-vmac-garp-intvl": _BASE + " vmac_garp_intvl 10\n}\n",
    "deprecated-instance-linkbeat": _BASE + " linkbeat_use_polling\n}\n",
    "native-ipv6-with-ipv4": _BASE + " native_ipv6\n}\n",
    "no-interface": _BASE.replace(" interface eth0\n", "") + "}\n",
    "unicast-without-interface": _BASE.replace(" interface eth0\n", " unicast_src_ip 192.0.2.10\n")
    + " unicast_peer {\n  192.0.2.9\n }\n}\n",
    "duplicate-peer": _BASE + " unicast_src_ip 192.0.2.10\n unicast_peer {\n  192.0.2.9\n"
    "  192.0.2.9\n }\n}\n",
    "mixed-family": _BASE.replace("192.0.2.1\n", "192.0.2.1\n  2001:db8::1\n") + "}\n",
    "ipv6-scope": _BASE.replace("192.0.2.1", "2001:db8::1 scope link") + "}\n",
    "two-sync-groups": "vrrp_sync_group G1 {\n group {\n  VI_1\n  VI_2\n }\n}\n"
    "vrrp_sync_group G2 {\n group {\n  VI_1\n  VI_2\n }\n}\n"
    + _BASE
    + "}\n"
    + _BASE.replace("VI_1", "VI_2").replace("eth0", "eth1").replace("192.0.2.1", "192.0.2.5")
    + "}\n",
    "duplicate-instance": _BASE + "}\n" + _BASE + "}\n",
    "garp-group": "garp_group {\n garp_interval 0.1\n interface eth0\n}\n" + _BASE + "}\n",
    "vs-bare": "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n"
    "  TCP_CHECK {\n  }\n }\n}\n",
    "vs-complete": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    " real_server 192.0.2.2 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
    "vs-complete-new-names": "virtual_server 192.0.2.1 80 {\n lvs_sched wrr\n lvs_method DR\n"
    " protocol UDP\n real_server 192.0.2.2 80 {\n  weight 2\n  UDP_CHECK {\n  }\n }\n}\n",
    "rs-duplicate": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    " real_server 192.0.2.2 80 {\n }\n real_server 192.0.2.2 80 {\n }\n}\n",
    "rs-family": "virtual_server 2001:db8::1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    " real_server 192.0.2.2 80 {\n }\n real_server 2001:db8::2 80 {\n }\n}\n",
    "quorum-weight": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    " quorum 3\n real_server 192.0.2.2 80 {\n  weight 1\n }\n}\n",
    "vs-group-complete": "virtual_server_group G {\n 192.0.2.1 80\n 192.0.2.10-20 80\n}\n"
    "virtual_server group G {\n lb_algo rr\n lb_kind DR\n protocol TCP\n"
    " real_server 192.0.2.2 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
    "dns-check": "virtual_server 192.0.2.1 53 {\n lb_algo rr\n lb_kind NAT\n protocol UDP\n"
    " real_server 192.0.2.2 53 {\n  DNS_CHECK {\n   type MX\n   name example.org\n  }\n }\n}\n",
    "file-check": "track_file tf {\n file /tmp/tf\n}\nvirtual_server 192.0.2.1 80 {\n lb_algo rr\n"
    " lb_kind NAT\n protocol TCP\n real_server 192.0.2.2 80 {\n  FILE_CHECK {\n   track_file tf\n"
    "  }\n }\n}\n",
    # keepalived's FILE_CHECK takes only track_file and weight (check_file.c)
    "file-check-retry": "track_file tf {\n file /tmp/tf\n}\nvirtual_server 192.0.2.1 80 {\n"
    " lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 192.0.2.2 80 {\n  FILE_CHECK {\n"
    "   track_file tf\n   retry 3\n  }\n }\n}\n",
    "file-check-delay-loop": "track_file tf {\n file /tmp/tf\n}\nvirtual_server 192.0.2.1 80 {\n"
    " lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 192.0.2.2 80 {\n  FILE_CHECK {\n"
    "   track_file tf\n   delay_loop 5\n  }\n }\n}\n",
    "file-check-dynamic": "track_file tf {\n file /tmp/tf\n}\nvirtual_server 192.0.2.1 80 {\n"
    " lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 192.0.2.2 80 {\n  FILE_CHECK {\n"
    "   track_file tf\n   dynamic\n  }\n }\n}\n",
    "vmac-rfc-mac": _BASE + " use_vmac vrrp51 00:00:5e:00:01:33\n}\n",
    "vmac-own-mac": _BASE + " use_vmac vrrp51 02:00:5e:00:01:33\n}\n",
    "script-fractional-interval": "global_defs {\n enable_script_security\n script_user root\n}\n"
    "vrrp_script s1 {\n script /bin/true\n interval 0.5\n}\n" + _BASE + _TRACKED + "}\n",
    "protocol-lower-case": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n"
    " protocol tcp\n real_server 192.0.2.2 80 {\n }\n}\n",
    "lb-kind-lower-case": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind dr\n"
    " protocol TCP\n real_server 192.0.2.2 80 {\n }\n}\n",
    "lb-algo-upper-case": "virtual_server 192.0.2.1 80 {\n lb_algo RR\n lb_kind NAT\n"
    " protocol TCP\n real_server 192.0.2.2 80 {\n }\n}\n",
    "auth-type-lower-case": _BASE + " authentication {\n  auth_type pass\n  auth_pass x\n }\n}\n",
    "dns-type-lower-case": "virtual_server 192.0.2.1 53 {\n lb_algo rr\n lb_kind NAT\n"
    " protocol UDP\n real_server 192.0.2.2 53 {\n  DNS_CHECK {\n   type mx\n  }\n }\n}\n",
    "http-protocol-bad": "virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind NAT\n"
    " protocol TCP\n real_server 192.0.2.2 80 {\n  HTTP_GET {\n   http_protocol 1.2\n"
    "   url {\n    path /\n    status_code 200-299 404\n   }\n  }\n }\n}\n",
    "duplicate-track-interface": _BASE + " track_interface {\n  eth1\n  eth1 weight 5\n }\n}\n",
    "duplicate-track-script": "global_defs {\n enable_script_security\n script_user root\n}\n"
    "vrrp_script s1 {\n script /bin/true\n}\n"
    + _BASE
    + " track_script {\n  s1\n  s1 weight 5\n }\n}\n",
    "duplicate-vip": _BASE.replace("192.0.2.1\n", "192.0.2.1\n  192.0.2.1\n") + "}\n",
    "unknown-keyword-case": "global_defs {\n Router_ID x\n}\n" + _BASE + "}\n",
}

_GLOBAL_VALUES = (
    "dynamic_interfaces allow_if_changes",
    "vrrp_garp_interval 2",
    "vrrp_gna_interval 1.5",
    "vrrp_garp_master_delay 300",
    "vrrp_garp_master_repeat 0",
    "vrrp_garp_master_refresh 60",
    "smtp_connect_timeout 0",
    "startup_script_timeout 2000",
    "vrrp_down_timer_adverts 0",
    "vrrp_mcast_group4 198.51.100.1",
    "vrrp_startup_delay 5000",
    "vrrp_version 4",
    "max_auto_priority",
    "router_id",
    "script_user nobody nogroup",
    "vrrp_min_garp true",
)
for _kv in _GLOBAL_VALUES:
    PROBES["global " + _kv] = f"global_defs {{\n {_kv}\n}}\n" + _BASE + "}\n"

PROBE_DIFFERENCES: dict[str, tuple[int, int, str]] = {
    "auth-hmac": (5, 0, "auth_hmac is keepalived 2.4 syntax; we accept the current language"),
    "unknown-vsg": (
        0,
        5,
        "keepalived 2.2.7 silently ignores a virtual_server group it cannot find",
    ),
    "http-get-no-url": (-11, 5, "keepalived 2.2.7 -t dies of SIGSEGV on an HTTP_GET without url"),
    "state-no-value": (2, 5, "keepalived 2.2.7 exits 2 (CONFIG) on a keyword missing its value"),
    "script-fractional-interval": (
        5,
        0,
        "fractional vrrp_script intervals are keepalived 2.4 syntax (2.2.7 wants whole seconds)",
    ),
    "unicast-without-interface": (
        5,
        0,
        "keepalived derives the interface from unicast_src_ip, an address not configured in the "
        "test namespace; host addresses are not part of our parse-time checks",
    ),
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_verdicts_match_keepalived(netns: str, tmp_path: Path, name: str) -> None:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(PROBES[name])
    theirs = keepalived_verdict(netns, conf, tmp_path, "pkcfgtest")
    ours = core.load(conf, config_id="pkcfgtest", interfaces=NETNS_IFACES).exit_code
    expected = PROBE_DIFFERENCES.get(name)
    if expected is not None:
        assert (theirs, ours) == expected[:2]
    else:
        assert ours == theirs, [core.format_problem(p) for p in core.load(conf).problems]


def test_rendered_samples_get_the_same_verdict(netns: str, tmp_path: Path) -> None:
    """keepalived reads what `render` prints, and agrees with our verdict on it."""
    mismatches = []
    for conf in _samples(tmp_path):
        config = core.load(conf, config_id="pkcfgtest", script_env=None).config
        out = tmp_path / f"{conf.name}.rendered"
        out.write_text(core.render(config))
        theirs = keepalived_verdict(netns, out, tmp_path, "pkcfgtest")
        ours = core.load(out, config_id="pkcfgtest", interfaces=NETNS_IFACES).exit_code
        expected = EXPECTED_DIFFERENCES.get((conf.name, "pkcfgtest"))
        if theirs != ours and (expected is None or (theirs, ours) != expected[:2]):
            mismatches.append(f"{conf.name}: keepalived {theirs}, ours {ours}")
    assert not mismatches, "\n".join(mismatches)


def test_missing_main_file(netns: str, tmp_path: Path) -> None:
    # Deliberate difference: keepalived 2.2.7 prints "Config files missing" and exits 0; a
    # config that cannot be read cannot run, so we exit 4 as the -t contract documents.
    missing = tmp_path / "nope.conf"
    assert keepalived_verdict(netns, missing, tmp_path, "pkcfgtest") == 0
    assert core.load(missing).exit_code == 4


@pytest.mark.parametrize(
    ("mode", "tracked"), [(0o755, True), (0o777, True), (0o777, False), (0o775, True)]
)
def test_script_permissions_match_keepalived(
    netns: str, tmp_path: Path, mode: int, tracked: bool
) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(mode)
    os.chown(script, 0, 1 if mode & 0o020 else 0)  # group-writable by a non-root group
    head = "global_defs {\n enable_script_security\n script_user root\n}\n"
    if tracked:
        text = head + f"vrrp_script s1 {{\n script {script}\n}}\n" + _BASE + _TRACKED + "}\n"
    else:
        text = head + _BASE + f" notify_master {script}\n}}\n"
    conf = tmp_path / "k.conf"
    conf.write_text(text)
    theirs = keepalived_verdict(netns, conf, tmp_path, "pkcfgtest")
    ours = core.load(conf, config_id="pkcfgtest", interfaces=NETNS_IFACES)
    assert ours.exit_code == theirs, [core.format_problem(p) for p in ours.problems]
