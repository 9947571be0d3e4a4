"""unicast_peer min_ttl/max_ttl on real adverts: the TTL the kernel reports is the one checked."""

from __future__ import annotations

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns

VIP = "192.0.2.81/24"


def config(priority: int, me: str, peer: str, bounds: str) -> str:
    return f"""
global_defs {{
    router_id ttl{priority}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 81
    priority {priority}
    advert_int 1
    version 3
    unicast_src_ip {me}
    unicast_peer {{
        {peer} {bounds}
    }}
    virtual_ipaddress {{
        {VIP}
    }}
}}
"""


def test_adverts_outside_a_peers_ttl_bounds_are_dropped_naming_the_peer(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    ip0, ip1 = n0.ip4, n1.ip4
    # Adverts cross one segment with the TTL they were sent with (255): node 0 accepts node 1
    # (min_ttl 255), node 1 refuses node 0 (max_ttl 254), so node 1 never hears a master.
    with (
        daemon_group(n0, config(150, ip0, ip1, "min_ttl 255")) as g0,
        daemon_group(n1, config(100, ip1, ip0, "max_ttl 254")) as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        wait_until(
            lambda: VIP in n0.address_set() and VIP in n1.address_set(),
            20,
            message="both nodes to hold the VIP (node 1 drops node 0's adverts)",
        )
        wait_until(
            lambda: f"peer {ip0}'s min_ttl..max_ttl 0..254" in g1.log_text(),
            10,
            message="node 1 to log why it drops node 0's adverts",
        )
        assert "unicast TTL 255 outside" in g1.log_text()
        assert "unicast TTL" not in g0.log_text()
