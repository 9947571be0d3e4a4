"""How long a verdict counts (vrrpd.freshness, vrrpd.health), on a fake clock.

The rule (docs/bus.md, "Staleness"): a verdict's own ``ttl``, else ``2 * interval + timeout``
(at least 3 s) for a ``vrrp_script``, else 15 s; an outlived verdict counts as failed until
the next one; an external ``init_fail`` script counts as failed until its first verdict.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from ipaddress import IPv4Address
from typing import Any

import pytest
from structlog.testing import capture_logs

from bus.errors import MessageRejected
from bus.messages import Verdict
from core import loads
from tests.vrrpd.fakes import runner_for
from vrrpd.freshness import FLOOR, RESEND_GRACE, fresh_for, lifetimes, script_lifetime
from vrrpd.health import HOLD_AFTER_BUS, NEVER_REPORTED, STALE, Health
from vrrpd.links import Link
from vrrpd.priority import Contribution
from vrrpd.runner import Runner


def config(*lines: str, weight: str = "-50") -> str:
    body = "\n    ".join((*lines, f"weight {weight}"))
    return f"""
vrrp_script chk {{
    {body}
}}
track_file tf {{
    file /tmp/pk-freshness-none
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.10/24
    }}
    track_script {{
        chk
    }}
    track_file {{
        tf weight 0
    }}
}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """One instance tracking ``chk`` (and ``tf``), its Health, and a clock to move."""

    def __init__(self, text: str) -> None:
        self.clock = Clock()
        self.health = Health({"eth0": Link("eth0", 2, True)}, clock=self.clock)
        result = loads(text, script_env=None, interfaces=["eth0"])
        assert result.exit_code == 0, result.problems
        self.runner: Runner = runner_for(text, IPv4Address("192.0.2.1"))[0]
        self.health.configure(result.config, [self.runner.plan])
        self.health.changed(Verdict(name="tf", ok=True, value=0))

    def hear(self, ok: bool, *, ttl: float | None = None) -> None:
        self.health.changed(Verdict(name="chk", ok=ok, ttl=ttl))

    def after(self, seconds: float, *, bus: bool = True) -> None:
        """``seconds`` pass; the broker's heartbeat arrives each second unless ``bus`` is
        False (then nothing at all arrives)."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + 1.0)
            if bus:
                self.health.heard()
            self.health.newly_stale()

    def chk(self) -> Contribution:
        self.health.refresh(self.runner)
        self.runner.trackers_changed(self.clock.now)
        return next(
            c for c in self.runner.priority_verdict.contributions if c.tracker.name == "chk"
        )

    def priority(self) -> int:
        self.chk()
        return self.runner.priority_verdict.priority


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


def test_a_30s_external_script_holds_between_its_20s_re_sends() -> None:
    """The old fixed 15 s made this flap between every two refreshes."""
    w = World(config("interval 30"))
    for _ in range(5):
        w.hear(True)
        w.after(20)
        assert (w.chk().status, w.chk().assumed) == (True, None)
    # A re-send lost: 40 s of silence is still within 2 * 30 + 30.
    w.after(20)
    assert w.chk().status is True


def test_a_1s_scripts_verdict_goes_stale_after_three_seconds_and_recovers(
    logs: list[MutableMapping[str, Any]],
) -> None:
    w = World(config("interval 1"))
    assert script_lifetime(1, 1).fresh_for == 3.0
    w.hear(True)
    assert w.priority() == 150
    w.after(2.9)
    assert w.chk().status is True
    w.after(0.2)  # 3.1 s: a dead 1 s checker is noticed now, not after 15 s
    c = w.chk()
    assert (c.status, c.delta, c.assumed) == (False, -50, STALE)
    assert w.priority() == 100
    w.after(10)
    stale = [e for e in logs if e["event"] == "vrrpd.health.stale" and e["name"] == "chk"]
    assert [e["fresh_for"] for e in stale] == [3.0]  # logged once
    w.hear(True)  # the next fresh verdict counts again
    assert (w.chk().status, w.chk().assumed, w.priority()) == (True, None, 150)
    assert any(e["event"] == "vrrpd.health.fresh" for e in logs)


def test_timeout_and_the_floor_take_part() -> None:
    assert script_lifetime(2, 5).fresh_for == 9.0
    assert script_lifetime(0.2, 0.2).fresh_for == FLOOR


def test_a_verdicts_own_ttl_overrides_the_interval() -> None:
    w = World(config("interval 1"))
    w.hear(True, ttl=600)
    w.after(599)
    assert w.chk().status is True
    w.after(2)
    assert w.chk().assumed == STALE
    # ...either way: a short ttl makes a 30 s script's verdict stale sooner.
    w = World(config("interval 30"))
    w.hear(True, ttl=2)
    w.after(2.5)
    assert w.chk().assumed == STALE


def test_checks_without_an_interval_keep_checkds_grace() -> None:
    w = World(config("interval 1"))
    assert RESEND_GRACE == 15.0
    w.hear(True, ttl=600)
    w.after(14)
    tf = w.health.reading(next(t for t in w.runner.plan.trackers if t.name == "tf"))
    assert tf == (0, None)
    w.after(2)
    tf = w.health.reading(next(t for t in w.runner.plan.trackers if t.name == "tf"))
    assert tf == (False, STALE)


@pytest.mark.parametrize("ttl", [0, -1, "10", True, float("inf")])
def test_a_bad_ttl_refuses_the_verdict(ttl: object) -> None:
    with pytest.raises(MessageRejected, match="ttl"):
        Verdict.decode("health.chk", {"name": "chk", "ok": True, "ttl": ttl})


def test_a_good_ttl_is_taken() -> None:
    assert Verdict.decode("health.chk", {"name": "chk", "ok": True, "ttl": 2}).ttl == 2


@pytest.mark.parametrize(
    ("weight", "failed_priority"),
    [("-50", 100), ("50", 150), ("50 reverse", 150), ("-50 reverse", 200)],
)
def test_an_external_init_fail_script_counts_failed_until_it_reports(
    weight: str, failed_priority: int
) -> None:
    """keepalived starts an init_fail script failed: a failed weighted script subtracts (or
    does not add) exactly as a reported failure would."""
    w = World(config("init_fail", weight=weight))
    c = w.chk()
    assert (c.status, c.assumed, c.fault) == (False, NEVER_REPORTED, False)
    assert w.priority() == failed_priority
    w.hear(True)
    ok = w.chk()
    assert (ok.status, ok.assumed) == (True, None)
    w.hear(False)
    assert (w.chk().assumed, w.priority()) == (None, failed_priority)


def test_an_unweighted_init_fail_script_holds_fault_until_it_reports_ok() -> None:
    w = World(config("init_fail", weight="0"))
    assert w.chk().fault
    w.hear(True)
    assert not w.chk().fault


def test_without_init_fail_a_silent_external_script_contributes_nothing() -> None:
    w = World(config("interval 1"))
    c = w.chk()
    assert (c.status, c.delta, c.assumed) == (None, 0, None)
    w.after(100)  # never reported is not stale
    assert w.priority() == 150


def test_a_checkd_script_with_init_fail_waits_for_checkds_own_verdict() -> None:
    """checkd publishes an init_fail script's failed verdict itself, at once; vrrpd assumes
    nothing for a script it runs."""
    w = World(config('script "/bin/true"\n    init_fail'))
    assert (w.chk().status, w.chk().assumed) == (None, None)


def test_a_quorum_verdict_keeps_checkds_grace_whatever_its_vrrp_script_says() -> None:
    """``vrrp_script vs:<key> { }`` has no script line, but checkd feeds it every 5 s: the
    external checkers' interval rule (3 s here) would make it flap."""
    text = "vrrp_script vs:192.0.2.100:tcp:80 {\n    weight -50\n    init_fail\n}\n"
    rules = lifetimes(loads(text, script_env=None).config)
    assert rules == {}
    assert fresh_for(rules, "vs:192.0.2.100:tcp:80", None) == RESEND_GRACE


def test_a_silent_bus_is_not_a_silent_checker() -> None:
    """A hung broker is replaced after 3.5 s: meanwhile nothing arrives, from checkers or
    anyone, and a 1 s script's verdict must not count as failed for it."""
    w = World(config("interval 1"))
    w.hear(True)
    w.after(10, bus=False)
    assert w.chk().status is True  # nothing arrived at all: the silence is the bus's
    w.health.heard()  # the bus is back: the re-sends it held back may follow
    w.after(HOLD_AFTER_BUS - 0.5)
    assert w.chk().status is True
    w.after(1)
    assert w.chk().assumed == STALE  # the bus delivers, the checker does not
    w.after(10, bus=False)
    assert w.chk().assumed == STALE  # a later bus silence does not revive it
    w.hear(True)
    assert w.chk().status is True


def test_only_tracked_checks_are_logged_stale(logs: list[MutableMapping[str, Any]]) -> None:
    """health.* also carries real-server verdicts for checkd (health.rs:<vs>/<rs>): vrrpd
    does not cry about one of those going quiet."""
    w = World(config("interval 1"))
    w.health.changed(Verdict(name="rs:192.0.2.1:tcp:80/198.51.100.1:tcp:80", ok=True, ttl=1))
    w.hear(True)
    w.after(5)
    assert [e["name"] for e in logs if e["event"] == "vrrpd.health.stale"] == ["chk"]
