"""Accept_Mode end to end: a no_accept master holds the VIP but does not answer on it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zmq.asyncio
from pyroute2.nftables.main import NFTables

from bus import Subscriber
from tests.daemon import daemon_group, next_event
from tests.lab import Lab, wait_until
from tests.netd.accept import answered, ping, set_elements, tables
from tests.netd.failover import VIP, GroupAt, config, kill_group

pytestmark = pytest.mark.netns


def holds_vip(lab: Lab, i: int) -> bool:
    return f"{VIP}/24" in lab.node(i).address_set()


def test_strict_master_drops_vip_traffic_until_term(lab: Lab) -> None:
    """strict_mode implies no_accept for a non-owner (keepalived's implicit DROP rule)."""
    n0, n1 = lab.nodes
    with daemon_group(n0, config(150, "n0", "    strict_mode"), "-l") as g0:
        g0.wait_started()
        wait_until(lambda: holds_vip(lab, 0), 20, 0.05, "node 0 master with the VIP")
        assert set_elements(n0, "keepalived", "vips") == {VIP}
        assert not ping(n1, VIP) and not ping(n1, VIP)
        assert answered(n1, n0.ip4), "the node's own address must stay reachable"
        text = g0.log_text()
        assert "netd.firewall.drop" in text and "no_accept" in text
    assert not holds_vip(lab, 0)
    assert tables(n0) == {}, "the table must go at TERM"


def test_accepting_master_answers_and_restart_after_kill_removes_old_rules(lab: Lab) -> None:
    n0, n1 = lab.nodes
    with daemon_group(n0, config(150, "n0", "    no_accept"), "-l") as g0:
        g0.wait_started()
        wait_until(lambda: set_elements(n0, "keepalived", "vips") == {VIP}, 20, 0.05, "VIP blocked")
        # The drop rule goes in before the address: wait for the address too, then ask.
        wait_until(lambda: holds_vip(lab, 0), 20, 0.05, "node 0 holds the VIP")
        assert not ping(n1, VIP)
        kill_group(g0.runtime)
        assert set_elements(n0, "keepalived", "vips") == {VIP}, "kill -9 leaves the rules"
        # Restarted with accept: the old run's table goes at start, the VIP is answered.
        with GroupAt(n0, g0.runtime, config(150, "n0", "    accept")) as again:
            again.wait_started()
            wait_until(lambda: tables(n0) == {}, 10, 0.05, "the leftover table removed")
            wait_until(lambda: holds_vip(lab, 0), 20, 0.05, "node 0 master again")
            assert answered(n1, VIP)
            # netd logs the removal once the kernel has acknowledged it: wait for the line.
            wait_until(
                lambda: "netd.firewall.leftover_removed" in again.log_text(),
                10,
                message="the leftover's removal logged",
            )
            assert tables(n0) == {}, "an accepting master needs no table"


def test_a_foreign_table_of_our_name_is_left_alone_and_the_failure_reported(lab: Lab) -> None:
    n0 = lab.node(0)

    def foreign() -> None:
        with NFTables(nfgen_family=1) as nft:
            nft.table("add", name="keepalived")

    n0.call(foreign)
    with daemon_group(n0, config(150, "n0", "    no_accept"), "-l") as g0:

        async def scenario() -> dict[str, Any]:
            ctx = zmq.asyncio.Context()
            sub = Subscriber(ctx, g0.runtime, ["net.applied.*"])
            sub.start()
            try:
                event = await next_event(
                    sub,
                    lambda e: any(f["item"].get("kind") == "firewall" for f in e.body["failures"]),
                    30,
                )
                return dict(event.body)
            finally:
                sub.close()
                ctx.term()

        g0.wait_started()
        body = asyncio.run(scenario())
        assert body["owner"] == "vrrp:VI_1"
        (failure,) = [f for f in body["failures"] if f["item"]["kind"] == "firewall"]
        assert failure["errno"] == "EEXIST" and "not ours" in failure["reason"]
        assert tables(n0) == {"keepalived": None}, "someone else's table must not be touched"
    assert tables(n0) == {"keepalived": None}
