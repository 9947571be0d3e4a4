"""Instance and global keywords on a real daemon in a namespace: unicast_ttl on the wire,
track_src_ip, notify_deleted with fifo_write_vrrp_states_on_reload, vrrp_startup_delay."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import JSON_LOGS, DaemonGroup, daemon_group
from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns

ETH_IPV4, ETH_IPV6 = b"\x08\x00", b"\x86\xdd"


def _ipv4_vrrp_ttls(frames: list[bytes], src: str) -> set[int]:
    packed = bytes(int(x) for x in src.split("."))
    return {f[22] for f in frames if f[12:14] == ETH_IPV4 and f[23] == 112 and f[26:30] == packed}


def _ipv6_vrrp_hops(frames: list[bytes]) -> set[int]:
    return {f[21] for f in frames if f[12:14] == ETH_IPV6 and f[20] == 112}


def test_unicast_adverts_carry_unicast_ttl_on_the_wire(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    config = f"""
global_defs {{
    router_id ttl-wire
}}
vrrp_instance VI_4 {{
    state MASTER
    interface eth0
    virtual_router_id 91
    priority 255
    advert_int 0.2
    version 3
    unicast_ttl 64
    unicast_src_ip {n0.ip4}
    unicast_peer {{
        {n1.ip4}
    }}
    virtual_ipaddress {{
        192.0.2.91/24
    }}
}}
vrrp_instance VI_6 {{
    state MASTER
    interface eth0
    virtual_router_id 92
    priority 255
    advert_int 0.2
    unicast_ttl 32
    unicast_src_ip {n0.ip6}
    unicast_peer {{
        {n1.ip6}
    }}
    virtual_ipaddress {{
        2001:db8::92/64
    }}
}}
"""
    capture = n1.capture()
    try:
        with daemon_group(n0, config, env=JSON_LOGS) as group:
            group.wait_started()
            capture.wait_for(lambda f: bool(_ipv4_vrrp_ttls([f], n0.ip4)), 3, timeout=20)
            capture.wait_for(lambda f: bool(_ipv6_vrrp_hops([f])), 3, timeout=20)
            assert _ipv4_vrrp_ttls(capture.frames, n0.ip4) == {64}
            assert _ipv6_vrrp_hops(capture.frames) == {32}
    finally:
        capture.close()


def _states(log: str, instance: str) -> list[dict[str, Any]]:
    """The daemon's ``vrrp.state`` records (JSON log lines) for ``instance``."""
    out = []
    for line in log.splitlines():
        if '"vrrp.state"' in line:
            record = json.loads(line)
            if record.get("event") == "vrrp.state" and record.get("instance") == instance:
                out.append(record)
    return out


def test_track_src_ip_faults_when_the_source_address_goes_and_recovers(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    src = "192.0.2.201"
    n0.run(["ip", "addr", "add", f"{src}/24", "dev", "eth0"])
    config = f"""
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 93
    priority 255
    advert_int 1
    unicast_src_ip {src}
    track_src_ip
    unicast_peer {{
        {n1.ip4}
    }}
    virtual_ipaddress {{
        192.0.2.93/24
    }}
}}
"""
    with daemon_group(n0, config, env=JSON_LOGS) as group:
        group.wait_started()
        wait_until(lambda: "192.0.2.93/24" in n0.address_set(), 20, message="MASTER")
        n0.run(["ip", "addr", "del", f"{src}/24", "dev", "eth0"])
        wait_until(
            lambda: any(
                r["new"] == "FAULT"
                and r.get("tracker") == f"source address {src} on eth0 (track_src_ip)"
                for r in _states(group.log_text(), "VI_1")
            ),
            15,
            message="FAULT naming the missing source address",
        )
        wait_until(lambda: "192.0.2.93/24" not in n0.address_set(), 10, message="VIP removed")
        n0.run(["ip", "addr", "add", f"{src}/24", "dev", "eth0"])
        wait_until(lambda: "192.0.2.93/24" in n0.address_set(), 20, message="MASTER again")
        assert _states(group.log_text(), "VI_1")[-1]["new"] == "MASTER"


def _instance(name: str, vrid: int, extra: str) -> str:
    return f"""
vrrp_instance {name} {{
    state MASTER
    interface eth0
    virtual_router_id {vrid}
    priority 255
    advert_int 1
    {extra}
    virtual_ipaddress {{
        192.0.2.{vrid}/24
    }}
}}
"""


def test_reload_removing_instances_reports_deleted_or_fault_and_rewrites_states(
    lab: Lab, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    log = tmp_path / "notify.log"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(0o755)
    fifo = tmp_path / "events.fifo"
    head = f"""
global_defs {{
    enable_script_security
    script_user root
    vrrp_notify_fifo {fifo}
    fifo_write_vrrp_states_on_reload
}}
"""
    generic = f'notify "{script} generic"'
    keep = _instance("VI_3", 96, generic)
    config = (
        head
        + _instance("VI_1", 94, f'notify_deleted "{script} deleted"\n    {generic}')
        + _instance("VI_2", 95, f'notify_fault "{script} fault"\n    {generic}')
        + keep
    )
    with daemon_group(lab.node(0), config, env=JSON_LOGS) as group:
        group.wait_started()
        wait_until(fifo.exists, 15, message="vrrpd to create the notify FIFO")
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            wait_until(
                lambda: log.exists() and log.read_text().count(" MASTER 255") == 3,
                20,
                message="three instances MASTER",
            )
            os.read(reader, 65536)  # the start-up lines
            group.config.write_text(head + keep)
            group.proc.send_signal(1)  # SIGHUP: reload
            wait_until(
                lambda: (
                    "generic INSTANCE VI_2 FAULT 255" in log.read_text()
                    and "generic INSTANCE VI_1 DELETED 255" in log.read_text()
                ),
                20,
                message="DELETED and FAULT notifications",
            )
            lines = log.read_text().splitlines()
            assert lines.index("deleted") < lines.index("generic INSTANCE VI_1 DELETED 255")
            assert lines.index("fault") < lines.index("generic INSTANCE VI_2 FAULT 255")
            assert "generic INSTANCE VI_3" not in "\n".join(lines[lines.index("deleted") :])
            got: list[str] = []

            def three_lines() -> bool:
                got.extend(os.read(reader, 65536).decode().splitlines())
                return len(got) >= 3

            wait_until(three_lines, 10, message="FIFO lines of the reload")
            assert sorted(got) == [
                'INSTANCE "VI_1" DELETED 255',
                'INSTANCE "VI_2" FAULT 255',
                'INSTANCE "VI_3" MASTER 255',
            ]
            # The FIFO line comes with the state change, before netd has (un)installed the VIPs.
            wait_until(
                lambda: (
                    "192.0.2.96/24" in (held := lab.node(0).address_set())
                    and not {"192.0.2.94/24", "192.0.2.95/24"} & held
                ),
                5,
                message="VI_3's VIP installed, VI_1's and VI_2's removed",
            )
        finally:
            os.close(reader)


def _logged_at(group: DaemonGroup, event: str) -> datetime:
    """The timestamp of the first ``event`` record in the group's JSON log."""
    for line in group.log_text().splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line[line.index("{") :])
            if rec.get("event") == event:
                return datetime.fromisoformat(rec["timestamp"])
    raise AssertionError(f"no {event} in the log")


def test_vrrp_startup_delay_holds_the_instances_back(lab: Lab) -> None:
    config = "global_defs {\n    vrrp_startup_delay 3\n}\n" + _instance("VI_1", 97, "")
    with daemon_group(lab.node(0), config, env=JSON_LOGS) as group:
        group.wait_started()
        wait_until(lambda: "vrrpd.startup.delayed" in group.log_text(), 15, message="the delay")
        wait_until(
            lambda: "vrrpd.instance.started" in group.log_text(), 15, message="instance start"
        )
        # The records' own times: when the test reads the log depends on the machine's load.
        assert _logged_at(group, "vrrpd.instance.started") - _logged_at(
            group, "vrrpd.startup.delayed"
        ) > timedelta(seconds=2.5)
        wait_until(lambda: "192.0.2.97/24" in lab.node(0).address_set(), 10, message="MASTER")


def _recreate_pair(node: Any, address_after: float = 0.0) -> None:
    node.run(["ip", "link", "del", "kwa"], check=False)
    node.run(["ip", "link", "add", "kwa", "type", "veth", "peer", "name", "kwb"])
    time.sleep(address_after)  # the new interface is seen before it has its address
    node.run(["ip", "addr", "add", "198.51.100.1/24", "dev", "kwa"])
    node.run(["ip", "link", "set", "kwa", "up"])
    node.run(["ip", "link", "set", "kwb", "up"])


def _adverts_on_kwb(node: Any, timeout: float) -> None:
    capture = node.capture("kwb")
    try:
        # VRRP (IPv4 protocol 112) from 198.51.100.1, as the far end of the pair sees it
        capture.wait_for(
            lambda f: (
                f[12:14] == ETH_IPV4 and f[23] == 112 and f[26:30] == bytes([198, 51, 100, 1])
            ),
            2,
            timeout=timeout,
        )
    finally:
        capture.close()


@pytest.mark.parametrize(("dynamic", "address_after"), [(True, 0.0), (True, 1.5), (False, 0.0)])
def test_a_recreated_interface_is_followed_only_with_dynamic_interfaces(
    lab: Lab, dynamic: bool, address_after: float
) -> None:
    node = lab.node(0)
    _recreate_pair(node)
    glob = "global_defs {\n    dynamic_interfaces\n}\n" if dynamic else ""
    config = (
        glob
        + """
vrrp_instance VI_1 {
    state MASTER
    interface kwa
    virtual_router_id 98
    priority 255
    advert_int 0.5
    version 3
    virtual_ipaddress {
        198.51.100.98/24
    }
}
"""
    )
    with daemon_group(node, config, env=JSON_LOGS) as group:
        group.wait_started()
        _adverts_on_kwb(node, 20)
        _recreate_pair(node, address_after)  # a new kwa: another ifindex
        wait_until(
            lambda: "vrrpd.interface.recreated" in group.log_text(), 15, message="re-creation"
        )
        if dynamic:
            _adverts_on_kwb(node, 20)
            wait_until(
                lambda: "198.51.100.98/24" in node.address_set("kwa"), 15, message="VIP back"
            )
        else:
            # The interface is up again, but this instance's sockets are bound to the old one.
            wait_until(
                lambda: _vi_1(group) == ("FAULT", [RECREATED]), 15, message="FAULT (re-created)"
            )
            assert "198.51.100.98/24" not in node.address_set("kwa")


RECREATED = "interface kwa re-created (dynamic_interfaces not set)"


def _vi_1(group: Any) -> tuple[str, list[str]] | None:
    """VI_1's state and faults as ``pykeepalivedctl status --json`` reports them."""
    out = subprocess.run(
        [sys.executable, "-m", "ctl", "--runtime-dir", str(group.runtime.path), "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    inst = json.loads(out)["instances"].get("VI_1")
    return None if inst is None else (inst["state"], inst["faults"])


def test_ah_adverts_follow_a_recreated_interface(lab: Lab) -> None:
    node = lab.node(0)
    _recreate_pair(node)
    config = """
global_defs {
    dynamic_interfaces
}
vrrp_instance VI_1 {
    state MASTER
    interface kwa
    virtual_router_id 97
    priority 255
    advert_int 0.5
    version 2
    authentication {
        auth_type AH
        auth_pass s3cret
    }
    virtual_ipaddress {
        198.51.100.97/24
    }
}
"""

    def ah_adverts(timeout: float) -> None:
        capture = node.capture("kwb")
        try:
            # IPv4 protocol 51 (AH) from 198.51.100.1, as the far end of the pair sees it
            capture.wait_for(
                lambda f: (
                    f[12:14] == ETH_IPV4 and f[23] == 51 and f[26:30] == bytes([198, 51, 100, 1])
                ),
                2,
                timeout=timeout,
            )
        finally:
            capture.close()

    with daemon_group(node, config, env=JSON_LOGS) as group:
        group.wait_started()
        ah_adverts(20)
        _recreate_pair(node, 1.0)  # a new kwa, its address a second late
        wait_until(
            lambda: "vrrpd.interface.recreated" in group.log_text(), 15, message="re-creation"
        )
        ah_adverts(20)
