"""Issue #9 (2): adverts leave from the interface's primary IPv4 address, as keepalived's do.

The node's kernel holds a primary 192.0.2.12/24 and, added after it, a secondary 192.0.2.10/24
that sorts lower as a string; the adverts captured on the peer's wire must carry the primary.
Deleting the primary (the kernel promotes the secondary, ``promote_secondaries``) must move the
adverts to the new primary without the instance leaving MASTER.
"""

from __future__ import annotations

import pytest

from tests.daemon import daemon_group
from tests.interop.peers import BusWatch, KeepalivedPeer, decode_vrrp, vrrp_config, vrrp_frames
from tests.lab import Capture, Lab, Node, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.slow]

PRIMARY, SECONDARY = "192.0.2.12", "192.0.2.10"
ADVERT_INT = 0.1
ADVERTS = 10  # consecutive adverts checked each time
START = 45.0


def _primary_and_lower_secondary(node: Node) -> None:
    node.sysctl(f"net.ipv4.conf.{node.ifname}.promote_secondaries", "1")
    node.run(["ip", "addr", "flush", "dev", node.ifname, "scope", "global", "to", "192.0.2.0/24"])
    node.run(["ip", "addr", "add", f"{PRIMARY}/24", "dev", node.ifname])
    node.run(["ip", "addr", "add", f"{SECONDARY}/24", "dev", node.ifname])
    out = node.run(["ip", "-4", "-o", "addr", "show", "dev", node.ifname]).stdout
    assert f"{SECONDARY}/24" in out and "secondary" in out.split(f"{SECONDARY}/24", 1)[1]


def _config(router_id: str, priority: int) -> str:
    return vrrp_config(router_id=router_id, priority=priority, advert_int=ADVERT_INT, version=3)


def _adverts(capture: Capture, count: int, timeout: float, since: int = 0) -> list[str]:
    """Sources of the first ``count`` adverts captured from frame ``since`` on."""

    def enough() -> list[bytes] | None:
        capture.poll(0.05)
        hits = vrrp_frames(capture.frames[since:])
        return hits if len(hits) >= count else None

    hits = wait_until(enough, timeout, 0.0, f"{count} adverts")
    return [decode_vrrp(f).src for f in hits[:count]]


def _first_from(capture: Capture, src: str, timeout: float) -> int:
    """Index just past the first captured advert from ``src``."""

    def found() -> int | None:
        capture.poll(0.05)
        for i, frame in enumerate(capture.frames):
            if vrrp_frames([frame]) and decode_vrrp(frame).src == src:
                return i + 1
        return None

    return wait_until(found, timeout, 0.0, f"an advert from {src}")


def test_ours_sends_from_the_primary_and_follows_a_promotion(lab: Lab) -> None:
    node = lab.node(0)
    _primary_and_lower_secondary(node)
    capture = lab.node(1).capture()
    try:
        with daemon_group(node, _config("pk0", 200), "-l") as group:
            group.wait_started(timeout=START)
            with BusWatch(group.runtime) as watch:
                watch.wait_state("MASTER", START)
                # Every advert since the capture began, the very first ones included.
                assert set(_adverts(capture, ADVERTS, 10)) == {PRIMARY}
                transitions = watch.history[-1]["transitions"]
                node.run(["ip", "addr", "del", f"{PRIMARY}/24", "dev", node.ifname])
                # The first adverts after the delete may still leave from the old address
                # (netd's report is on its way); from the first one from the promoted
                # address on, every advert comes from it.
                after = _first_from(capture, SECONDARY, 10)
                assert set(_adverts(capture, ADVERTS, 10, since=after)) == {SECONDARY}
                watch.poll(0.2)
                assert watch.history[-1]["state"] == "MASTER"
                assert watch.history[-1]["transitions"] == transitions  # no re-election
                assert "vrrpd.instance.source" in group.log_text()
    finally:
        capture.close()


def test_keepalived_sends_from_the_primary_too(lab: Lab) -> None:
    """The reference: the same address set-up under Debian's keepalived."""
    node = lab.node(1)
    _primary_and_lower_secondary(node)
    capture = lab.node(0).capture()
    try:
        with KeepalivedPeer(node, _config("ka1", 200)) as ka:
            ka.wait_current("MASTER", timeout=10)
            assert set(_adverts(capture, ADVERTS, 10)) == {PRIMARY}
    finally:
        capture.close()
