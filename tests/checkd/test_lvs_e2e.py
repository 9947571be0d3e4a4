"""The whole daemon in a namespace: a real HTTP server behind a virtual_server with HTTP_GET, a
MISC_CHECK whose exit code sets the weight, pykeepalivedctl status, and a reload that must not
flap an unchanged real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ctl.test_operator_commands import ctl
from tests.daemon import DaemonGroup, daemon_group
from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns

HTTP_RS = "[192.0.2.100]:tcp:80 [192.0.2.10]:tcp:8080"
MISC_RS = "[192.0.2.100]:tcp:81 [192.0.2.10]:tcp:8081"


def _config(script: Path, extra: str = "") -> str:
    return f"""
global_defs {{
    router_id lb1
}}
vrrp_script vs:192.0.2.100:tcp:80 {{
    weight -50
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 71
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.100/24
    }}
    track_script {{
        vs:192.0.2.100:tcp:80
    }}
}}
virtual_server 192.0.2.100 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.10 8080 {{
        weight 1
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }}
    }}
}}
virtual_server 192.0.2.100 81 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    {extra}
    real_server 192.0.2.10 8081 {{
        weight 1
        MISC_CHECK {{
            misc_path "{script}"
            misc_timeout 2
            misc_dynamic
        }}
    }}
}}
"""


def _status(group: DaemonGroup) -> dict[str, Any]:
    out = ctl(group.runtime.path, "status", "--json")
    assert out.returncode == 0, out.stderr
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


def _rs(group: DaemonGroup, rs_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _status(group)["real_servers"].get(rs_id) or {}
    return found


def _table_shows(group: DaemonGroup, *texts: str) -> bool:
    table = ctl(group.runtime.path, "status").stdout
    return all(t in table for t in texts)


def _http(lab: Lab, root: Path) -> subprocess.Popen[bytes]:
    return lab.node(0).popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "192.0.2.10",
            "--directory",
            str(root),
            "8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _tail(group: DaemonGroup, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as f:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ctl",
                "--runtime-dir",
                str(group.runtime.path),
                "tail",
                "--json",
                "check.rs.*",
            ],
            stdout=f,
            stderr=subprocess.DEVNULL,
        )


def test_http_and_misc_checks_drive_the_pools(make_lab: Any, tmp_path: Path) -> None:
    lab: Lab = make_lab(1)
    tmp_path.chmod(0o755)
    (tmp_path / "index.html").write_text("ok\n")
    value = tmp_path / "rc"
    value.write_text("0")
    script = tmp_path / "w.sh"
    script.write_text(f"#!/bin/sh\nexit $(cat {value})\n")
    script.chmod(0o755)
    http = _http(lab, tmp_path)
    try:
        with daemon_group(lab.node(0), _config(script)) as group:
            group.wait_started(("bus", "core", "checkd"))
            wait_until(
                lambda: _rs(group, HTTP_RS).get("checkers", [{}])[0].get("ok") is True,
                15,
                message="HTTP_GET ok",
            )
            # One status call is a 1.2 s snapshot of what the publishers re-send to a new
            # subscriber; on a loaded machine a re-send can miss that window, so ask again.
            wait_until(
                lambda: _table_shows(group, "[192.0.2.100]:tcp:80", "HTTP_GET up"),
                10,
                message="status table showing the pool and HTTP_GET up",
            )

            # Stop the server: DOWN after delay_loop + connect_timeout + one retry (1 + 1 +
            # 0.5 s); the deadline is only this test's failure mode (bench/checks.py times
            # the verdict).
            http.send_signal(signal.SIGTERM)
            http.wait(10)
            wait_until(lambda: _rs(group, HTTP_RS).get("alive") is False, 30, message="RS down")
            pool = wait_until(
                lambda: _status(group)["pools"].get("[192.0.2.100]:tcp:80"),
                10,
                message="the pool in status --json",
            )
            assert pool["quorum_up"] is False and pool["members"][0]["pool_weight"] is None
            wait_until(
                lambda: _table_shows(group, "HTTP_GET DOWN"),
                10,
                message="status table showing HTTP_GET DOWN",
            )
            # The instance tracking the quorum loses its weight.
            assert _status(group)["health"]["vs:192.0.2.100:tcp:80"]["ok"] is False
            wait_until(
                lambda: _status(group)["instances"]["VI_1"]["priority"] == 100,
                10,
                message="VI_1 priority 150 - 50",
            )

            http = _http(lab, tmp_path)
            wait_until(lambda: _rs(group, HTTP_RS).get("alive") is True, 15, message="RS back")
            assert _status(group)["pools"]["[192.0.2.100]:tcp:80"]["quorum_up"] is True
            wait_until(
                lambda: _status(group)["instances"]["VI_1"]["priority"] == 150, 10, message="150"
            )

            # misc_dynamic: exit 12 makes the weight 10.
            value.write_text("12")
            wait_until(
                lambda: _rs(group, MISC_RS).get("effective_weight") == 10, 10, message="weight 10"
            )

            # Reload with the HTTP real server unchanged: it never leaves the pool.
            tail_out = tmp_path / "tail.json"
            tail = _tail(group, tail_out)
            try:
                wait_until(lambda: HTTP_RS in tail_out.read_text(), 10, message="tail sees the RS")
                group.config.write_text(_config(script, extra="sorry_server 192.0.2.20 8081"))
                assert ctl(group.runtime.path, "reload").returncode == 0
                wait_until(
                    lambda: _status(group)["pools"]["[192.0.2.100]:tcp:81"]["sorry_server"],
                    15,
                    message="the reload applied",
                )
                wait_until(lambda: _rs(group, HTTP_RS).get("alive") is True, 5, message="still up")
            finally:
                tail.terminate()
                tail.wait(5)
            seen = [json.loads(line) for line in tail_out.read_text().splitlines()]
            ours = [b for b in seen if b.get("rs", b.get("body", {}).get("rs")) == HTTP_RS]
            assert ours, seen
            assert all(b.get("alive", b.get("body", {}).get("alive")) is True for b in ours), ours
    finally:
        http.terminate()
        http.wait(10)
