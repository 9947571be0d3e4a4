"""`pykeepalivedctl status` explains a priority: base, each tracker, external verdicts included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ctl.snapshot import Snapshot, status_table
from tests.ctl.test_operator_commands import ctl, state_of
from tests.daemon import DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from vrrpd.priority import Tracker, TrackerKind, evaluate

WEB = Tracker(TrackerKind.SCRIPT, "chk_web", -20)
ETH1 = Tracker(TrackerKind.INTERFACE, "eth1", 0)
LOAD = Tracker(TrackerKind.FILE, "load", 2)


def test_each_tracker_contributes_and_says_how() -> None:
    verdict = evaluate(150, [WEB, ETH1, LOAD], {WEB: False, ETH1: True, LOAD: 3})
    assert verdict.priority == 136
    assert [(c.tracker.label, c.status, c.delta, c.fault) for c in verdict.contributions] == [
        ("track_script chk_web", False, -20, False),
        ("track_interface eth1", True, 0, False),
        ("track_file load", 3, 6, False),
    ]
    waiting = evaluate(150, [ETH1], {})
    assert [(c.status, c.fault) for c in waiting.contributions] == [(None, True)]


def test_the_table_shows_the_breakdown_and_faults() -> None:
    verdict = evaluate(150, [WEB, ETH1], {WEB: False, ETH1: None})
    snap = Snapshot(
        instances={
            "VI_1": {
                "instance": "VI_1",
                "state": "FAULT",
                "priority": verdict.priority,
                "base_priority": 150,
                "trackers": [c.to_wire() for c in verdict.contributions],
                "faults": sorted(verdict.faults),
            }
        }
    )
    table = status_table(snap)
    assert (
        "VI_1: priority 130 = base 150, track_script chk_web -20 (failed), "
        "track_interface eth1 FAULT (no report yet)"
    ) in table
    assert ["VI_1", "track_interface", "eth1"] in [line.split() for line in table.splitlines()]


def test_the_table_says_when_vrrpd_assumed_a_failure() -> None:
    verdict = evaluate(150, [WEB, LOAD], {WEB: False, LOAD: 3}, {WEB: "stale"})
    snap = Snapshot(
        instances={
            "VI_1": {
                "instance": "VI_1",
                "state": "BACKUP",
                "priority": verdict.priority,
                "base_priority": 150,
                "trackers": [c.to_wire() for c in verdict.contributions],
            }
        }
    )
    assert (
        "VI_1: priority 136 = base 150, track_script chk_web -20 (failed: stale), "
        "track_file load +6 (value 3)"
    ) in status_table(snap)


CONFIG = """
vrrp_script chk_ext {
    weight -20
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk_ext
    }
}
"""


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    with daemon_group(lab.node(0), CONFIG) as g:
        g.wait_started()
        yield g


@pytest.mark.netns
def test_an_external_verdict_shows_in_a_later_status(group: DaemonGroup) -> None:
    # The external checker reports once, saying for how long, and goes away; status, run
    # later, still sees it.
    out = ctl(
        group.runtime.path, "publish", "health.chk_ext", "ok=false", "reason=HTTP 503", "ttl=600"
    )
    assert out.returncode == 0, out.stderr
    wait_until(
        lambda: (state_of(group, "VI_1") or {}).get("priority") == 130,
        15,
        message="the failed external check to take 20 off VI_1's priority",
    )
    table = ctl(group.runtime.path, "status").stdout
    assert "VI_1: priority 130 = base 150, track_script chk_ext -20 (failed)" in table


@pytest.mark.netns
def test_an_init_fail_external_check_is_failed_until_it_reports_and_when_it_goes_silent(
    lab: Lab,
) -> None:
    """docs/bus.md, "Staleness": never reported (init_fail) and stale both count as failed,
    and status says which; a verdict's ttl outlasts the script's 1 s interval."""
    config = CONFIG.replace("    weight -20\n", "    weight -20\n    init_fail\n", 1)
    with daemon_group(lab.node(0), config) as g:
        g.wait_started()

        def table() -> str:
            return ctl(g.runtime.path, "status").stdout

        wait_until(
            lambda: "track_script chk_ext -20 (failed: never reported)" in table(),
            15,
            message="an init_fail check nobody reported on to count as failed",
        )
        out = ctl(g.runtime.path, "publish", "health.chk_ext", "ok=true", "ttl=600")
        assert out.returncode == 0, out.stderr
        wait_until(
            lambda: (state_of(g, "VI_1") or {}).get("priority") == 150,
            15,
            message="the first verdict to count",
        )
        # Without ttl a 1 s script's verdict holds 3 s (2 * interval + timeout).
        out = ctl(g.runtime.path, "publish", "health.chk_ext", "ok=true")
        assert out.returncode == 0, out.stderr
        wait_until(
            lambda: "track_script chk_ext -20 (failed: stale)" in table(),
            15,
            message="the verdict nobody re-sent to count as failed",
        )
        assert "vrrpd.health.stale" in g.log_text()
