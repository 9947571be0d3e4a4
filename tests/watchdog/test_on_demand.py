"""checkd runs only while the configuration gives it work (watchdog.ondemand, issue #15).

The decision is pure and tested as a table; one daemon test shows the watchdog following
reloads: a VRRP-only group runs without checkd, a reload adding a ``vrrp_script`` starts it
(and its verdict reaches the bus), a reload removing it stops it without a restart.
"""

from __future__ import annotations

import os
import signal

import pytest

from core import loads
from tests.ctl.test_operator_commands import status
from tests.daemon import daemon_group
from tests.lab import Lab, wait_until
from watchdog.ondemand import checkd_needed, image_modules, needed

INSTANCE = """
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 61
    priority 200
    advert_int 1
    virtual_ipaddress {
        192.0.2.61/24
    }
    %s
}
"""
SCRIPT = """
vrrp_script chk_ok {
    script "/bin/true"
    interval 1
}
"""
EXTERNAL = "vrrp_script chk_ext {\n    weight 10\n}\n"
TRACK_FILE = "track_file tf1 {\n    file /nonexistent/pk-tf1\n}\n"
TRACK_PROCESS = "vrrp_track_process tp1 {\n    process sshd\n}\n"
VIRTUAL_SERVER = """
virtual_server 192.0.2.80 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.51.100.10 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


@pytest.mark.parametrize(
    ("blocks", "track", "wanted"),
    [
        ("", "", False),  # VRRP only
        (SCRIPT, "track_script {\n        chk_ok\n    }", True),
        (SCRIPT, "", True),  # defined, not tracked: checkd logs it unused, as keepalived
        (EXTERNAL, "track_script {\n        chk_ext\n    }", False),  # fed over the bus
        (TRACK_FILE, "track_file {\n        tf1\n    }", True),
        (TRACK_PROCESS, "track_process {\n        tp1\n    }", True),
        (VIRTUAL_SERVER, "", True),
    ],
    ids=["vrrp-only", "script", "untracked-script", "external", "file", "process", "vs"],
)
def test_checkd_is_needed_when_the_config_has_checks_or_virtual_servers(
    blocks: str, track: str, wanted: bool
) -> None:
    result = loads(blocks + INSTANCE % track, script_env=None)
    assert [p.message for p in result.problems if p.severity == "error"] == []
    assert checkd_needed(result.config) is wanted
    assert needed(result.config) == (frozenset({"checkd"}) if wanted else frozenset())


@pytest.mark.parametrize(
    ("blocks", "image"),
    [
        ("", ()),  # VRRP only: netd loads no LVS driver
        (SCRIPT, ()),
        (VIRTUAL_SERVER, (("netd", "netd.lvs.driver"),)),
        ("global_defs {\n    lvs_flush\n}\n", (("netd", "netd.lvs.driver"),)),  # at start
    ],
    ids=["vrrp-only", "script", "vs", "lvs_flush"],
)
def test_the_lvs_driver_is_in_the_image_only_when_the_config_uses_it_at_once(
    blocks: str, image: tuple[tuple[str, str], ...]
) -> None:
    result = loads(blocks + INSTANCE % "", script_env=None)
    assert [p.message for p in result.problems if p.severity == "error"] == []
    assert image_modules(result.config) == image


@pytest.mark.netns
def test_a_reload_starts_checkd_when_a_check_appears_and_stops_it_when_gone(lab: Lab) -> None:
    vrrp_only = INSTANCE % ""
    with daemon_group(lab.node(0), vrrp_only, "-l") as g:
        assert "checkd" not in g.wait_started()

        def master() -> bool:
            instances = status(g)["instances"]
            return isinstance(instances, dict) and instances["VI_1"]["state"] == "MASTER"

        # By now the watchdog has long forked everything it starts with.
        wait_until(master, 15, message="VI_1 to become master")
        assert "checkd" not in g.pids()
        assert "child=checkd" not in g.log_text()

        g.config.write_text(SCRIPT + INSTANCE % "track_script {\n        chk_ok\n    }")
        os.kill(g.proc.pid, signal.SIGHUP)  # `ip netns exec` execs: this is the watchdog
        wait_until(lambda: "checkd" in g.pids(), 15, message="checkd started by the reload")

        def verdict() -> bool:
            health = status(g)["health"]
            return isinstance(health, dict) and health.get("chk_ok", {}).get("ok") is True

        wait_until(verdict, 15, message="checkd's verdict for chk_ok on the bus")

        g.config.write_text(vrrp_only)
        os.kill(g.proc.pid, signal.SIGHUP)
        wait_until(lambda: "checkd" not in g.pids(), 15, message="checkd stopped by the reload")
        # The watchdog logs the stop once it has reaped the child, which can be after the pid
        # is gone from the pid list.
        wait_until(
            lambda: "watchdog.child.stopped" in g.log_text(), 15, message="the stop to be logged"
        )
        log = g.log_text()
        assert "watchdog.child.exited" not in log
        assert log.count("watchdog.child.started") == 5  # four at start, checkd once
