"""pykeepalivedctl status / reload / check / dump against a real daemon group in a namespace."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import REPO, DaemonGroup, daemon_group
from tests.lab import Lab, wait_until

TWO_INSTANCES = """
global_defs {
    router_id ctl1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.101/24
    }
}
"""


def ctl(runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctl", "--runtime-dir", str(runtime), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )


def status(group: DaemonGroup) -> dict[str, object]:
    out = ctl(group.runtime.path, "status", "--json")
    assert out.returncode == 0, out.stderr
    parsed: dict[str, object] = json.loads(out.stdout)
    return parsed


def state_of(group: DaemonGroup, instance: str) -> dict[str, object] | None:
    instances = status(group)["instances"]
    assert isinstance(instances, dict)
    found: dict[str, object] | None = instances.get(instance)
    return found


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    with daemon_group(lab.node(0), TWO_INSTANCES) as g:
        g.wait_started()
        for name in ("VI_1", "VI_2"):

            def is_master(n: str = name) -> bool:
                return (state_of(g, n) or {}).get("state") == "MASTER"

            wait_until(
                is_master,
                15,
                message=f"{name} to become master alone on the segment",
            )
        # MASTER is announced before netd installs the VIPs the tests look for.
        wait_until(
            lambda: {"192.0.2.100/24", "192.0.2.101/24"} <= g.node.address_set(),
            5,
            message="both VIPs installed",
        )
        yield g


@pytest.mark.netns
def test_status_shows_instances_and_components(group: DaemonGroup) -> None:
    snap = status(group)
    components = snap["components"]
    assert isinstance(components, dict)
    # No check in the config: checkd is not started (watchdog.ondemand).
    assert set(components) == {"watchdog", "bus", "core", "netd", "vrrpd"}
    table = ctl(group.runtime.path, "status").stdout
    assert "VI_1" in table and "MASTER" in table and "192.0.2.101" in table


@pytest.mark.netns
def test_broken_reload_keeps_running_config_and_names_file_and_line(group: DaemonGroup) -> None:
    before = status(group)["config"]
    assert isinstance(before, dict)
    group.config.write_text(TWO_INSTANCES + "vrrp_instance VI_3 {\n    priority 300\n}\n")
    bad_line = len(TWO_INSTANCES.splitlines()) + 2
    out = ctl(group.runtime.path, "reload")
    assert out.returncode == 5
    # file:line:col of the offending keyword, and the old generation keeps running
    assert f"{group.config}:{bad_line}:14: error: priority" in out.stderr
    assert f"generation {before['generation']} keeps running" in out.stderr
    after = status(group)["config"]
    assert isinstance(after, dict) and after["hash"] == before["hash"]
    assert (state_of(group, "VI_1") or {}).get("state") == "MASTER"


@pytest.mark.netns
def test_reload_changing_one_instance_leaves_the_other_untouched(group: DaemonGroup) -> None:
    vi1 = state_of(group, "VI_1")
    assert vi1 is not None
    intents = status(group)["intents"]
    assert isinstance(intents, dict)
    vi1_intent_gen = intents["VI_1"]["generation"]
    group.config.write_text(TWO_INSTANCES.replace("priority 100", "priority 110"))
    out = ctl(group.runtime.path, "reload")
    assert out.returncode == 0, out.stderr
    assert '"changed": ["VI_2"]' in out.stdout
    wait_until(
        lambda: (state_of(group, "VI_2") or {}).get("priority") == 110,
        10,
        message="VI_2 to take its new priority",
    )
    snap = status(group)
    instances, intents = snap["instances"], snap["intents"]
    assert isinstance(instances, dict) and isinstance(intents, dict)
    assert instances["VI_1"]["transitions"] == vi1["transitions"]
    assert instances["VI_2"]["state"] == "MASTER"  # no needless re-election either
    assert intents["VI_1"]["generation"] == vi1_intent_gen
    assert "192.0.2.100/24" in group.node.address_set()


def test_check_reports_problems_with_location_and_exit_code(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n"
        "    priorty 100\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "ctl", "check", str(conf), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    report = json.loads(out.stdout)
    assert out.returncode == report["exit_code"] == 5
    typo = next(p for p in report["problems"] if p["code"] == "unknown-keyword")
    assert (typo["line"], typo["col"]) == (4, 5)
    assert typo["hint"] == "priority"
