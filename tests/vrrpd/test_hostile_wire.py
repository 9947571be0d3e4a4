"""A hostile neighbour on the segment: every receive rule broken on the wire, and a flood.

The neighbour (node 1) sends crafted frames (tests/vrrpd/hostile.py) at a master (node 0) that
runs a VRRPv2 PASS, a VRRPv3 IPv4 and a VRRPv3 IPv6 instance. Each frame must be dropped and
counted under its named reason in ``vrrp.state`` (what ``pykeepalivedctl status --json``
shows), the master must keep every address in the kernel, and vrrpd must not restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ctl.snapshot import collect
from tests.daemon import JSON_LOGS, DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from tests.vrrpd.hostile import VIPS, Injector, cases, flood_frame, link_local, victim_config

pytestmark = pytest.mark.netns

#: frames no instance takes (no VRID of ours, or none at all): counted under every instance
#: on the socket that got them (V2 and V3 share the IPv4 one), and not logged
_UNCLAIMED = {"other_vrid", "one_byte", "v6_other_vrid"}


def instances(group: DaemonGroup) -> dict[str, dict[str, Any]]:
    return asyncio.run(collect(group.runtime)).instances


def counters(report: dict[str, Any]) -> Counter[str]:
    drops = report.get("drops", {})
    return Counter(
        {k: v for k, v in drops.items() if k.startswith(("drop.", "note.")) or k == "accepted"}
    )


@pytest.fixture
def victim(lab: Lab) -> Iterator[DaemonGroup]:
    n0 = lab.node(0)
    with daemon_group(n0, victim_config(), env=JSON_LOGS) as group:
        group.wait_started()
        wait_until(
            lambda: {vip for _, vip in VIPS.values()} <= n0.address_set(),
            30,
            message="the victim to hold every VIP",
        )
        wait_until(
            lambda: all(i["state"] == "MASTER" for i in instances(group).values()),
            10,
            message="every instance MASTER",
        )
        yield group


def log_lines(group: DaemonGroup) -> list[dict[str, Any]]:
    """The daemon's structured log (one JSON object per line; other lines skipped)."""
    out = []
    for text in group.log_text().splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(text)
            if isinstance(line, dict):
                out.append(line)
    return out


def assert_unharmed(lab: Lab, group: DaemonGroup, before: dict[str, Any], vrrpd: int) -> None:
    assert {vip for _, vip in VIPS.values()} <= lab.node(0).address_set()
    after = instances(group)
    for name in VIPS:
        assert after[name]["state"] == "MASTER", after[name]
        assert after[name]["transitions"] == before[name]["transitions"], name
    assert group.pids()["vrrpd"] == vrrpd
    assert "Traceback" not in group.log_text()


def test_every_broken_rule_is_dropped_and_counted_by_reason(lab: Lab, victim: DaemonGroup) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    before = instances(victim)
    vrrpd = victim.pids()["vrrpd"]
    crafted = cases(n1.mac(), n1.ip4, link_local(n1), n0.ip4)
    expected: dict[str, Counter[str]] = {name: counters(before[name]) for name in VIPS}
    injector = Injector(n1)
    try:
        for case in crafted:
            injector.send(case.frame)
            expected[case.instance].update(case.counted_as)
            if case.name in _UNCLAIMED and case.instance == "V2":
                expected["V3"][case.counter] += 1
    finally:
        injector.close()

    def counted() -> bool:
        got = instances(victim)
        return all(counters(got[name]) == expected[name] for name in VIPS)

    try:
        wait_until(counted, 20, interval=0.5, message="every crafted frame counted by reason")
    except AssertionError:
        got = instances(victim)
        raise AssertionError(
            {n: (dict(counters(got[n])), dict(expected[n])) for n in VIPS}
        ) from None
    assert_unharmed(lab, victim, before, vrrpd)
    # Dropped adverts are logged with their decoded reason (rate-limited per reason).
    logged = {
        (line["instance"], "drop." + line["reason"])
        for line in log_lines(victim)
        if line.get("event") == "vrrpd.advert.dropped"
    }
    claimed = {(c.instance, c.counter) for c in crafted if c.name not in _UNCLAIMED}
    assert {d for d in claimed if d[1].startswith("drop.")} <= logged


def test_a_flood_with_a_guessed_password_leaves_the_master_its_address(
    lab: Lab, victim: DaemonGroup
) -> None:
    n1 = lab.node(1)
    before = instances(victim)
    vrrpd = victim.pids()["vrrpd"]
    injector = Injector(n1)
    try:
        # 10,000 adverts/s claiming priority 254 (bench/hostile.py measures the CPU cost).
        sent = injector.flood(flood_frame(n1.mac(), n1.ip4), rate=10_000, seconds=2)
    finally:
        injector.close()
    assert sent > 0
    wait_until(
        lambda: counters(instances(victim)["V2"])["drop.auth"] > 0,
        15,
        interval=0.5,
        message="the flood counted under drop.auth",
    )
    assert_unharmed(lab, victim, before, vrrpd)
