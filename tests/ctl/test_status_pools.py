"""`pykeepalivedctl status` lists virtual servers, real servers and each checker's last result."""

from __future__ import annotations

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
