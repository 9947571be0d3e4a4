"""Issue #4 (1): against real keepalived, the higher priority wins whichever side it is on."""

from __future__ import annotations

import time

import pytest

from tests.interop.peers import vip_holders, wait_sole_holder
from tests.interop.variants import OURS, THEIRS, VARIANTS, Variant, keepalived, pykeepalived
from tests.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.interop]

HIGH, LOW = 150, 100


def _stays(lab: Lab, vip: str, index: int, seconds: float) -> None:
    """The VIP stays on node ``index`` alone for ``seconds`` (no flapping after the election)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert vip_holders(lab, vip) == {index}
        time.sleep(0.05)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pykeepalived_with_higher_priority_wins(lab: Lab, variant: Variant) -> None:
    with keepalived(lab, variant, LOW) as ka, pykeepalived(lab, variant, HIGH) as ours:
        state = ours.watch.wait_state("MASTER", 15 + 3 * variant.master_down)
        assert state["priority"] == HIGH and state["version"] == variant.version
        wait_sole_holder(lab, variant.vip, OURS, 2 * variant.master_down)
        ka.wait_current("BACKUP", timeout=2 * variant.master_down)
        _stays(lab, variant.vip, OURS, variant.master_down)
        assert ours.watch.states()[-1] == "MASTER"
        assert ka.current_state() == "BACKUP"
        assert ka.complaints() == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_keepalived_with_higher_priority_wins(lab: Lab, variant: Variant) -> None:
    with keepalived(lab, variant, HIGH) as ka, pykeepalived(lab, variant, LOW) as ours:
        ka.wait_current("MASTER", timeout=3 * variant.master_down)
        ours.watch.wait_state("BACKUP", 15)
        wait_sole_holder(lab, variant.vip, THEIRS, 2 * variant.master_down)
        # Long enough for our down timer to have run out had we ignored its adverts.
        _stays(lab, variant.vip, THEIRS, variant.master_down)
        last = ours.watch.last
        assert last is not None and last["state"] == "BACKUP"
        assert "MASTER" not in ours.watch.states()
        assert ka.current_state() == "MASTER"
        assert ka.complaints() == []
