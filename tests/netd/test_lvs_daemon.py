"""The whole daemon as an LVS-NAT director (ctl/lvslab.py: a client, the director, three
real servers running HTTP servers): checkd's HTTP_GET verdicts decide the pools, netd programs
them into the nftables table, and the client sees the result.

One configuration holds two virtual servers on the same two real servers: port 80 plain, port
81 with ``quorum 2`` and a sorry server (rs2); a third, ``lb_kind TUN``, is reported as failed.
Stopping rs1's HTTP server takes it out of port 80's pool and loses port 81's quorum (the sorry
server stands in); starting it again brings both back. A deleted table is rebuilt; stopping the
daemon removes the table.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator

import pytest

from ctl.lvslab import RS_ADDRS, RS_PORT, VIP, LvsLab
from tests.ctl.test_operator_commands import ctl
from tests.daemon import DaemonGroup, daemon_group
from tests.lab import wait_until

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)"),
]

TABLE = "pykeepalived_lvs"


def _real_server(i: int) -> str:
    return f"""
    real_server {RS_ADDRS[i]} {RS_PORT} {{
        weight 1
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 1
            retry 0
            delay_before_retry 0.5
        }}
    }}"""


CONFIG = f"""
global_defs {{
    router_id director
}}
virtual_server {VIP} 80 {{
    delay_loop 0.5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    {_real_server(0)}
    {_real_server(1)}
}}
virtual_server {VIP} 81 {{
    delay_loop 0.5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    sorry_server {RS_ADDRS[2]} {RS_PORT}
    {_real_server(0)}
    {_real_server(1)}
}}
virtual_server {VIP} 82 {{
    delay_loop 0.5
    lb_algo rr
    lb_kind TUN
    protocol TCP
    {_real_server(2)}
}}
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[LvsLab]:
    lab = LvsLab()
    try:
        yield lab
    finally:
        lab.close()


def _answering(lab: LvsLab, port: int, n: int = 6) -> set[str]:
    """Who answers ``n`` new connections to VIP:port (rr: every live server, with n >= 2x)."""
    seen = set()
    for _ in range(n):
        try:
            seen.add(lab.get(VIP, port))
        except OSError as exc:  # refused: no datapath yet, or a stopped server still in it
            seen.add(type(exc).__name__)
    return seen


def _expect(lab: LvsLab, port: int, servers: set[str], why: str) -> None:
    wait_until(lambda: _answering(lab, port) == servers, 20, 0.1, f"{why}: {sorted(servers)}")


def _status_row(group: DaemonGroup, port: int) -> str:
    """The virtual server's row of ``pykeepalivedctl status``."""
    out = ctl(group.runtime.path, "status").stdout
    return next((r for r in out.splitlines() if r.startswith(f"[{VIP}]:tcp:{port}")), "")


def _table_exists(lab: LvsLab) -> bool:
    return f"table inet {TABLE}" in lab.nft("list", "tables")


def test_checkers_drive_the_datapath_and_stop_withdraws_it(lab: LvsLab) -> None:
    group: DaemonGroup
    with daemon_group(lab.director_node, CONFIG) as group:
        group.wait_started(("bus", "core", "netd", "checkd"))
        _expect(lab, 80, {"rs0", "rs1"}, "both real servers behind port 80")
        _expect(lab, 81, {"rs0", "rs1"}, "port 81 has its quorum")
        wait_until(lambda: "nftables, 2 server(s)" in _status_row(group, 80), 10)
        # TUN is not in this datapath: that virtual server alone fails, and says why
        wait_until(lambda: "FAILED: " in _status_row(group, 82), 10)
        assert "lvs_method TUN" in _status_row(group, 82)
        lab.stop_server(1)
        try:
            _expect(lab, 80, {"rs0"}, "rs1 checked down and out of port 80")
            _expect(lab, 81, {"rs2"}, "port 81 lost its quorum: the sorry server")
            wait_until(lambda: "nftables, 1 server(s)" in _status_row(group, 80), 10)
        finally:
            lab.start_server(1)
        _expect(lab, 80, {"rs0", "rs1"}, "rs1 back in port 80")
        _expect(lab, 81, {"rs0", "rs1"}, "port 81's quorum back, the sorry server out")
        lab.nft("delete", "table", "inet", TABLE)  # someone removes the table
        _expect(lab, 80, {"rs0", "rs1"}, "the table rebuilt after drift")
        assert _table_exists(lab)
        # a reload adds rs2 to port 80 and removes the TUN virtual server
        group.config.write_text(
            CONFIG.replace(
                f"{_real_server(1)}\n}}", f"{_real_server(1)}\n{_real_server(2)}\n}}", 1
            ).split(f"virtual_server {VIP} 82")[0]
        )
        group.proc.send_signal(signal.SIGHUP)
        _expect(lab, 80, {"rs0", "rs1", "rs2"}, "rs2 added by the reload")
        wait_until(lambda: _status_row(group, 82) == "", 10, message="port 82 gone from status")
    assert not _table_exists(lab), "the daemon's stop did not withdraw the LVS table"


def test_a_restarted_netd_takes_the_table_over_without_a_gap(lab: LvsLab) -> None:
    with daemon_group(lab.director_node, CONFIG) as group:
        group.wait_started(("bus", "core", "netd", "checkd"))
        _expect(lab, 80, {"rs0", "rs1"}, "both real servers behind port 80")
        # netd logs its table once the kernel has acknowledged it: requests can be answered
        # before the line is written, so wait for it rather than count it at once.
        built = wait_until(
            lambda: group.log_text().count("netd.lvs.table"), 10, message="netd's table logged"
        )
        old = group.pids()["netd"]
        os.kill(old, signal.SIGKILL)
        # The killed netd's table goes on forwarding until the new netd replaces it in the
        # transaction that builds its own: every request is answered meanwhile.
        answered: set[str] = set()
        deadline = time.monotonic() + 20
        while group.log_text().count("netd.lvs.table") == built:
            assert time.monotonic() < deadline, "the restarted netd built no table"
            answered |= _answering(lab, 80, 2)
        assert group.pids()["netd"] != old
        assert answered <= {"rs0", "rs1"}, answered
        _expect(lab, 80, {"rs0", "rs1"}, "the new netd's table")


def test_checkers_only_forward_and_dont_release_ipvs_leaves_the_table_at_stop(
    lab: LvsLab,
) -> None:
    try:
        # keepalived -C: the checker process alone, and it programs the datapath
        with daemon_group(lab.director_node, CONFIG, "-C", "-I") as group:
            group.wait_started(("bus", "core", "netd", "checkd"))
            _expect(lab, 80, {"rs0", "rs1"}, "both real servers behind port 80")
            assert "vrrpd" not in group.pids()
        # keepalived -I: the services stay, and go on forwarding without the daemon
        assert _table_exists(lab)
        assert _answering(lab, 80) == {"rs0", "rs1"}
    finally:
        if _table_exists(lab):
            lab.nft("delete", "table", "inet", TABLE)


NO_VIRTUAL_SERVER = "global_defs {\n    router_id director\n}\n"


def test_a_node_without_virtual_servers_loads_no_driver_until_a_reload_adds_them(
    lab: LvsLab,
) -> None:
    """netd.lvsdemand: the LVS driver (and its backends) is loaded on first need only."""
    with daemon_group(lab.director_node, NO_VIRTUAL_SERVER) as group:
        group.wait_started(("bus", "core", "netd"))
        wait_until(lambda: "netd.lvs.unneeded" in group.log_text(), 15, message="netd's probe")
        assert "netd.lvs.loaded" not in group.log_text()
        assert not _table_exists(lab)
        group.config.write_text(CONFIG)
        group.proc.send_signal(signal.SIGHUP)
        _expect(lab, 80, {"rs0", "rs1"}, "the reload's virtual server programmed, pools and all")
        assert group.log_text().count("netd.lvs.loaded") == 1
    assert not _table_exists(lab)


def test_a_table_left_behind_is_removed_by_a_node_without_virtual_servers(lab: LvsLab) -> None:
    try:
        with daemon_group(lab.director_node, CONFIG, "-I") as group:  # -I: the table stays
            group.wait_started(("bus", "core", "netd", "checkd"))
            _expect(lab, 80, {"rs0", "rs1"}, "both real servers behind port 80")
        assert _table_exists(lab)
        with daemon_group(lab.director_node, NO_VIRTUAL_SERVER) as group:
            wait_until(lambda: not _table_exists(lab), 15, message="the leftover table removed")
            assert "netd.lvs.leftovers_found" in group.log_text()
    finally:
        if _table_exists(lab):
            lab.nft("delete", "table", "inet", TABLE)
