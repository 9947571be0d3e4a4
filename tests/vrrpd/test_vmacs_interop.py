"""VMAC names, MACs, parents and VIP placement from vrrpd.vmacs against what Debian's
keepalived 2.2.7 creates in a namespace for the same configuration."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core import loads
from tests.lab import Lab, Node, wait_until
from vrrpd.plan import plan

KEEPALIVED = "/usr/sbin/keepalived"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.interop,
    pytest.mark.skipif(not Path(KEEPALIVED).exists(), reason="keepalived not installed"),
]

CONF = """
global_defs {
    router_id interop
    vmac_prefix vx
    vmac_addr_prefix va
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    use_vmac
    use_vmac_addr
    virtual_ipaddress {
        192.0.2.150/24
        198.51.100.10/24 dev eth1
        198.51.100.11/24 dev eth1
    }
}
vrrp_instance VI_2 {
    state MASTER
    interface eth0
    virtual_router_id 52
    priority 200
    use_vmac
    virtual_ipaddress {
        192.0.2.151/24
    }
}
vrrp_instance VI_3 {
    state MASTER
    interface eth1
    virtual_router_id 52
    priority 200
    use_vmac
    virtual_ipaddress {
        198.51.100.12/24
    }
}
"""


def macvlans(node: Node) -> dict[str, tuple[str, str, str]]:
    """name -> (parent, MAC, mode) of every macvlan in the node."""
    links = node.links()
    names = {v["index"]: k for k, v in links.items()}
    return {
        name: (names[link["link"]], link["mac"], link["mode"])
        for name, link in links.items()
        if link["kind"] == "macvlan"
    }


def vips_by_interface(node: Node, names: set[str]) -> dict[str, set[str]]:
    return {name: {a for a in node.address_set(name) if not a.startswith("fe80")} for name in names}


def test_vmac_names_and_vip_placement_match_keepalived(lab: Lab, tmp_path: Path) -> None:
    node = lab.node(0)
    node.run(["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"])
    for ifname in ("eth1", "eth1p"):
        node.run(["ip", "link", "set", ifname, "up"])
    node.run(["ip", "addr", "add", "198.51.100.2/24", "dev", "eth1"])
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    argv = [KEEPALIVED, "-n", "-l", "-P", "-f", str(path)]
    argv += ["-p", str(tmp_path / "k.pid"), "-r", str(tmp_path / "v.pid")]
    argv += ["-c", str(tmp_path / "c.pid")]
    proc = node.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(macvlans(node)) >= 4, 15, 0.1, "keepalived's four VMACs")
        theirs = macvlans(node)
        # Every instance becomes MASTER (priority 200, alone): all VIPs are placed.
        wait_until(
            lambda: sum(len(v) for v in vips_by_interface(node, set(theirs)).values()) == 5,
            15,
            0.1,
            "keepalived's five VIPs",
        )
        their_vips = vips_by_interface(node, set(theirs))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    ours: dict[str, tuple[str, str, str]] = {}
    our_vips: dict[str, set[str]] = {}
    for p in plan(loads(CONF).config):
        vmacs: list[dict[str, Any]] = [*([p.vmac] if p.vmac else []), *p.addr_vmacs]
        for v in vmacs:
            ours[v["name"]] = (v["base"], v["mac"], "private")
        for item in p.net_items:
            spec = item["spec"]
            our_vips.setdefault(spec["dev"] or p.interface, set()).add(spec["address"])
    assert ours == theirs
    assert {k: v for k, v in our_vips.items() if k in ours} == their_vips
