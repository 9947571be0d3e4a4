"""garp_extra_if without a kernel: which interfaces get the periodic GARP/NA (keepalived's
vrrp_send_vmac_update), the intent fields, and the scheduler's timing on a fake clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus import MessageRejected
from bus.messages import Intent
from netd.announce import AnnounceScheduler, Target
from netd.desired import Address, Item, Route
from netd.vmacintent import ExtraIf, extra_if_targets, vmac_specs

MACS = {
    "eth0": "02:00:00:00:00:01",
    "eth1": "02:00:00:00:00:02",
    "vrrp.51": "00:00:5e:00:01:33",
    "vrrp1.51": "00:00:5e:00:01:33",
}
VMACS = {"vrrp.51", "vrrp1.51"}

ITEMS: list[Item] = [
    Address("192.0.2.10", 24, "vrrp.51"),  # the instance's own VMAC
    Address("198.51.100.10", 24, "vrrp1.51"),  # a use_vmac_addr VMAC
    Address("198.51.100.11", 24, "vrrp1.51"),  # same interface: not twice
    Address("203.0.113.10", 24, "eth1"),  # a plain interface
    Route("203.0.113.0/24", dev="eth1"),
]


def ifaces(targets: list[Target]) -> list[tuple[str, str]]:
    return [(t.ifname, t.ip) for t in targets]


def test_vmacs_other_than_the_own_one_first_address_each() -> None:
    extra = ExtraIf(10.0, all_if=False, own="vrrp.51", xmit_base=False)
    assert ifaces(extra_if_targets(extra, ITEMS, VMACS, MACS)) == [("vrrp1.51", "198.51.100.10")]
    assert extra_if_targets(extra, ITEMS, VMACS, MACS)[0].mac == "00:00:5e:00:01:33"


def test_all_adds_plain_interfaces() -> None:
    extra = ExtraIf(10.0, all_if=True, own="vrrp.51", xmit_base=False)
    assert ifaces(extra_if_targets(extra, ITEMS, VMACS, MACS)) == [
        ("vrrp1.51", "198.51.100.10"),
        ("eth1", "203.0.113.10"),
    ]


def test_xmit_base_announces_on_the_own_vmac_too() -> None:
    """With vmac_xmit_base the adverts leave from the base: the VMAC needs GARPs itself."""
    extra = ExtraIf(10.0, all_if=False, own="vrrp.51", xmit_base=True)
    assert ifaces(extra_if_targets(extra, ITEMS, VMACS, MACS)) == [
        ("vrrp.51", "192.0.2.10"),
        ("vrrp1.51", "198.51.100.10"),
    ]


def _intent(**fields: object) -> Intent:
    return Intent.decode(
        "vrrp.intent.VI_1",
        {
            "instance": "VI_1",
            "generation": 1,
            "items": [],
            "lease": 3,
            "interface": "eth0",
            **fields,
        },
    )


def test_from_intent_names_the_own_interface() -> None:
    assert ExtraIf.from_intent(_intent()) is None
    assert ExtraIf.from_intent(_intent(garp_extra_if={"interval": 2, "all": True})) == ExtraIf(
        2.0, True, "eth0", False
    )
    vmac = {"name": "vrrp.51", "base": "eth0", "vrid": 51, "family": 4, "xmit_base": True}
    with_vmac = _intent(vmac=vmac, garp_extra_if={"interval": 2})
    assert ExtraIf.from_intent(with_vmac) == ExtraIf(2.0, False, "vrrp.51", True)
    with pytest.raises(ValueError):
        ExtraIf.from_intent(_intent(garp_extra_if={"interval": 0}))


def test_vmac_specs_own_first_then_addr_vmacs() -> None:
    own = {"name": "vrrp.51", "base": "eth0", "vrid": 51, "family": 4}
    extra = {"name": "vrrp1.51", "base": "eth1", "vrid": 51, "family": 4, "always": False}
    specs = vmac_specs(_intent(vmac=own, addr_vmacs=[extra]))
    assert [(s.name, s.base, s.always) for s in specs] == [
        ("vrrp.51", "eth0", True),
        ("vrrp1.51", "eth1", False),
    ]
    assert vmac_specs(_intent(vmac=None)) == ()
    with pytest.raises(MessageRejected, match="'addr_vmacs'"):
        _intent(addr_vmacs="vrrp1.51")


T1 = Target("vrrp1.51", "198.51.100.10", "00:00:5e:00:01:33")
T2 = Target("eth1", "203.0.113.10", "02:00:00:00:00:02")


@given(interval=st.floats(0.5, 100), start=st.floats(0, 1e6), periods=st.integers(1, 20))
def test_every_sends_one_per_target_per_interval(
    interval: float, start: float, periods: int
) -> None:
    sched = AnnounceScheduler()
    sched.every("vrrp:VI_1", start, interval, [T1, T2])
    sent: list[tuple[float, str]] = []
    now = start
    # Drive it like the event loop: wake at next_due, send what is due.
    while True:
        nxt = sched.next_due()
        assert nxt is not None
        if nxt > start + periods * interval + interval / 2:
            break
        now = max(now, nxt)
        sent += [(p.at, p.target.ifname) for p in sched.due(now)]
    assert len(sent) == 2 * periods
    times = sorted({at for at, _ in sent})
    assert times[0] == pytest.approx(start + interval)
    assert all(b - a == pytest.approx(interval) for a, b in itertools.pairwise(times))
    assert sched.periodic("vrrp:VI_1") == (interval, (T1, T2))


def test_every_stops_with_the_owner_and_replaces_itself() -> None:
    sched = AnnounceScheduler()
    sched.every("vrrp:VI_1", 0.0, 1.0, [T1])
    sched.every("vrrp:VI_1", 0.0, 3.0, [T2])  # the targets changed: one set, re-armed
    assert sched.next_due() == 3.0
    assert [p.target for p in sched.due(3.0)] == [T2]
    sched.stop("vrrp:VI_1")
    assert sched.next_due() is None and sched.periodic("vrrp:VI_1") is None
    sched.every("vrrp:VI_1", 0.0, 1.0, [])
    assert sched.periodic("vrrp:VI_1") is None
