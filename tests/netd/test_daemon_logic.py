"""netd's process logic without a kernel: GARP requests across restarts, VMAC specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus import MessageRejected
from bus.messages import Renew, Vmac
from netd.daemon import parse_renewal
from netd.owners import Announce, wants_burst
from netd.vmacintent import VmacSpec


@given(st.lists(st.integers(0, 6), max_size=30).map(sorted))
def test_within_one_vrrpd_a_burst_per_counter_step(counters: list[int]) -> None:
    """vrrpd's counter only grows; periodic republishes repeat it. One burst per step."""
    previous: Announce | None = Announce("a", 0)
    bursts = 0
    for c in counters:
        bursts += wants_burst(previous, "a", c)
        previous = Announce("a", c)
    assert bursts == len({c for c in counters if c > 0})


def test_a_restarted_vrrpd_is_heard_although_its_counter_starts_again() -> None:
    old = Announce("old-boot", 7)
    assert wants_burst(old, "new-boot", 1)
    assert not wants_burst(old, "old-boot", 7)  # a periodic republish


def test_a_restarted_netd_announces_what_a_master_holds_once() -> None:
    assert wants_burst(None, "a", 3)
    assert not wants_burst(None, "a", 0)  # vrrpd never asked for one


def test_vmac_spec_from_intent() -> None:
    vmac = Vmac("eth0", "vrrp.51", 51, 4, mac="00:00:5E:00:01:33")
    spec = VmacSpec.from_intent(vmac)
    assert spec == VmacSpec("vrrp.51", "eth0", 51, 4, "00:00:5e:00:01:33", True)
    with pytest.raises(ValueError):
        VmacSpec.from_intent(Vmac("eth0", "x", 1, 5))


def test_renewal_message_is_parsed_whole_or_refused() -> None:
    def renewal(leases: object) -> Renew:
        return Renew.decode("vrrp.renew", {"leases": leases})

    assert parse_renewal(renewal({"VI_1": [3, 1.0], "VI_2": [0, 2]})) == {
        "VI_1": (3, 1.0),
        "VI_2": (0, 2.0),
    }
    assert parse_renewal(renewal({})) == {}
    for bad in (
        [1, 2],
        {"VI_1": 3},
        {"VI_1": [3]},
        {"VI_1": ["3", 1.0]},
        {"VI_1": [True, 1.0]},
        {"VI_1": [3, False]},
    ):
        with pytest.raises(MessageRejected, match="'leases"):
            renewal(bad)
    with pytest.raises(ValueError):
        parse_renewal(renewal({"VI_1": [3, -1.0]}))
