"""A vrrp_sync_group moves its members together (real daemons, two nodes)."""

from __future__ import annotations

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns


def config(priority: int) -> str:
    instances = "".join(
        f"""
vrrp_instance VI_{name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    version 3
    virtual_ipaddress {{
        192.0.2.{vrid}/24
    }}
    {"track_interface { trk0 }" if name == "B" else ""}
}}
"""
        for name, vrid in (("A", 71), ("B", 72))
    )
    return f"""
global_defs {{
    router_id sg{priority}
}}
vrrp_sync_group G1 {{
    group {{
        VI_A
        VI_B
    }}
}}
{instances}"""


def test_a_fault_in_one_member_moves_the_whole_group(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    # VI_B on node 0 tracks an extra interface we can take down.
    n0.run(["ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1"])
    n0.run(["ip", "link", "set", "trk1", "up"])
    n0.run(["ip", "link", "set", "trk0", "up"])
    n1.run(["ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1"])
    n1.run(["ip", "link", "set", "trk1", "up"])
    n1.run(["ip", "link", "set", "trk0", "up"])
    vips = {"192.0.2.71/24", "192.0.2.72/24"}
    with daemon_group(n0, config(150)) as g0, daemon_group(n1, config(100)) as g1:
        g0.wait_started()
        g1.wait_started()
        wait_until(
            lambda: vips <= n0.address_set() and not vips & n1.address_set(),
            20,
            message="node 0 to hold both VIPs",
        )
        n0.run(["ip", "link", "set", "trk0", "down"])
        wait_until(
            lambda: vips <= n1.address_set() and not vips & n0.address_set(),
            20,
            message="node 1 to take over both members of the group",
        )
        assert "vrrpd.sync_group.formed" in g0.log_text()
