"""The LVS datapath's pure half: model validation, slot assignment and the planner (no kernel)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netd.errors import LvsConfigError
from netd.lvs import (
    Forwarding,
    Member,
    Persistence,
    Service,
    VirtualServer,
    assign_slots,
    notes,
    plan,
    slot_counts,
)
from netd.lvs.layout import (
    FLOW_TIMEOUT,
    Affinity,
    AffinitySet,
    Chain,
    DrForward,
    Drop,
    Element,
    IngressChain,
    Jump,
    Pick,
    Rule,
    SlotMap,
    dr_base,
    layout,
    members_of,
)
from netd.lvs.nft_support import refuse_unsupported
from netd.lvs.planner import Op
from netd.lvs.render import stmt_expressions

SVC = Service("198.51.100.1", "tcp", 80)
CH = "vs-tcp-198.51.100.1-80"
A, B, C = (Member(f"203.0.113.{i}", 8080, w) for i, w in ((10, 3), (11, 1), (12, 1)))


def _rs(m: Member) -> str:
    return f"{CH}-rs-{m.address}-{m.port}"


def _vs(*members: Member, **kw: object) -> VirtualServer:
    # the tests pass VirtualServer's own keywords; **kw: object cannot say which type each has
    return VirtualServer(SVC, kw.pop("scheduler", "wrr"), members=members, **kw)  # type: ignore[arg-type]


def _ops(ops: tuple[Op, ...]) -> list[str]:
    return [str(o) for o in ops]


# ---- slots --------------------------------------------------------------------------------------

_prev = st.dictionaries(st.integers(0, 12), st.sampled_from("abcd"), max_size=12)
_counts = st.dictionaries(st.sampled_from("abcd"), st.integers(1, 5), max_size=4)


@given(_prev, _counts)
def test_slots_keep_every_slot_that_can_stay(prev: dict[int, str], counts: dict[str, int]) -> None:
    out = assign_slots(prev, counts)
    total = sum(counts.values())
    assert sorted(out) == list(range(total))
    assert {r: list(out.values()).count(r) for r in counts} == counts
    # No assignment keeps more: a server keeps as many of its old in-range slots as it may.
    stable = sum(1 for s, r in out.items() if prev.get(s) == r)
    best = sum(
        min(n, sum(1 for s, r in prev.items() if r == rid and s < total))
        for rid, n in counts.items()
    )
    assert stable == best


def test_slot_counts_follow_weights_and_schedulers() -> None:
    a, b = f"rs-{A.address}-8080", f"rs-{B.address}-8080"
    assert slot_counts(_vs(A, B)) == {a: 3, b: 1}
    assert slot_counts(_vs(A, B, scheduler="rr")) == {a: 1, b: 1}  # rr ignores weights
    assert slot_counts(_vs(B, A, scheduler="fo")) == {a: 1}  # the highest weight only
    assert slot_counts(_vs(Member("203.0.113.10", 80, 0))) == {}
    big = _vs(Member("203.0.113.10", 80, 60000), Member("203.0.113.11", 80, 20000))
    assert slot_counts(big) == {"rs-203.0.113.10-80": 768, "rs-203.0.113.11-80": 256}


# ---- plans --------------------------------------------------------------------------------------


def test_first_plan_builds_everything_in_reference_order() -> None:
    p = plan({}, [_vs(A, B, persistence=Persistence(30, 24))])
    assert all(op.verb == "add" for op in p.ops)
    kinds = [type(op.obj) for op in p.ops]
    # sets and maps, then chains, then rules, then elements: nothing refers to what is not there
    order: list[set[type]] = [{AffinitySet, SlotMap}, {Chain}, {Rule}, {Element}]
    ranks = [next(i for i, group in enumerate(order) if k in group) for k in kinds]
    assert ranks == sorted(ranks)
    assert members_of(p.objects, CH) == [_rs(A)] * 3 + [_rs(B)]
    pick = p.objects[("rule", CH, "pick")]
    assert isinstance(pick, Rule) and pick.stmt == Pick("inc", 4, f"{CH}-slots", 4)


def test_same_desired_state_plans_nothing() -> None:
    p = plan({}, [_vs(A, B)])
    assert plan(p.objects, [_vs(A, B)]).ops == ()


def test_inhibiting_one_server_touches_only_its_slots_and_the_modulus() -> None:
    p = plan({}, [_vs(A, B, persistence=Persistence(30))])
    q = plan(p.objects, [_vs(A, Member(B.address, B.port, 0), persistence=Persistence(30))])
    assert _ops(q.ops) == [
        f"del element {CH}-slots[3] -> goto {_rs(B)}",
        f"del rule {CH}/pick",
        f"add rule {CH}/pick",
    ]
    # B keeps its chain, affinity set and affinity rule: established and sticky clients stay.
    assert ("chain", _rs(B)) in q.objects and ("set", f"{_rs(B)}-aff") in q.objects
    assert ("rule", f"{CH}-aff", f"rs-{B.address}-8080") in q.objects
    assert q.touched() == {CH, f"{CH}-slots", _rs(B)}


def test_a_server_leaving_moves_at_most_as_many_slots_as_it_frees() -> None:
    p = plan({}, [_vs(B, A, C)])  # slots: B 0, A 1-3, C 4
    q = plan(p.objects, [_vs(B, C)])  # A leaves: C's slot 4 moves into A's hole at 1
    assert members_of(q.objects, CH) == [_rs(B), _rs(C)]
    moved = [o for o in q.ops if isinstance(o.obj, Element) and o.obj.target == _rs(C)]
    assert len(moved) == 2  # del slot 4, add slot 1: C's share is unchanged
    assert _rs(B) not in q.touched()
    assert {str(o) for o in q.ops} >= {f"del chain {_rs(A)}", f"del rule {_rs(A)}/fwd"}


def test_removing_a_server_removes_its_persistence_too() -> None:
    per = Persistence(60, 24)
    p = plan({}, [_vs(A, B, persistence=per)])
    q = plan(p.objects, [_vs(A, persistence=per)])
    assert set(_ops(q.ops)) == {
        f"del element {CH}-slots[3] -> goto {_rs(B)}",
        f"del rule {CH}/pick",
        f"del rule {CH}-aff/rs-{B.address}-8080",
        f"del rule {_rs(B)}/fwd",
        f"del chain {_rs(B)}",
        f"del set {_rs(B)}-aff",
        f"add rule {CH}/pick",
    }


def test_quorum_loss_swaps_the_pool_for_the_sorry_server_and_back() -> None:
    sorry = Member("203.0.113.99", 8080)
    up = _vs(A, B, sorry=sorry)
    down = _vs(A, B, sorry=sorry, sorry_active=True)
    p = plan({}, [up])
    q = plan(p.objects, [down])
    sorry_chain = f"{CH}-sorry-203.0.113.99-8080"
    assert members_of(q.objects, CH) == [sorry_chain]
    assert f"add chain {sorry_chain}" in _ops(q.ops) and f"del chain {_rs(A)}" in _ops(q.ops)
    back = plan(q.objects, [up])
    assert members_of(back.objects, CH) == [_rs(A)] * 3 + [_rs(B)]
    assert f"del chain {sorry_chain}" in _ops(back.ops)


def test_no_server_with_weight_drops_new_connections() -> None:
    p = plan({}, [_vs(Member("203.0.113.10", 80, 0))])
    pick = p.objects[("rule", CH, "pick")]
    assert isinstance(pick, Rule) and pick.stmt == Drop()


def test_turning_persistence_on_puts_the_affinity_jump_before_the_pick() -> None:
    p = plan({}, [_vs(A)])
    q = plan(p.objects, [_vs(A, persistence=Persistence(10))])
    adds = [
        str(o) for o in q.ops if o.verb == "add" and isinstance(o.obj, Rule) and o.obj.chain == CH
    ]
    assert adds == [f"add rule {CH}/aff", f"add rule {CH}/pick"]  # appended in this order
    assert f"del rule {CH}/pick" in _ops(q.ops)


def test_one_service_changing_leaves_another_alone() -> None:
    other = VirtualServer(
        Service("198.51.100.2", "udp", 53), "sh", members=(Member("203.0.113.20"),)
    )
    p = plan({}, [_vs(A, B), other])
    q = plan(p.objects, [_vs(A), other])
    assert not any("198.51.100.2" in name for name in q.touched())


def test_schedulers_choose_how_a_slot_is_picked() -> None:
    for sched, how in (
        ("rr", "inc"),
        ("wrr", "inc"),
        ("sh", "jhash-saddr"),
        ("dh", "jhash-daddr"),
        ("wlc", "random"),
        ("lc", "random"),
    ):
        pick = plan({}, [_vs(A, scheduler=sched)]).objects[("rule", CH, "pick")]
        assert isinstance(pick, Rule) and isinstance(pick.stmt, Pick) and pick.stmt.how == how


def test_a_groups_services_share_one_chain() -> None:
    also = (Service("198.51.100.2", "tcp", 80), Service("198.51.100.1", "tcp", 81))
    objects = plan({}, [_vs(A, aliases=also)]).objects
    elems = [o for o in objects.values() if isinstance(o, Element) and o.map == "svc4"]
    assert sorted(e.label for e in elems) == [
        "198.51.100.1 . tcp . 80",
        "198.51.100.1 . tcp . 81",
        "198.51.100.2 . tcp . 80",
    ]
    assert {e.target for e in elems} == {CH}
    with pytest.raises(LvsConfigError, match=r"198\.51\.100\.2 \. tcp \. 80 is defined twice"):
        plan({}, [_vs(A, aliases=also), VirtualServer(also[0], "rr", members=(B,))])


def test_an_inhibited_sorry_server_keeps_its_chain_without_slots() -> None:
    sorry = Member("203.0.113.20", 8080)
    objects = plan({}, [_vs(A, sorry=sorry, sorry_inhibit=True)]).objects
    assert ("chain", f"{CH}-sorry-203.0.113.20-8080") in objects
    assert members_of(objects, CH) == [_rs(A)] * 3
    active = plan({}, [_vs(A, sorry=sorry, sorry_inhibit=True, sorry_active=True)]).objects
    assert members_of(active, CH) == [f"{CH}-sorry-203.0.113.20-8080"]


def test_fwmark_services_dispatch_on_the_mark() -> None:
    vs = VirtualServer(Service(fwmark=7, family=6), "rr", members=(Member("2001:db8::10"),))
    elems = [
        o for o in plan({}, [vs]).objects.values() if isinstance(o, Element) and o.map == "fwm6"
    ]
    assert [(e.key_bytes, e.target) for e in elems] == [(struct.pack("=I", 7), "vs-fwm6-7")]


def _dr_fwmark() -> VirtualServer:
    return VirtualServer(Service(fwmark=5), "rr", Forwarding.DR, members=(A,))


def test_dr_keeps_each_connection_on_its_server_through_a_flow_set() -> None:
    vs = _vs(A, B, forwarding=Forwarding.DR)
    objects = layout([vs], {}, {A.address: 3, B.address: 3})
    rs = _rs(A)
    assert objects[("set", f"{rs}-aff")] == AffinitySet(f"{rs}-aff", 4, FLOW_TIMEOUT, flow=True)
    aff = objects[("rule", f"{CH}-aff", f"rs-{A.address}-8080")]
    assert isinstance(aff, Rule) and aff.stmt == Affinity(4, 32, f"{rs}-aff", rs, flow=True)
    fwd = objects[("rule", rs, "fwd")]
    assert isinstance(fwd, Rule) and fwd.stmt == DrForward(4, A.address, 3, f"{rs}-aff", 32, True)
    assert objects[("rule", CH, "aff")] == Rule(CH, "aff", 0, Jump(f"{CH}-aff"))
    names = [dict(e["attrs"])["NFTA_EXPR_NAME"] for e in stmt_expressions(fwd.stmt)]
    assert names == ["payload", "payload", "dynset", "immediate", "immediate", "fwd"]


def test_dr_with_persistence_keys_its_sets_on_the_masked_client_address() -> None:
    vs = _vs(A, forwarding=Forwarding.DR, persistence=Persistence(30, 24))
    rs = _rs(A)
    objects = layout([vs], {}, {A.address: 3})
    assert objects[("set", f"{rs}-aff")] == AffinitySet(f"{rs}-aff", 4, 30, flow=False)


def test_dr_ingress_chains_one_per_interface() -> None:
    base = dr_base(["out", "in", "out"])
    assert [o for o in base.values() if isinstance(o, IngressChain)] == [
        IngressChain("ingress-in", "in"),
        IngressChain("ingress-out", "out"),
    ]
    assert base[("rule", "ingress-out", "dispatch")] == Rule(
        "ingress-out", "dispatch", 0, Jump("dispatch")
    )


def test_granularity_is_a_source_mask() -> None:
    p = plan({}, [_vs(A, persistence=Persistence(30, 24))])
    rule = p.objects[("rule", f"{CH}-aff", f"rs-{A.address}-8080")]
    assert isinstance(rule, Rule)
    exprs = stmt_expressions(rule.stmt)
    names = [dict(e["attrs"])["NFTA_EXPR_NAME"] for e in exprs]
    assert names == ["payload", "bitwise", "lookup", "immediate"]
    mask = dict(dict(exprs[1]["attrs"])["NFTA_EXPR_DATA"]["attrs"])["NFTA_BITWISE_MASK"]
    assert mask == {"attrs": [("NFTA_DATA_VALUE", b"\xff\xff\xff\x00")]}


def test_notes_say_where_nftables_differs_from_ipvs() -> None:
    assert notes(_vs(A)) == []
    said = notes(_vs(A, scheduler="wlc", persistence=Persistence(30)))
    assert len(said) == 2
    assert "lvs_sched wlc needs connection counts" in said[0]
    assert "from the client's last new connection" in said[1]
    assert "not Maglev" in notes(_vs(A, scheduler="mh"))[0]


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: refuse_unsupported(_vs(A, forwarding=Forwarding.TUN)),
            "lvs_method TUN is not supported",
        ),
        (lambda: plan({}, [_vs(A, forwarding=Forwarding.TUN)]), "lvs_method TUN is not supported"),
        (
            lambda: layout([_dr_fwmark()], {}, {}),
            "lvs_method DR with a fwmark service is not implemented",
        ),
        (lambda: layout([_vs(A, forwarding=Forwarding.DR)], {}, {}), "no route to real server"),
        (
            lambda: _vs(Member("2001:db8::1")),
            "real server 2001:db8::1 is IPv6, the service is IPv4",
        ),
        (lambda: _vs(A, A), "real server 203.0.113.10 listed twice"),
        (lambda: _vs(A, scheduler="bogus"), "unknown lvs_sched 'bogus'"),
        (
            lambda: refuse_unsupported(
                VirtualServer(Service("198.51.100.1", "tcp", 0), persistence=Persistence())
            ),
            "port 0 services",
        ),
        (lambda: Service("198.51.100.1", "tcp", 65536), "port 65536"),
        (lambda: Service("198.51.100.1", "icmp", 1), "protocol 'icmp'"),
        (lambda: Member("203.0.113.1", 80, 70000), "weight 70000"),
        (lambda: _vs(A, persistence=Persistence(30, 33)), "persistence_granularity /33"),
        (lambda: plan({}, [_vs(A), _vs(B)]), "defined twice"),
    ],
)
def test_bad_virtual_servers_are_refused_clearly(build: object, message: str) -> None:
    with pytest.raises(LvsConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        build()  # type: ignore[operator]  # parametrized as object: each case is a callable


def test_the_model_takes_every_forwarding_method_and_nftables_refuses_its_own() -> None:
    # IPVS forwards DR and TUN: only the nftables datapath refuses them, per virtual server
    for method in Forwarding:
        vs = _vs(A, forwarding=method)
        assert vs.forwarding is method
    refuse_unsupported(_vs(A))  # NAT: fine
