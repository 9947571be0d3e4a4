"""Issue #9 (1): instances started while the interface's link-local address is still in DAD.

As at boot right after network-online: the link comes up with DAD on (no ``nodad``) and the
daemons start at once, so netd's first look at the link finds its link-local tentative (the
kernel announces no tentative address; only a dump shows it, which is why vrrpd once tried to
bind it and never heard of it again). keepalived waits for DAD to end; so must we: the
instance is in FAULT saying why, starts as soon as the link-local is usable, and the higher
priority wins within the master-down interval after DAD ends, whichever daemon the peer runs.

DAD is stretched to ~20 s (probes x interval): a Python daemon group on a loaded machine takes
seconds to start, and the test checks it really did start during DAD.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.daemon import DaemonGroup, daemon_group
from tests.interop.peers import BusWatch, KeepalivedPeer, vip_holders, vrrp_config
from tests.lab import Lab, Node, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.slow]

HIGH, LOW = 200, 100
VIP = "2001:db8::100/64"
ADVERT_INT = 1.0
# Master_Down_Interval of the higher priority: 3 x advert_int + skew.
MASTER_DOWN = 3 * ADVERT_INT + (256 - HIGH) / 256 * ADVERT_INT
# Bus, netlink and scheduling on a loaded two-core machine, on top of the protocol's time.
SLACK = 2.0
IFA_F_TENTATIVE = 0x40
# DAD probes x interval: ~20 s of tentative link-local.
DAD_TRANSMITS = 20
DAD_INTERVAL_MS = 1000
START = 45.0  # a whole daemon group starting on a loaded two-core machine


def _config(router_id: str, priority: int) -> str:
    return vrrp_config(
        router_id=router_id, priority=priority, vips=(VIP,), advert_int=ADVERT_INT, version=3
    )


def _link_local_tentative(node: Node) -> bool | None:
    """None while the link-local does not exist yet, else whether it is still tentative."""
    for a in node.addresses(node.ifname, family=10):
        if str(a["address"]).startswith("fe80:"):
            return bool(a["flags"] & IFA_F_TENTATIVE)
    return None


def _restart_link_with_dad(lab: Lab) -> None:
    """Take every node's link down (its IPv6 addresses go) with DAD switched on for it; the
    test brings them up, so each gets a fresh link-local that has to go through DAD."""
    for node in lab.nodes:
        node.run(["ip", "link", "set", node.ifname, "down"])
        node.sysctl(f"net/ipv6/conf/{node.ifname}/accept_dad", "1")
        node.sysctl(f"net/ipv6/conf/{node.ifname}/dad_transmits", str(DAD_TRANSMITS))
        node.sysctl(f"net/ipv6/neigh/{node.ifname}/retrans_time_ms", str(DAD_INTERVAL_MS))


def _link_up(lab: Lab, *nodes: int) -> None:
    for node in [lab.node(i) for i in nodes] if nodes else lab.nodes:
        node.run(["ip", "link", "set", node.ifname, "up"])


def _dad_over(node: Node, timeout: float = 40.0) -> float:
    """Wall-clock time at which the node's link-local left DAD (polled at 20 ms)."""
    wait_until(lambda: _link_local_tentative(node) is False, timeout, 0.02, "DAD to end")
    return time.time()


def _first_master(watch: BusWatch, timeout: float) -> float:
    state = watch.wait_state("MASTER", timeout)
    return float(state["_ts"])


@contextlib.contextmanager
def _ours(node: Node, priority: int) -> Iterator[DaemonGroup]:
    with daemon_group(node, _config(f"pk{node.index}", priority), "-l") as group:
        try:
            yield group
        except BaseException:
            print(f"--- pykeepalived log (node {node.index}) ---\n" + group.log_text()[-20000:])
            raise


def _watch_during_dad(group: DaemonGroup, node: Node) -> BusWatch:
    """Subscribe to the instance's state once the group runs; it must still be in DAD (and
    ``_waited_for_dad`` checks at the end that vrrpd did see the link-local tentative)."""
    group.wait_started(timeout=START)
    watch = BusWatch(group.runtime)
    assert _link_local_tentative(node), "DAD ended before the daemons started: test nothing"
    return watch


def _waited_for_dad(watch: BusWatch) -> None:
    """The instance was in FAULT, visibly, for its tentative link-local before it started."""
    watch.poll()
    reasons = [str(b.get("cause")) for b in watch.history if b["state"] == "FAULT"]
    assert any("tentative" in r for r in reasons), reasons
    assert watch.history[-1]["state"] != "FAULT"


def test_ours_started_during_dad_wins_against_keepalived(lab: Lab) -> None:
    _restart_link_with_dad(lab)
    _link_up(lab)
    with (
        _ours(lab.node(0), HIGH) as ours,
        KeepalivedPeer(lab.node(1), _config("ka1", LOW)) as ka,
        _watch_during_dad(ours, lab.node(0)) as watch,
    ):
        dad_end = _dad_over(lab.node(0))
        master_at = _first_master(watch, MASTER_DOWN + SLACK + 20)
        assert master_at - dad_end <= MASTER_DOWN + SLACK, (master_at - dad_end, watch.history)
        wait_until(lambda: vip_holders(lab, VIP) == {0}, 2 * MASTER_DOWN, 0.02, "VIP ours")
        ka.wait_current("BACKUP", timeout=2 * MASTER_DOWN)
        _waited_for_dad(watch)


def test_keepalived_started_during_dad_wins_against_ours(lab: Lab) -> None:
    """The mirror image: our lower-priority instance, also stuck in DAD at first, must end up
    BACKUP and not hold the VIP once keepalived has waited out its own DAD."""
    _restart_link_with_dad(lab)
    _link_up(lab)
    with (
        _ours(lab.node(0), LOW) as ours,
        KeepalivedPeer(lab.node(1), _config("ka1", HIGH)) as ka,
        _watch_during_dad(ours, lab.node(0)) as watch,
    ):
        _dad_over(lab.node(1))
        ka.wait_current("MASTER", timeout=MASTER_DOWN + SLACK + 20)
        watch.wait_state("BACKUP", MASTER_DOWN + SLACK)
        wait_until(lambda: vip_holders(lab, VIP) == {1}, 2 * MASTER_DOWN, 0.02, "VIP theirs")
        _waited_for_dad(watch)


def test_two_of_ours_started_during_dad_elect_the_higher(lab: Lab) -> None:
    """One node after the other (two groups starting at once outlast DAD on a loaded
    machine): the low one wins alone first, the high one preempts it after its own DAD."""
    _restart_link_with_dad(lab)
    _link_up(lab, 1)
    with (
        _ours(lab.node(1), LOW) as low,
        _watch_during_dad(low, lab.node(1)) as lw,
    ):
        _link_up(lab, 0)
        with (
            _ours(lab.node(0), HIGH) as high,
            _watch_during_dad(high, lab.node(0)) as hw,
        ):
            dad_end = _dad_over(lab.node(0))
            master_at = _first_master(hw, MASTER_DOWN + SLACK + 20)
            assert master_at - dad_end <= MASTER_DOWN + SLACK, (master_at - dad_end, hw.history)
            lw.wait_state("BACKUP", 2 * MASTER_DOWN + SLACK)
            wait_until(lambda: vip_holders(lab, VIP) == {0}, 2 * MASTER_DOWN, 0.02, "VIP high")
            _waited_for_dad(hw)
            _waited_for_dad(lw)
