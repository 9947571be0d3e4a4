"""vrrpd's sockets follow an interface re-created under a new ifindex (netd re-making a VMAC
someone deleted): sockets bound to the old index would neither hear nor send adverts."""

from __future__ import annotations

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until
from tests.netd.failover import VIP, VipWatch, config, master_down

pytestmark = pytest.mark.netns

VMAC = "vrrp.51"


def test_adverts_keep_flowing_on_a_vmac_recreated_with_a_new_ifindex(lab: Lab) -> None:
    n0, n1 = lab.nodes
    with (
        daemon_group(n0, config(150, "n0", "    use_vmac"), "-l") as g0,
        daemon_group(n1, config(100, "n1", "    use_vmac"), "-l") as g1,
    ):
        g0.wait_started()
        g1.wait_started()
        wait_until(lambda: f"{VIP}/24" in n0.address_set(VMAC), 20, 0.05, "VIP on node 0")
        wait_until(lambda: VMAC in n1.links(), 20, 0.05, "node 1's VMAC")
        old = n0.ifindex(VMAC)
        n0.run(["ip", "link", "del", VMAC])

        def recreated() -> int | None:
            link = n0.links().get(VMAC)
            return link["index"] if link and link["index"] != old else None

        new = wait_until(recreated, 20, 0.05, "netd to re-create the VMAC")
        wait_until(lambda: f"{VIP}/24" in n0.address_set(VMAC), 20, 0.05, "VIP back on node 0")
        # Node 1 may have taken over while the VMAC was missing; the master's adverts on the
        # new VMAC must send it back to backup and keep it there.
        wait_until(lambda: f"{VIP}/24" not in n1.address_set(VMAC), 20, 0.05, "node 1 backup")
        with VipWatch(lab.nodes) as watch:
            watch.wait_sampled_until(watch.samples[0].t + 2 * master_down(100))
            assert all(s.held[0] for s in watch.samples), "node 0 lost the VIP"
            assert not any(s.held[1] for s in watch.samples), "node 1 does not hear node 0"
        assert n0.ifindex(VMAC) == new
        assert "vrrpd.socket.reopened" in g0.log_text()
