"""Unicast with more than one peer: every peer must get an advert it accepts.

For VRRPv3 over IPv4 the checksum covers a pseudo-header naming the destination, so an advert
sent to each unicast peer needs its own checksum.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.daemon import daemon_group
from tests.interop.peers import (
    BusWatch,
    KeepalivedPeer,
    vip_holders,
    vrrp_config,
    wait_sole_holder,
)
from tests.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.interop]

VIP = "192.0.2.100/24"


@pytest.mark.parametrize(("version", "advert_int"), [(2, 1), (3, 0.1)], ids=["v2", "v3"])
def test_every_unicast_peer_accepts_our_adverts(
    make_lab: Callable[..., Lab], version: int, advert_int: float
) -> None:
    lab = make_lab(3)

    def config(index: int, priority: int) -> str:
        me = lab.node(index)
        return vrrp_config(
            router_id=f"n{index}",
            priority=priority,
            version=version,
            advert_int=advert_int,
            vips=(VIP,),
            unicast_src=me.ip4,
            unicast_peers=[n.ip4 for n in lab.nodes if n is not me],
        )

    mdi = 4 * advert_int
    with (
        KeepalivedPeer(lab.node(1), config(1, 100)) as ka1,
        KeepalivedPeer(lab.node(2), config(2, 90)) as ka2,
        daemon_group(lab.node(0), config(0, 150), "-l") as group,
    ):
        group.wait_started()
        with BusWatch(group.runtime) as watch:
            watch.wait_state("MASTER", 15 + 3 * mdi)
            wait_sole_holder(lab, VIP, 0, 3 * mdi)
            for ka in (ka1, ka2):
                ka.wait_current("BACKUP", timeout=3 * mdi)
            # Several down intervals later, still nobody else claims the VIP.
            deadline = time.monotonic() + 2 * mdi
            while time.monotonic() < deadline:
                assert vip_holders(lab, VIP) == {0}
                time.sleep(0.05)
            for ka in (ka1, ka2):
                assert ka.complaints() == [], ka.log_text()
                assert ka.current_state() == "BACKUP"
