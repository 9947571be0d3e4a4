"""Issue #9: an instance whose interface is not usable yet is in FAULT saying why, visible in
``vrrp.state`` and ``pykeepalivedctl status``, and starts once the interface is usable, led by
netlink events (no restart, no reload).

The interface goes through every stage an operator can meet: not created yet (with
``dynamic_interfaces``), created but down, up without an IPv4 address, and finally usable.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.daemon import REPO, DaemonGroup, daemon_group
from tests.interop.peers import BusWatch
from tests.lab import Lab, Node, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.slow]

DEV = "late0"  # one end of a veth pair created mid-test (no dummy module everywhere)
VIP = "198.51.100.100/24"
CONFIG = f"""
global_defs {{
    router_id pending1
    dynamic_interfaces
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {DEV}
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {VIP}
    }}
}}
"""
START = 45.0


def _status_text(group: DaemonGroup) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ctl", "--runtime-dir", str(group.runtime.path), "status"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _fault(watch: BusWatch, reason: str, timeout: float = 15.0) -> None:
    def seen() -> bool:
        watch.poll(0.05)
        last = watch.last
        return last is not None and last["state"] == "FAULT" and reason in last["faults"]

    try:
        wait_until(seen, timeout, 0.0, f"FAULT for {reason!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; seen {[b.get('faults') for b in watch.history]}") from None


def test_instance_waits_in_fault_through_every_stage(make_lab: Callable[..., Lab]) -> None:
    node: Node = make_lab(1).node(0)
    with daemon_group(node, CONFIG, "-l") as group:
        try:
            group.wait_started(timeout=START)
            with BusWatch(group.runtime) as watch:
                _fault(watch, f"interface {DEV} not found", START)
                assert f"interface {DEV} not found" in _status_text(group)
                node.run(["ip", "link", "add", DEV, "type", "veth", "peer", "name", "late1"])
                _fault(watch, f"interface {DEV} is down")
                node.run(["ip", "link", "set", "late1", "up"])
                node.run(["ip", "link", "set", DEV, "up"])
                _fault(watch, f"no IPv4 address on {DEV}")
                assert f"no IPv4 address on {DEV}" in _status_text(group)
                node.run(["ip", "addr", "add", "198.51.100.1/24", "dev", DEV])
                watch.wait_state("MASTER", 15)
                wait_until(lambda: VIP in node.address_set(DEV), 5, 0.02, "the VIP installed")
                assert "FAULT" not in _status_text(group).split("VIPS", 1)[1].split("COMPONENT")[0]
        except BaseException:
            print("--- pykeepalived log ---\n" + group.log_text()[-20000:])
            raise
