"""netd.leases without a kernel or a loop: a fake clock drives renewals, the bus hold, the
start-up grace, and when the daemon must wake up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netd.desired import Address, DesiredSet
from netd.leases import BUS_SILENT_AFTER, HOLD_AFTER_BUS, RESTART_GRACE, Lapse, Leases
from netd.owners import LEFTOVER
from netd.store import DesiredStore

VIP = Address("192.0.2.100", 32, "eth0")
OWNER = "vrrp:VI_1"


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def leases_at(clock: Clock) -> Leases:
    return Leases(DesiredStore(), clock)


def run_to(leases: Leases, clock: Clock, until: float, hb: float | None = 0.25) -> list[Lapse]:
    """Advance to ``until`` as the daemon does: a heartbeat every ``hb`` s (None: the bus is
    silent), and :meth:`Leases.due` exactly when :meth:`Leases.next_wakeup` says. Returns
    what lapsed (see :func:`lapsed_at` for when)."""
    return [lapse for _, lapse in lapsed_at(leases, clock, until, hb)]


def lapsed_at(
    leases: Leases, clock: Clock, until: float, hb: float | None = 0.25
) -> list[tuple[float, Lapse]]:
    lapses = []
    # heartbeats on a grid of their own, whatever the steps of the caller
    next_hb = None if hb is None else (math.floor(clock.now / hb) + 1) * hb
    while True:
        wake = leases.next_wakeup()
        step = min(t for t in (wake, next_hb, until) if t is not None)
        clock.now = step
        if next_hb is not None and step == next_hb:
            leases.bus_heard()
            next_hb = step + hb if hb is not None else None
        if wake is not None and step >= wake:
            lapse = leases.due()
            if lapse != Lapse():
                lapses.append((step, lapse))
        if step >= until:
            return lapses


# ---- renewals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "boot", "owner", "extended"),
    [
        (3, "a", OWNER, True),  # exactly what is held
        (4, "a", OWNER, False),  # a generation netd never got (the full intent was lost)
        (2, "a", OWNER, False),  # an older one
        (3, "b", OWNER, False),  # another vrrpd start
        (3, "a", "vrrp:VI_2", False),  # an owner not held
    ],
)
def test_renewal_extends_only_the_exact_generation_from_the_same_boot(
    generation: int, boot: str, owner: str, extended: bool
) -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.offer(DesiredSet(OWNER, 3, (VIP,), lease=1.0), boot="a")
    clock.now += 0.8
    renewed = leases.renew(boot, {owner: (generation, 1.0)})
    assert renewed == ([owner] if extended else [])
    assert leases.next_wakeup() == pytest.approx(clock.now + 1.0 if extended else 101.0)


def test_a_static_set_never_gains_a_lease_by_renewal() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.offer(DesiredSet("static", 1, (VIP,)), boot="core")
    leases.end_grace()
    assert leases.renew("core", {"static": (1, 1.0)}) == []
    assert leases.next_wakeup() is None


# ---- expiry ------------------------------------------------------------------------------


@given(lease=st.floats(0.1, 10.0), early=st.floats(0.001, 0.09))
def test_a_lease_runs_out_exactly_at_its_end(lease: float, early: float) -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.end_grace()
    leases.offer(DesiredSet(OWNER, 1, (VIP,), lease=lease), boot="a")
    end = clock.now + lease
    assert leases.next_wakeup() == end
    assert run_to(leases, clock, end - early) == []
    assert leases.due() == Lapse()  # even asked before its time
    assert run_to(leases, clock, end + 1) == [Lapse(expired=(OWNER,))]
    assert leases.store.owners() == [] and leases.next_wakeup() is None


def test_owners_run_out_in_the_order_of_their_lease_ends() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.end_grace()
    for i, lease in enumerate((1.5, 0.5, 1.0)):
        leases.offer(DesiredSet(f"vrrp:VI_{i}", 1, (VIP,), lease=lease), boot="a")
    lapses = run_to(leases, clock, clock.now + 2.0)
    assert [lapse.expired for lapse in lapses] == [("vrrp:VI_1",), ("vrrp:VI_2",), ("vrrp:VI_0",)]


# ---- a silent bus --------------------------------------------------------------------------


def test_leases_are_held_while_the_bus_is_silent_and_a_while_after() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.end_grace()
    leases.offer(DesiredSet(OWNER, 1, (VIP,), lease=1.0), boot="a")
    # The bus stops right away: at the lease end it has been silent for 1 s.
    lapses = run_to(leases, clock, 105.0, hb=None)
    assert all(lapse.expired == () for lapse in lapses)
    assert [round(lapse.bus_silent_for or 0, 3) for lapse in lapses] == [1.0]  # said once
    # The bus is back at 105: the lapsed lease is kept HOLD_AFTER_BUS for republishes.
    leases.bus_heard()
    assert leases.next_wakeup() == 105.0 + HOLD_AFTER_BUS
    lapses = run_to(leases, clock, 105.0 + HOLD_AFTER_BUS)
    assert [lapse.expired for lapse in lapses] == [(OWNER,)]


def test_a_renewal_after_the_silence_keeps_the_lease() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.end_grace()
    leases.offer(DesiredSet(OWNER, 1, (VIP,), lease=1.0), boot="a")
    run_to(leases, clock, 103.0, hb=None)
    leases.bus_heard()
    clock.now += 0.1
    assert leases.renew("a", {OWNER: (1, 1.0)}) == [OWNER]
    assert run_to(leases, clock, clock.now + 0.9) == []
    assert leases.store.owners() == [OWNER]


def test_a_short_gap_is_no_silence() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.end_grace()
    leases.offer(DesiredSet(OWNER, 1, (VIP,), lease=2.0), boot="a")
    clock.now += BUS_SILENT_AFTER  # a gap of exactly the limit
    leases.bus_heard()
    assert leases.next_wakeup() == 102.0  # no hold
    assert [lapse.expired for lapse in run_to(leases, clock, 102.0)] == [(OWNER,)]


# ---- the start-up grace --------------------------------------------------------------------


def test_leftovers_are_held_for_the_grace_after_start() -> None:
    clock = Clock()
    leases = leases_at(clock)
    clock.now += 0.1  # reading the kernel took a while
    leases.offer_leftovers([VIP])
    lapses = run_to(leases, clock, 100.0 + RESTART_GRACE + 1)
    assert lapses == [
        Lapse(grace_ended=True),  # RESTART_GRACE after start
        Lapse(expired=(LEFTOVER,)),  # the leftovers' own lease, from when they were found
    ]
    assert leases.grace_over and leases.next_wakeup() is None


def test_the_grace_ends_once_every_configured_instance_has_spoken() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.offer_leftovers([VIP])
    leases.expect(frozenset({"vrrp:VI_1", "vrrp:VI_2"}))
    leases.heard_from("vrrp:VI_1")
    assert not leases.all_claimed()
    leases.heard_from("vrrp:VI_2")
    assert leases.all_claimed()
    assert leases.end_grace() == (True, True)  # it was running; the leftovers are dropped
    assert leases.end_grace() == (False, False)
    assert leases.store.owners() == [] and leases.next_wakeup() is None


def test_without_a_config_the_grace_only_ends_by_time() -> None:
    clock = Clock()
    leases = leases_at(clock)
    leases.heard_from("vrrp:VI_1")
    assert not leases.all_claimed()
    assert run_to(leases, clock, 100.0 + RESTART_GRACE) == [Lapse(grace_ended=True)]


# ---- what expires when, whatever happens -------------------------------------------------

Step = tuple[str, float, int]  # (what, seconds later, generation)
steps = st.lists(
    st.tuples(
        st.sampled_from(["offer", "renew", "renew-other-boot", "wait"]),
        st.floats(0.0, 1.5),
        st.integers(0, 2),
    ),
    max_size=25,
)


@given(steps)
def test_with_a_working_bus_each_lease_runs_out_at_its_end_and_not_before(
    script: list[Step],
) -> None:
    """The daemon only wakes when next_wakeup says: no expiry may be missed or late."""
    clock = Clock()
    leases = leases_at(clock)
    leases.end_grace()
    end: float | None = None  # the model: when the held lease ends
    held_gen = -1
    for what, later, generation in script:
        for at, lapse in lapsed_at(leases, clock, clock.now + later, hb=0.25):
            assert lapse.expired == (OWNER,)
            assert end is not None and at == pytest.approx(end)
            end, held_gen = None, -1
        if end is not None and clock.now >= end:  # due exactly at this step
            assert leases.due().expired == (OWNER,)
            end, held_gen = None, -1
        if what == "offer" and (end is None or generation >= held_gen):
            leases.offer(DesiredSet(OWNER, generation, (VIP,), lease=1.0), boot="a")
            end, held_gen = clock.now + 1.0, generation
        elif what.startswith("renew"):
            boot = "a" if what == "renew" else "b"
            renewed = leases.renew(boot, {OWNER: (generation, 1.0)})
            if renewed:
                assert end is not None and boot == "a" and generation == held_gen
                end = clock.now + 1.0
            else:
                assert end is None or boot != "a" or generation != held_gen
        assert leases.next_wakeup() == (None if end is None else pytest.approx(end))
