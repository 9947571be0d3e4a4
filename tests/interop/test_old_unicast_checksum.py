"""``old_unicast_checksum`` against Debian's keepalived forcing the <= 1.3.6 unicast checksum.

keepalived 2.2.7 (built with OLD_CHKSUM_COMPAT) with the bare keyword sends VRRPv3 unicast
adverts whose pseudo-header names 224.0.0.18 and checks ours the same way. By default we
accept that form, switch to it and say so once; with ``never`` we drop its adverts.
"""

from __future__ import annotations

import pytest

from tests.daemon import daemon_group
from tests.interop.peers import (
    BusWatch,
    KeepalivedPeer,
    vip_holders,
    vrrp_config,
    wait_holders,
    wait_sole_holder,
)
from tests.lab import Lab, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop]

VIP = "192.0.2.100/24"


def config(lab: Lab, index: int, priority: int, option: str) -> str:
    me, peer = lab.node(index), lab.node(1 - index)
    text = vrrp_config(
        router_id=f"n{index}",
        priority=priority,
        version=3,
        advert_int=0.2,
        vips=(VIP,),
        unicast_src=me.ip4,
        unicast_peers=[peer.ip4],
    )
    return text.replace("    virtual_ipaddress {", f"    {option}\n    virtual_ipaddress {{")


def test_we_switch_to_an_old_peers_checksum_form_and_it_accepts_ours(lab: Lab) -> None:
    with KeepalivedPeer(lab.node(1), config(lab, 1, 100, "old_unicast_checksum")) as ka:
        ka.wait_current("MASTER", timeout=15)
        # Started after keepalived is MASTER, we hear its old-form adverts before we ever
        # send; with the higher priority we then take over, and keepalived must accept us.
        with daemon_group(lab.node(0), config(lab, 0, 150, ""), "-l") as group:
            group.wait_started()
            with BusWatch(group.runtime) as watch:
                watch.wait_state("MASTER", 15)
                ka.wait_current("BACKUP", timeout=5)
                wait_sole_holder(lab, VIP, 0, 5)
                # Several of keepalived's down intervals (0.8 s) later it is still a backup.
                for _ in range(20):
                    watch.poll(0.1)
                    assert watch.last is not None and watch.last["state"] == "MASTER"
                assert vip_holders(lab, VIP) == {0}
                assert ka.current_state() == "BACKUP"
            # Logged when keepalived's first old-form advert is heard, which nothing above
            # waits for as such: wait for the line, then check it came once.
            log = wait_until(
                lambda: t if "vrrpd.checksum.old_unicast" in (t := group.log_text()) else None,
                5,
                message="the old checksum form logged",
            )
            assert log.count("vrrpd.checksum.old_unicast") == 1
            assert "dropped: checksum" not in log
        assert ka.complaints() == [], ka.log_text()


def test_never_refuses_the_old_form(lab: Lab) -> None:
    with KeepalivedPeer(lab.node(1), config(lab, 1, 150, "old_unicast_checksum")) as ka:
        ka.wait_current("MASTER", timeout=15)
        never = config(lab, 0, 100, "old_unicast_checksum never")
        with daemon_group(lab.node(0), never, "-l") as group:
            group.wait_started()
            with BusWatch(group.runtime) as watch:
                # It never hears a master it accepts, so it takes the VIP as well.
                watch.wait_state("MASTER", 15)
            # MASTER on the bus comes before netd has installed the VIP.
            wait_holders(lab, VIP, {0, 1}, 5)
            # The drop is logged when an advert arrives, which nothing above waits for as such
            # (MASTER on the bus needs only silence): wait for the line.
            wait_until(
                lambda: (
                    f"advert from {lab.node(1).ip4} for VRID 51 dropped: checksum"
                    in group.log_text()
                ),
                5,
                message="keepalived's advert dropped for its checksum",
            )
            assert "vrrpd.checksum.old_unicast" not in group.log_text()
