"""`pykeepalivedctl status` lists virtual servers, real servers and each checker's last result."""

from __future__ import annotations

from typing import Any

from ctl.snapshot import Snapshot, status_table


def test_pools_and_real_servers_in_the_table() -> None:
    vs = "[192.0.2.1]:tcp:80"
    rs = f"{vs} [198.51.100.1]:tcp:80"
    snap = Snapshot(
        pools={
            vs: {
                "vs": vs,
                "quorum_up": False,
                "quorum": 1,
                "live_weight": 0,
                "sorry_server": "[198.51.100.9]:tcp:80",
                "sorry_active": True,
                "ha_suspended": False,
                "members": [],
            }
        },
        real_servers={
            rs: {
                "vs": vs,
                "rs": rs,
                "alive": False,
                "weight": 1,
                "effective_weight": 1,
                "pool_weight": None,
                "checkers": [
                    {
                        "kind": "HTTP_GET",
                        "up": False,
                        "has_run": True,
                        "ok": False,
                        "reason": "GET /: connection refused",
                    }
                ],
            }
        },
    )
    table = status_table(snap)
    assert "DOWN (1)" in table and "[198.51.100.9]:tcp:80 (in use)" in table
    line = next(row for row in table.splitlines() if row.startswith(rs))
    assert "DOWN, out of pool" in line and "HTTP_GET DOWN" in line
    assert "failed: GET /: connection refused" in line
    assert snap.to_json()["real_servers"][rs]["alive"] is False


def _pool(vs: str, key: str) -> dict[str, Any]:
    return {"vs": vs, "key": key, "quorum_up": True, "quorum": 1, "live_weight": 2, "members": []}


def test_each_virtual_server_shows_what_netd_installed() -> None:
    ok, failed, unknown = "[192.0.2.1]:tcp:80", "[192.0.2.1]:tcp:81", "[192.0.2.1]:tcp:82"
    snap = Snapshot(
        pools={
            ok: _pool(ok, "192.0.2.1:tcp:80"),
            failed: _pool(failed, "192.0.2.1:tcp:81"),
            unknown: _pool(unknown, "192.0.2.1:tcp:82"),
        },
        applied={
            "lvs:192.0.2.1:tcp:80": {
                "owner": "lvs:192.0.2.1:tcp:80",
                "generation": 1,
                "failures": [],
                "items": 2,
                "backend": "nftables",
            },
            "lvs:192.0.2.1:tcp:81": {
                "owner": "lvs:192.0.2.1:tcp:81",
                "generation": 1,
                "failures": [
                    {"reason": "lvs_method TUN is not supported by the nftables datapath"}
                ],
                "items": 0,
                "backend": "nftables",
            },
        },
    )
    rows = {row.split()[0]: row for row in status_table(snap).splitlines() if row.startswith("[")}
    assert "nftables, 2 server(s)" in rows[ok]
    assert "FAILED: lvs_method TUN is not supported by the nftables datapath" in rows[failed]
    assert "nftables" not in rows[unknown]  # netd has not reported it (yet)
