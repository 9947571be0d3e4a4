"""Prometheus metrics: the keepalived exporter's names, ours beside them, promtool-clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon import REPO, DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from watchdog.metrics import VRRP_COUNTERS, BusView, DaemonCollector, exposition

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus)")

STATE = {
    "instance": "VI_1",
    "state": "MASTER",
    "priority": 130,
    "base_priority": 150,
    "vrid": 51,
    "interface": "eth0",
    "vips": ["192.0.2.100/24", "192.0.2.101"],
    "transitions": 2,
    "drops": {"accepted": 7, "drop.auth": 3, "note.checksum": 1},
    "stats": {"advert_rcvd": 7, "advert_sent": 40, "become_master": 1, "auth_failure": 3},
}


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def render(view: BusView, restarts: dict[str, int] | None = None) -> bytes:
    return exposition(
        DaemonCollector(view, lambda: restarts or {}, lambda: {"schema": 2}, lambda: 1)
    )


def labels(**kw: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in kw.items()))


def test_instance_metrics_use_the_exporters_names_and_labels() -> None:
    view = BusView()
    view.apply("vrrp.state.VI_1", STATE)
    got = samples(render(view))
    common = labels(iname="VI_1", intf="eth0", vrid=51, state="MASTER")
    assert got[("keepalived_up", ())] == 1
    for ip in ("192.0.2.100", "192.0.2.101"):
        key = labels(iname="VI_1", intf="eth0", vrid=51, ip_address=ip)
        assert got[("keepalived_vrrp_state", key)] == 2  # MASTER
    # Both the exporter's current and its earlier names, so either dashboard works.
    assert got[("keepalived_advertisements_received_total", common)] == 7
    assert got[("keepalived_advert_rcvd_total", common)] == 7
    assert got[("keepalived_advertisements_sent_total", common)] == 40
    assert got[("keepalived_become_master_total", common)] == 1
    assert got[("keepalived_authentication_failure_total", common)] == 3
    assert got[("keepalived_priority_zero_sent_total", common)] == 0
    for stat, now, old, _ in VRRP_COUNTERS:
        assert (f"keepalived_{now}_total", common) in got, stat
        assert (f"keepalived_{old}_total", common) in got, stat
    assert got[("pykeepalived_vrrp_priority", labels(iname="VI_1", kind="base"))] == 150
    assert got[("pykeepalived_vrrp_priority", labels(iname="VI_1", kind="effective"))] == 130
    assert got[("pykeepalived_vrrp_transitions_total", labels(iname="VI_1"))] == 2
    assert got[("pykeepalived_vrrp_drops_total", labels(iname="VI_1", reason="auth"))] == 3


def test_checks_restarts_and_bus_counters() -> None:
    view = BusView()
    view.apply("health.chk_web", {"name": "chk_web", "ok": False, "kind": "script"})
    view.apply("health.ext", {"name": "ext", "ok": True})
    got = samples(render(view, restarts={"vrrpd": 2, "bus": 0}))
    assert got[("keepalived_script_status", labels(name="chk_web"))] == 0  # BAD
    assert got[("keepalived_script_state", labels(name="chk_web"))] == 0  # idle
    assert ("keepalived_script_status", labels(name="ext")) not in got  # not a vrrp_script
    assert got[("pykeepalived_check_ok", labels(name="ext", kind="external"))] == 1
    assert got[("pykeepalived_component_restarts_total", labels(component="vrrpd"))] == 2
    assert got[("pykeepalived_bus_dropped_total", labels(reason="schema"))] == 2
    assert got[("pykeepalived_bus_gaps_total", ())] == 1


def test_a_later_state_replaces_the_earlier_one() -> None:
    view = BusView()
    view.apply("vrrp.state.VI_1", STATE)
    view.apply("vrrp.state.VI_1", {**STATE, "state": "BACKUP", "vips": ["192.0.2.100/24"]})
    got = samples(render(view))
    key = labels(iname="VI_1", intf="eth0", vrid=51, ip_address="192.0.2.100")
    assert got[("keepalived_vrrp_state", key)] == 1
    assert not [k for k in got if k[0] == "keepalived_vrrp_state" and "192.0.2.101" in str(k)]


def promtool_check(text: bytes) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text.decode(), capture_output=True, text=True
    )


@needs_promtool
def test_promtool_accepts_the_exposition() -> None:
    view = BusView()
    view.apply("vrrp.state.VI_1", STATE)
    view.apply("health.chk_web", {"name": "chk_web", "ok": True, "kind": "script"})
    out = promtool_check(render(view, restarts={"vrrpd": 1}))
    assert out.returncode == 0, out.stdout + out.stderr


CONFIG = """
vrrp_script chk_ext {
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk_ext
    }
}
"""
PORT = 9650


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    listen = f"{lab.node(0).ip4}:{PORT}"
    with daemon_group(lab.node(0), CONFIG, "-l", "--metrics", listen) as g:
        g.wait_started()
        yield g


def scrape(lab: Lab, path: str = "/metrics") -> bytes:
    url = f"http://{lab.node(0).ip4}:{PORT}{path}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body


def scrape_when(lab: Lab, want: str) -> bytes:
    def has() -> bytes | None:
        try:
            text = lab.node(0).call(scrape, lab)
        except (urllib.error.URLError, ConnectionError):
            return None
        return text if want in text.decode() else None

    return wait_until(has, 20, message=f"{want!r} in the metrics")


@pytest.mark.netns
def test_a_running_group_is_scraped_over_http(lab: Lab, group: DaemonGroup) -> None:
    state = 'keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100",vrid="51"}'
    # chk_ext (weight 0) has no verdict yet: the instance waits in FAULT (3).
    scrape_when(lab, f"{state} 3.0")
    subprocess.run(
        [sys.executable, "-m", "ctl", "--runtime-dir", str(group.runtime.path), "publish",
         "health.chk_ext", "ok=true", "ttl=600"],  # once: it must hold (docs/bus.md)
        check=True, cwd=REPO, timeout=30,
    )  # fmt: skip
    text = scrape_when(lab, f"{state} 2.0").decode()  # the external verdict made it MASTER
    assert 'pykeepalived_check_ok{kind="external",name="chk_ext"} 1.0' in text
    assert 'pykeepalived_component_restarts_total{component="vrrpd"} 0.0' in text
    assert (
        'keepalived_become_master_total{iname="VI_1",intf="eth0",state="MASTER",vrid="51"}' in text
    )
    if PROMTOOL:
        out = promtool_check(text.encode())
        assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.netns
def test_metrics_listen_in_global_defs_turns_them_on(lab: Lab) -> None:
    config = f"global_defs {{\n    metrics_listen {lab.node(0).ip4}:{PORT}\n}}\n" + CONFIG
    with daemon_group(lab.node(0), config, "-l") as g:
        g.wait_started()
        scrape_when(lab, "keepalived_vrrp_state{")
