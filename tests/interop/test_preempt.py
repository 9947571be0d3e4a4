"""Issue #4 (3): ``nopreempt`` and ``preempt_delay`` behave on our side as keepalived's do.

Each scenario has a master of lower priority running first and a higher-priority node joining
later. The same scenario runs with keepalived as the late joiner and with pykeepalived as the
late joiner; both must behave the same.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.interop.peers import log_times, vip_holders, wait_sole_holder
from tests.interop.variants import OURS, THEIRS, VARIANTS, Variant, keepalived, pykeepalived
from tests.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.interop]

HIGH, LOW = 150, 100
PREEMPT_DELAY = 3.0
SLACK = 1.0


def _mdi(variant: Variant, priority: int) -> float:
    return 3 * variant.advert_int + (256 - priority) / 256 * variant.advert_int


def _hold(variant: Variant) -> float:
    """How long a non-preempting joiner must stay backup: past the moment it would preempt."""
    return max(variant.master_down + variant.advert_int, 1.0)


def _stays(lab: Lab, vip: str, index: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert vip_holders(lab, vip) == {index}
        time.sleep(0.05)


@pytest.mark.parametrize("variant", VARIANTS)
def test_nopreempt_keepalived_joining_later_stays_backup(lab: Lab, variant: Variant) -> None:
    with pykeepalived(lab, variant, LOW) as ours:
        ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
        wait_sole_holder(lab, variant.vip, OURS, 5)
        with keepalived(lab, variant, HIGH, nopreempt=True) as ka:
            ka.wait_state("BACKUP")
            _stays(lab, variant.vip, OURS, _hold(variant))
            assert ka.current_state() == "BACKUP"
            assert ours.watch.states()[-1] == "MASTER"
            # Control: it was listening all along (nopreempt held it back, not deafness):
            # our orderly stop's priority-0 advert makes it take over at once.
            mark = ka.mark()
            ours.group.proc.terminate()
            ka.wait_log(r"Backup received priority 0 advertisement", 5, mark)
            ka.wait_current("MASTER", timeout=5)
            wait_sole_holder(lab, variant.vip, THEIRS, 10)
            assert ka.complaints() == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_nopreempt_pykeepalived_joining_later_stays_backup(lab: Lab, variant: Variant) -> None:
    with keepalived(lab, variant, LOW) as ka:
        ka.wait_current("MASTER", timeout=3 * variant.master_down)
        wait_sole_holder(lab, variant.vip, THEIRS, 5)
        with pykeepalived(lab, variant, HIGH, nopreempt=True) as ours:
            ours.watch.wait_state("BACKUP", 15)
            _stays(lab, variant.vip, THEIRS, _hold(variant))
            assert "MASTER" not in ours.watch.states()
            assert ka.current_state() == "MASTER"
            assert ka.complaints() == []
            # Control: we were listening all along; keepalived's priority 0 hands over at once.
            t0 = time.time()
            ka.signal(signal.SIGTERM)
            master = ours.watch.wait_state("MASTER", 5)
            assert master["_ts"] - t0 < 3 * variant.advert_int
            wait_sole_holder(lab, variant.vip, OURS, 10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_preempt_delay_matches_keepalived(lab: Lab, variant: Variant) -> None:
    # keepalived joins later with preempt_delay: time from its start-up to MASTER.
    with pykeepalived(lab, variant, LOW) as ours:
        ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
        with keepalived(lab, variant, HIGH, preempt_delay=PREEMPT_DELAY) as ka:
            ka.wait_log(r"\(VI_1\) Entering BACKUP STATE \(init\)", 5)
            t0 = time.monotonic()
            ka.wait_current("MASTER", timeout=PREEMPT_DELAY + _mdi(variant, HIGH) + SLACK + 2)
            theirs = time.monotonic() - t0
            ours.watch.wait_state("BACKUP", 2 * variant.master_down)
            wait_sole_holder(lab, variant.vip, THEIRS, 5)
    # pykeepalived joins later with preempt_delay: from its start-up state to MASTER.
    with keepalived(lab, variant, LOW) as ka:
        ka.wait_current("MASTER", timeout=3 * variant.master_down)
        with pykeepalived(lab, variant, HIGH, preempt_delay=PREEMPT_DELAY) as ours:
            backup = ours.watch.wait_state("BACKUP", 15)
            master = ours.watch.wait_state(
                "MASTER", PREEMPT_DELAY + _mdi(variant, HIGH) + SLACK + 2
            )
            ka.wait_current("BACKUP", timeout=2 * variant.master_down)
            wait_sole_holder(lab, variant.vip, OURS, 5)
            mine = master["_ts"] - backup["_ts"]
            log = ours.group.log_text()
    # keepalived starts the delay at the first lower-priority advert, not at start-up
    # ("start preempt delay" in its log): ours must count from the same moment.
    seen, expired = (
        log_times(log, "vrrpd.master.seen"),
        log_times(log, "vrrpd.preempt_delay.expired"),
    )
    assert seen and expired, "the delay was never started or never ran out"
    assert expired[0] - seen[0] == pytest.approx(PREEMPT_DELAY, abs=0.15)
    print(f"preempt_delay {PREEMPT_DELAY}: keepalived {theirs:.2f}s, pykeepalived {mine:.2f}s")
    upper = PREEMPT_DELAY + _mdi(variant, HIGH) + SLACK
    assert PREEMPT_DELAY <= theirs <= upper
    assert PREEMPT_DELAY <= mine <= upper
    assert abs(mine - theirs) <= variant.advert_int + 0.5
