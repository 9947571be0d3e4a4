"""Pure reconciliation: ordering, ownership, idempotence (no kernel)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netd import (
    Action,
    Address,
    DesiredSet,
    Item,
    ItemKey,
    Operation,
    Route,
    Rule,
    item_key,
    merge,
    plan,
    satisfies,
)


def simulate(observed: dict[ItemKey, Item], owned: set[ItemKey], ops: list[Operation]) -> None:
    """A toy kernel: apply ops to a key->item view, tracking what netd owns."""
    for op in ops:
        key = item_key(op.item)
        if op.action is Action.DELETE:
            observed.pop(key, None)
            owned.discard(key)
        else:
            observed[key] = op.item
            owned.add(key)


VIP = Address("192.0.2.100", 32, "eth0")
OPERATOR = Address("192.0.2.250", 32, "eth0")


def test_nothing_to_do_when_kernel_matches() -> None:
    assert plan([VIP], [VIP], {item_key(VIP)}) == []


def test_missing_item_is_added() -> None:
    assert plan([VIP], [], set()) == [Operation(Action.ADD, VIP)]


def test_foreign_items_are_never_deleted() -> None:
    assert plan([], [OPERATOR], set()) == []
    assert plan([], [VIP, OPERATOR], {item_key(VIP)}) == [Operation(Action.DELETE, VIP)]


def test_changed_attributes_replace_with_old_item() -> None:
    labelled = Address("192.0.2.100", 32, "eth0", label="eth0:x")
    assert plan([labelled], [VIP], set()) == [Operation(Action.REPLACE, labelled, VIP)]


def test_none_means_kernel_default_is_fine() -> None:
    # The kernel fills in the device and scope of a gateway route.
    desired = Route("198.51.100.0/24", via="192.0.2.1")
    observed = Route("198.51.100.0/24", via="192.0.2.1", dev="eth0", scope=0)
    assert satisfies(desired, observed)
    assert not satisfies(Route("198.51.100.0/24", via="192.0.2.2"), observed)


def test_order_addresses_routes_rules_then_deletes_in_reverse() -> None:
    old_vip = Address("192.0.2.99", 32, "eth0")
    old_dev_route = Route("203.0.113.0/24", dev="eth0")
    old_gw_route = Route("198.51.100.0/24", via="203.0.113.1")
    old_rule = Rule(priority=10, table=5)
    new_vip = Address("192.0.2.100", 32, "eth0")
    gw_route = Route("198.51.101.0/24", via="192.0.2.1", src="192.0.2.100")
    dev_route = Route("192.0.2.128/25", dev="eth0")
    new_rule = Rule(priority=11, table=6)
    observed: list[Item] = [old_vip, old_dev_route, old_gw_route, old_rule]
    ops = plan(
        [new_rule, gw_route, dev_route, new_vip],
        observed,
        {item_key(i) for i in observed},
    )
    assert [(op.action, op.item) for op in ops] == [
        (Action.ADD, new_vip),
        (Action.ADD, dev_route),
        (Action.ADD, gw_route),
        (Action.ADD, new_rule),
        (Action.DELETE, old_rule),
        (Action.DELETE, old_gw_route),
        (Action.DELETE, old_dev_route),
        (Action.DELETE, old_vip),
    ]


def test_address_deletes_run_in_reverse_kernel_order() -> None:
    # The kernel lists the primary first; removing it first would flush the secondaries.
    primary = Address("198.51.100.1", 24, "eth0")
    secondary = Address("198.51.100.2", 24, "eth0")
    ops = plan([], [primary, secondary], {item_key(primary), item_key(secondary)})
    assert [op.item for op in ops] == [secondary, primary]


def test_merge_shares_identical_items_and_reports_conflicts() -> None:
    a = DesiredSet("vrrp:VI_1", 1, (VIP,))
    b = DesiredSet("vrrp:VI_2", 4, (VIP, Address("192.0.2.101", 32, "eth0")))
    clash = DesiredSet("static", 1, (Address("192.0.2.100", 32, "eth0", label="eth0:s"),))
    shared = merge([a, b])
    assert len(shared.items) == 2 and not shared.conflicts
    assert shared.owners[item_key(VIP)] == ("vrrp:VI_1", "vrrp:VI_2")
    merged = merge([a, b, clash])
    # "static" sorts first and keeps the key; deterministic whatever the input order.
    assert merged.owners[item_key(VIP)] == ("static",)
    assert [(c.kept_owner, c.dropped_owner) for c in merged.conflicts] == [
        ("static", "vrrp:VI_1"),
        ("static", "vrrp:VI_2"),
    ]
    assert merge([clash, b, a]).items == merged.items


hosts = st.integers(min_value=1, max_value=40)
addresses = st.builds(
    Address,
    ip=hosts.map(lambda h: f"192.0.2.{h}"),
    prefix=st.sampled_from([24, 32]),
    dev=st.sampled_from(["eth0", "eth1"]),
    label=st.sampled_from([None, "eth0:a", "eth0:b"]),
)
routes = st.builds(
    Route,
    dst=hosts.map(lambda h: f"198.51.100.{h * 4}/30"),
    via=st.sampled_from(["192.0.2.1", "192.0.2.2"]),
    table=st.sampled_from([254, 100]),
    metric=st.sampled_from([None, 10]),
)
rules = st.builds(
    Rule,
    priority=st.integers(min_value=1, max_value=20),
    table=st.sampled_from([100, 101]),
    src=st.sampled_from([None, "192.0.2.0/24"]),
)
items = st.lists(st.one_of(addresses, routes, rules), max_size=25)


@given(desired=items, ours=items, foreign=items)
def test_plan_converges_in_one_step_and_spares_foreign_items(
    desired: list[Item], ours: list[Item], foreign: list[Item]
) -> None:
    observed: dict[ItemKey, Item] = {}
    owned: set[ItemKey] = set()
    for item in foreign:
        observed.setdefault(item_key(item), item)
    for item in ours:
        if item_key(item) not in observed:
            observed[item_key(item)] = item
            owned.add(item_key(item))
    foreign_left = {k: v for k, v in observed.items() if k not in owned}
    ops = plan(desired, list(observed.values()), owned)
    simulate(observed, owned, ops)
    # Converged: a second plan is empty (idempotence).
    assert plan(desired, list(observed.values()), owned) == []
    want = {item_key(i): i for i in reversed(desired)}
    for key, item in want.items():
        assert satisfies(item, observed[key])
    # Nothing foreign was deleted unless a desired item took its key.
    for key in foreign_left:
        assert key in observed
    # Every op that deletes names an item we owned.
    assert all(op.action is not Action.DELETE or item_key(op.item) not in want for op in ops)
