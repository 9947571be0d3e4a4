"""Tracking end to end: a verdict on the bus (from checkd or an external checker) moves the
VIP through the effective priority, exactly as keepalived's weights say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import REPO, DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from vrrpd.freshness import script_lifetime

pytestmark = pytest.mark.netns

VIP = "192.0.2.80/24"


def config(priority: int, script: str | None) -> str:
    line = f'script "{script}"' if script else "# no script: fed by an external checker"
    return f"""
global_defs {{
    router_id t{priority}
    enable_script_security
    script_user root
}}
vrrp_script chk {{
    {line}
    interval 1
    weight -60
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 80
    priority {priority}
    advert_int 1
    version 3
    virtual_ipaddress {{
        {VIP}
    }}
    track_script {{
        chk
    }}
}}
"""


def publish(group: DaemonGroup, *fields: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ctl",
            "--runtime-dir",
            str(group.runtime.path),
            "publish",
            "health.chk",
            *fields,
        ],
        check=True,
        cwd=REPO,
        timeout=20,
        capture_output=True,
    )


def test_external_checker_verdict_moves_the_vip_and_back(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    with daemon_group(n0, config(150, None)) as g0, daemon_group(n1, config(120, None)) as g1:
        g0.wait_started()
        g1.wait_started()
        # Published once each, so each says how long it holds (``ttl``): without it a
        # verdict of this 1 s script would count as failed after 3 s (vrrpd.freshness).
        publish(g1, "ok=true", "ttl=600")
        publish(g0, "ok=true", "ttl=600")
        wait_until(lambda: VIP in n0.address_set(), 20, message="node 0 (150) to hold the VIP")
        publish(g0, "ok=false", "reason=test says down", "ttl=600")  # 150 - 60 = 90 < 120
        wait_until(
            lambda: VIP in n1.address_set() and VIP not in n0.address_set(),
            15,
            message="node 1 to take over when node 0's check fails",
        )
        publish(g0, "ok=true", "ttl=600")  # back to 150: preempts again
        wait_until(
            lambda: VIP in n0.address_set() and VIP not in n1.address_set(),
            15,
            message="node 0 to preempt once its check passes",
        )
        assert "track_script chk -60" in g0.log_text()


def test_checkd_script_verdict_moves_the_vip(lab: Lab, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    flag = tmp_path / "healthy"
    flag.touch()
    script = tmp_path / "check.sh"
    script.write_text(f"#!/bin/sh\ntest -f {flag}\n")
    script.chmod(0o755)
    n0, n1 = lab.node(0), lab.node(1)
    with (
        daemon_group(n0, config(150, str(script))) as g0,
        daemon_group(n1, config(120, "/bin/true")) as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        wait_until(lambda: VIP in n0.address_set(), 20, message="node 0 (150) to hold the VIP")
        flag.unlink()
        wait_until(
            lambda: VIP in n1.address_set() and VIP not in n0.address_set(),
            15,
            message="node 1 to take over when node 0's script fails",
        )


def test_a_verdict_nobody_republishes_turns_into_a_failure(lab: Lab) -> None:
    """docs/design.md: with its checker gone, vrrpd keeps the last verdict for a grace period, then
    treats it as failed (logged), rather than trusting a stale "ok" for ever. The grace follows
    the script's interval (1 s here: 3 s), not a fixed 15 s (docs/bus.md, "Staleness")."""
    n0, n1 = lab.node(0), lab.node(1)
    # Node 1's check is run by its checkd (re-published); node 0's is fed once from outside.
    with (
        daemon_group(n0, config(150, None)) as g0,
        daemon_group(n1, config(120, "/bin/true")) as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        publish(g0, "ok=true")  # once: this "checker" then goes silent for good
        wait_until(lambda: VIP in n0.address_set(), 20, message="node 0 (150) to hold the VIP")
        wait_until(
            lambda: VIP in n1.address_set() and VIP not in n0.address_set(),
            script_lifetime(1, 1).fresh_for + 10,
            message="node 0's stale verdict to count as failed",
        )
        # The line comes from vrrpd's renewal pass, which need not be what lowered the
        # priority first (any other refresh sees the verdict stale as well): wait for it.
        wait_until(
            lambda: "vrrpd.health.stale" in g0.log_text(), 10, message="the stale verdict logged"
        )
