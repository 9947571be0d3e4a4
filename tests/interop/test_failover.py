"""Issue #4 (2): when either master dies, the VIP moves to the other side.

* pykeepalived master, ``kill -9`` of the watchdog: the components follow their parent
  (PR_SET_PDEATHSIG -> SIGTERM), so this is an orderly stop: priority 0 on the wire and the
  VIP removed; keepalived takes over within its skew time.
* pykeepalived master, ``kill -9`` of every process of the group at once (a real crash): nobody
  is left to send priority 0 or remove the VIP; keepalived takes over after its
  Master_Down_Interval. The stale VIP stays on our node until pykeepalived starts again, and
  the restarted group removes it (DESIGN: "addresses this daemon installed earlier are found
  and removed") while keepalived stays master.
* keepalived master, SIGTERM: it sends priority 0 and we take over within our skew time.
* keepalived master, SIGKILL: we take over after our Master_Down_Interval.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.interop.peers import vip_holders, wait_sole_holder
from tests.interop.variants import (
    OURS,
    THEIRS,
    VARIANTS,
    Variant,
    keepalived,
    pykeepalived,
    variant_of,
)
from tests.lab import Lab, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop]

HIGH, LOW = 150, 100
# Children of the group, most kernel-facing first, so none can act on its parent's death.
KILL_ORDER = ("vrrpd", "netd", "core", "checkd", "bus", "watchdog")


def _skew(variant: Variant, priority: int) -> float:
    return (256 - priority) / 256 * variant.advert_int


def _mdi(variant: Variant, priority: int) -> float:
    return 3 * variant.advert_int + _skew(variant, priority)


# Python start-up, log polling and netlink round trips on a loaded CI box.
SLACK = 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_killed_watchdog_hands_over_with_priority_zero(lab: Lab, variant: Variant) -> None:
    with keepalived(lab, variant, LOW) as ka, pykeepalived(lab, variant, HIGH) as ours:
        ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
        ka.wait_current("BACKUP", timeout=2 * variant.master_down)
        wait_sole_holder(lab, variant.vip, OURS, 2 * variant.master_down)
        mark = ka.mark()
        t0 = time.monotonic()
        os.kill(ours.group.pids()["watchdog"], signal.SIGKILL)
        ka.wait_log(r"Backup received priority 0 advertisement", 2 * variant.master_down, mark)
        ka.wait_current("MASTER", timeout=2 * variant.master_down)
        took = time.monotonic() - t0
        wait_sole_holder(lab, variant.vip, THEIRS, 5)
        wait_until(lambda: not ours.group.pids(), 10, message="every component to exit")
        # Priority 0 means keepalived waits only its skew time, far less than its MDI.
        assert took < _skew(variant, LOW) + SLACK, f"takeover took {took:.2f}s"
        assert ka.complaints() == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_crashed_group_is_replaced_and_its_vip_cleaned_on_restart(
    lab: Lab, variant: Variant
) -> None:
    with keepalived(lab, variant, LOW) as ka:
        with pykeepalived(lab, variant, HIGH) as ours:
            ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
            ka.wait_current("BACKUP", timeout=2 * variant.master_down)
            wait_sole_holder(lab, variant.vip, OURS, 2 * variant.master_down)
            pids = ours.group.pids()
            mark = ka.mark()
            t0 = time.monotonic()
            for name in KILL_ORDER:
                if name in pids:  # checkd runs only when the config has checks
                    os.kill(pids[name], signal.SIGKILL)
            ka.wait_current("MASTER", timeout=_mdi(variant, LOW) + SLACK + 2)
            took = time.monotonic() - t0
            assert "priority 0" not in ka.log_text()[mark:]
            # Detection needs the full Master_Down_Interval: adverts stopped, no priority 0.
            assert _mdi(variant, LOW) - variant.advert_int <= took
            assert took <= _mdi(variant, LOW) + SLACK
            wait_until(lambda: THEIRS in vip_holders(lab, variant.vip), 5, message="their VIP")
            # Nobody was left to remove ours: the kernel still has it (what kill -9 means).
            assert OURS in vip_holders(lab, variant.vip)
        # Restarted (as a backup this time), the group finds its leftover and removes it.
        with pykeepalived(lab, variant, LOW) as ours:
            ours.watch.wait_state("BACKUP", 15)
            wait_sole_holder(lab, variant.vip, THEIRS, 10)
            assert ka.current_state() == "MASTER"
            assert "MASTER" not in ours.watch.states()
        assert ka.complaints() == []


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_keepalived_master_stopped_we_take_over(lab: Lab, variant: Variant, sig: int) -> None:
    with keepalived(lab, variant, HIGH) as ka, pykeepalived(lab, variant, LOW) as ours:
        ka.wait_current("MASTER", timeout=3 * variant.master_down)
        ours.watch.wait_state("BACKUP", 15)
        wait_sole_holder(lab, variant.vip, THEIRS, 2 * variant.master_down)
        t0 = time.time()
        if sig == signal.SIGTERM:
            ka.signal(sig)
        else:
            ka.kill()
        master = ours.watch.wait_state("MASTER", _mdi(variant, LOW) + SLACK + 2)
        took = master["_ts"] - t0
        wait_until(lambda: OURS in vip_holders(lab, variant.vip), 5, message="our VIP")
        if sig == signal.SIGTERM:
            assert took < _skew(variant, LOW) + SLACK, f"takeover took {took:.2f}s"
            assert ka.proc is not None
            ka.proc.wait(10)
            wait_sole_holder(lab, variant.vip, OURS, 5)
        else:
            assert _mdi(variant, LOW) - variant.advert_int <= took <= _mdi(variant, LOW) + SLACK
            # keepalived killed -9 leaves its VIP behind too: that is keepalived's behaviour.
            assert vip_holders(lab, variant.vip) == {OURS, THEIRS}


LEASE_SLACK = 0.25  # netd.leases.LEASE_SLACK
HEARTBEAT_TIMEOUT = 3.5  # watchdog.supervisor.HEARTBEAT_TIMEOUT


@pytest.mark.parametrize("variant", [v for v in VARIANTS if variant_of(v).version == 3])
def test_hung_vrrpd_loses_its_vip_by_lease_and_comes_back(lab: Lab, variant: Variant) -> None:
    """DESIGN: netd keeps VIPs only for a lease, so a stuck vrrpd cannot hold a VIP the peer
    has taken. Needs lease < heartbeat timeout, so v3 intervals only (v2's MDI is ~3.4 s)."""
    with keepalived(lab, variant, LOW) as ka, pykeepalived(lab, variant, HIGH) as ours:
        ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
        ka.wait_current("BACKUP", timeout=2 * variant.master_down)
        wait_sole_holder(lab, variant.vip, OURS, 5)
        vrrpd = ours.group.pids()["vrrpd"]
        lease = max(1.0, _mdi(variant, HIGH)) + LEASE_SLACK
        mark = ours.watch.mark()
        t0 = time.monotonic()
        os.kill(vrrpd, signal.SIGSTOP)  # alive, sockets open, but silent: no adverts, no renewals
        try:
            ka.wait_current("MASTER", timeout=_mdi(variant, LOW) + SLACK)
            wait_sole_holder(lab, variant.vip, THEIRS, lease + SLACK)
            assert time.monotonic() - t0 < HEARTBEAT_TIMEOUT, "too slow to tell lease from restart"
            # The watchdog notices the silence, replaces vrrpd, and the new one (priority 150)
            # preempts keepalived again.
            wait_until(
                lambda: ours.group.pids().get("vrrpd") not in (None, vrrpd),
                HEARTBEAT_TIMEOUT + 10,
                message="a new vrrpd",
            )
            ours.watch.wait_state("MASTER", 15, since=mark)
            ka.wait_current("BACKUP", timeout=2 * variant.master_down)
            wait_sole_holder(lab, variant.vip, OURS, 5)
        finally:
            with contextlib.suppress(OSError):
                if "vrrpd" in Path(f"/proc/{vrrpd}/cmdline").read_text():
                    os.kill(vrrpd, signal.SIGKILL)
