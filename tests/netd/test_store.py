"""DesiredStore: generations, boots and leases with a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netd import Address, DesiredSet
from netd.store import DesiredStore

VIP1 = Address("192.0.2.100", 32, "eth0")
VIP2 = Address("192.0.2.101", 32, "eth0")


def test_newer_generation_replaces_and_stale_is_refused() -> None:
    store = DesiredStore()
    assert store.offer(DesiredSet("vrrp:VI_1", 2, (VIP1,)), 0.0).changed
    stale = store.offer(DesiredSet("vrrp:VI_1", 1, (VIP2,)), 0.0)
    assert not stale.accepted and "stale" in stale.reason
    same = store.offer(DesiredSet("vrrp:VI_1", 2, (VIP1,)), 0.0)
    assert same.accepted and not same.changed  # a periodic republish
    assert store.offer(DesiredSet("vrrp:VI_1", 3, ()), 0.0).changed
    assert store.merged().items == ()


def test_a_restarted_sender_may_start_generations_again() -> None:
    store = DesiredStore()
    store.offer(DesiredSet("vrrp:VI_1", 40, (VIP1,)), 0.0, boot="a")
    assert not store.offer(DesiredSet("vrrp:VI_1", 0, (VIP2,)), 0.0, boot="a").accepted
    assert store.offer(DesiredSet("vrrp:VI_1", 0, (VIP2,)), 0.0, boot="b").accepted
    assert store.merged().items == (VIP2,)


def test_lease_lapses_without_refresh_and_refresh_extends_it() -> None:
    store = DesiredStore()
    store.offer(DesiredSet("vrrp:VI_1", 1, (VIP1,), lease=3.0), 10.0)
    store.offer(DesiredSet("static", 1, (VIP2,)), 10.0)  # no lease: kept until replaced
    assert store.next_expiry() == 13.0
    store.offer(DesiredSet("vrrp:VI_1", 1, (VIP1,), lease=3.0), 12.0)
    assert store.expire(14.9) == []
    assert store.expire(15.0) == ["vrrp:VI_1"]
    assert store.merged().items == (VIP2,)
    assert store.next_expiry() is None and store.owners() == ["static"]


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=30))
def test_held_generation_never_goes_backwards_within_a_boot(offers: list[tuple[int, bool]]) -> None:
    store = DesiredStore()
    best = -1
    for gen, with_vip in offers:
        store.offer(DesiredSet("o", gen, (VIP1,) if with_vip else ()), 0.0, boot="x")
        best = max(best, gen)
        assert store.generation("o") == best


def test_renewal_extends_only_the_same_generation_from_the_same_boot() -> None:
    store = DesiredStore()
    store.offer(DesiredSet("vrrp:VI_1", 3, (VIP1,), lease=1.0), 10.0, boot="a")
    assert not store.renew("vrrp:VI_1", 4, "a", 1.0, 10.5)  # a generation we never got
    assert not store.renew("vrrp:VI_1", 3, "b", 1.0, 10.5)  # another vrrpd start
    assert not store.renew("vrrp:VI_2", 3, "a", 1.0, 10.5)  # an owner we do not hold
    assert store.next_expiry() == 11.0
    assert store.renew("vrrp:VI_1", 3, "a", 1.0, 10.8)
    assert store.expire(11.5) == []
    assert store.expire(11.8) == ["vrrp:VI_1"]
    assert not store.renew("vrrp:VI_1", 3, "a", 1.0, 11.9)  # lapsed: nothing to revive


def test_renewal_never_gives_a_lease_to_a_set_held_without_one() -> None:
    store = DesiredStore()
    store.offer(DesiredSet("static", 1, (VIP2,)), 0.0, boot="a")
    assert not store.renew("static", 1, "a", 1.0, 0.0)
    assert store.next_expiry() is None


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from("ab")), max_size=20))
def test_a_lost_full_intent_is_never_papered_over_by_renewals(
    renewals: list[tuple[int, str]],
) -> None:
    """Whatever renewals arrive, only ones naming the held (generation, boot) extend it."""
    store = DesiredStore()
    store.offer(DesiredSet("o", 1, (VIP1,), lease=1.0), 0.0, boot="a")
    expires = 1.0
    for step, (gen, boot) in enumerate(renewals, start=1):
        now = step * 0.01
        assert store.renew("o", gen, boot, 1.0, now) == ((gen, boot) == (1, "a"))
        if (gen, boot) == (1, "a"):
            expires = now + 1.0
        assert store.next_expiry() == expires


OPS = st.lists(
    st.tuples(
        st.sampled_from(["offer", "lease", "renew", "drop", "expire"]),
        st.sampled_from(["a", "b", "c"]),
        st.floats(0.0, 2.0, allow_nan=False),
    ),
    max_size=40,
)


@given(OPS)
def test_expire_drops_exactly_the_lapsed_leases(ops: list[tuple[str, str, float]]) -> None:
    """However offers, renewals, drops and expiries interleave, expire() returns what a full
    scan of the leases would (it skips the scan while no lease can have run out)."""
    store = DesiredStore()
    model: dict[str, float | None] = {}  # owner -> expiry (None: no lease)
    now = 0.0
    for op, owner, value in ops:
        now += 0.05
        if op == "offer":
            store.offer(DesiredSet(owner, 1, (VIP1,)), now, boot="x")
            model[owner] = None
        elif op == "lease":
            store.offer(DesiredSet(owner, 1, (VIP1,), lease=value + 0.01), now, boot="x")
            model[owner] = now + value + 0.01
        elif op == "renew":
            if store.renew(owner, 1, "x", value + 0.01, now):
                model[owner] = now + value + 0.01
        elif op == "drop":
            store.drop(owner)
            model.pop(owner, None)
        else:
            now += value
            lapsed = sorted(o for o, e in model.items() if e is not None and e <= now)
            assert sorted(store.expire(now)) == lapsed
            for o in lapsed:
                del model[o]
        assert store.owners() == sorted(model)
