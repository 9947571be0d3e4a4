"""The pool: quorum, hysteresis, sorry server, inhibit, omega, weights, reload (docs/checkers.md).

Each expectation is keepalived's ipwrapper behaviour: the FIFO lines, mail subjects and bodies
are the exact texts keepalived writes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkd.checkplan import VirtualServerPlan, plan_virtual_server
from checkd.pool import (
    Transition,
    _apply_on_copy,
    apply_event,
    leaves_unchanged,
    reload_pool,
    remove_pool,
    start_pool,
)
from checkd.pool_messages import (
    Action,
    CheckerVerdict,
    CheckerWeight,
    FifoLine,
    LogEvent,
    Mail,
    ProbeResult,
    RunScript,
    Shutdown,
    file_check_weight,
    misc_dynamic_weight,
)
from checkd.pool_state import PoolState
from core.model import Checker, GlobalDefs, HostPort, RealServer, Script, Url, VirtualServer

VS = "[192.0.2.1]:tcp:80"


def rs_text(i: int) -> str:
    return f"[198.51.100.{i}]:tcp:80"


def rs_id(i: int) -> str:
    return f"{VS} {rs_text(i)}"


def chk(i: int, n: int = 0, kind: str = "TCP_CHECK") -> str:
    return f"{rs_id(i)} {kind}#{n}"


def make_vs(
    weights: tuple[int, ...] = (1, 1),
    checkers: int = 1,
    rs_kw: dict[str, Any] | None = None,
    **vs_kw: Any,
) -> VirtualServer:
    rss = tuple(
        RealServer(
            ip=f"198.51.100.{i + 1}",
            port=80,
            weight=w,
            notify_up=Script(f"/up {i + 1}"),
            notify_down=Script(f"/down {i + 1}"),
            checkers=tuple(Checker("TCP_CHECK") for _ in range(checkers)),
            **(rs_kw or {}),
        )
        for i, w in enumerate(weights)
    )
    base: dict[str, Any] = {
        "quorum_up": Script("/qup"),
        "quorum_down": Script("/qdown"),
        "smtp_alert": True,
    }
    base.update(vs_kw)
    return VirtualServer(
        name="192.0.2.1 80", ip="192.0.2.1", port=80, protocol="TCP", real_servers=rss, **base
    )


def plan(vs: VirtualServer) -> VirtualServerPlan:
    return plan_virtual_server(vs, GlobalDefs())


def start(vs: VirtualServer, **kw: Any) -> Transition:
    return start_pool(plan(vs), router_id="lb1", **kw)


def notices(t: Transition) -> list[Action]:
    """Everything but log events, which are not part of keepalived's contract."""
    return [a for a in t.actions if not isinstance(a, LogEvent)]


def fifo(t: Transition) -> list[str]:
    return [a.text for a in t.actions if isinstance(a, FifoLine)]


def verdicts(state: PoolState, *events: tuple[int, bool]) -> Transition:
    t = Transition(state, ())
    for i, up in events:
        t = apply_event(
            t.state,
            CheckerVerdict(
                chk(i), up, "=> TCP CHECK %s on service <=" % ("succeed" if up else "failed")
            ),
        )
    return t


def live(state: PoolState) -> dict[str, int | None]:
    return {m.id.split(" ")[1]: m.pool_weight for m in state.snapshot().members}


# --- start -----------------------------------------------------------------------------------


def test_start_with_healthy_servers_reports_quorum_up_once() -> None:
    t = start(make_vs())
    assert t.state.quorum_up and all(m.alive for m in t.state.members)
    assert notices(t) == [
        RunScript(Script("/qup"), "quorum_up", VS),
        FifoLine(f"VS {VS} UP\n"),
        Mail(
            f"[lb1] Virtualserver {VS} - UP", "=> Starting with quorum up 1+0=1 <= 2 <=", f"VS {VS}"
        ),
    ]


def test_start_all_alpha_with_sorry_server_puts_the_sorry_server_in() -> None:
    t = start(make_vs(alpha=True, sorry_server=HostPort("203.0.113.9")))
    snap = t.state.snapshot()
    assert not snap.quorum_up and snap.sorry_active and snap.sorry_weight == 1
    assert all(m.pool_weight is None for m in snap.members)
    assert notices(t) == [
        RunScript(Script("/qdown"), "quorum_down", VS),
        FifoLine(f"VS {VS} DOWN\n"),
        Mail(
            f"[lb1] Virtualserver {VS} - DOWN",
            "=> Starting with quorum down 1+0=1 <= 0 <=",
            f"VS {VS}",
        ),
    ]


def test_start_all_alpha_without_sorry_server_says_nothing() -> None:
    t = start(make_vs(alpha=True))
    assert not t.state.quorum_up and notices(t) == []


def test_sorry_server_inhibit_sits_at_weight_zero_while_quorum_holds() -> None:
    t = start(make_vs(sorry_server=HostPort("203.0.113.9"), sorry_server_inhibit=True))
    snap = t.state.snapshot()
    assert (snap.sorry_server, snap.sorry_active, snap.sorry_weight) == (
        "[203.0.113.9]:tcp:80",
        False,
        0,
    )


# --- real server transitions -------------------------------------------------------------------


def test_rs_down_and_up_notify_script_fifo_and_mail() -> None:
    s = start(make_vs()).state
    down = verdicts(s, (1, False))
    assert notices(down) == [
        RunScript(Script("/down 1"), "notify_down", rs_id(1)),
        FifoLine(f"RS {rs_text(1)} {VS} DOWN\n"),
        Mail(
            f"[lb1] Realserver {rs_text(1)} of virtual server {VS} - DOWN",
            "=> TCP CHECK failed on service <=",
            f"RS {rs_id(1)}",
        ),
    ]
    up = verdicts(down.state, (1, True))
    assert fifo(up) == [f"RS {rs_text(1)} {VS} UP\n"]
    assert notices(up)[0] == RunScript(Script("/up 1"), "notify_up", rs_id(1))


def test_rs_is_up_only_when_all_its_checkers_are() -> None:
    s = start(make_vs(weights=(1,), checkers=2)).state
    t = apply_event(s, CheckerVerdict(chk(1, 0), False))
    assert not t.state.member(rs_id(1)).alive
    t = apply_event(t.state, CheckerVerdict(chk(1, 1), False))
    assert fifo(t) == []  # already down: the second failure changes nothing in the pool
    t = apply_event(t.state, CheckerVerdict(chk(1, 0), True))
    assert not t.state.member(rs_id(1)).alive and fifo(t) == []
    t = apply_event(t.state, CheckerVerdict(chk(1, 1), True))
    assert t.state.member(rs_id(1)).alive
    assert fifo(t) == [f"RS {rs_text(1)} {VS} UP\n", f"VS {VS} UP\n"]


@pytest.mark.parametrize("no_checker_emails", [False, True])
def test_checker_mail_without_rs_change_depends_on_no_checker_emails(
    no_checker_emails: bool,
) -> None:
    s = start(make_vs(weights=(1,), checkers=2), no_checker_emails=no_checker_emails).state
    s = apply_event(s, CheckerVerdict(chk(1, 0), False, "first")).state
    t = apply_event(s, CheckerVerdict(chk(1, 1), False, "second"))
    assert [a.body for a in t.actions if isinstance(a, Mail)] == (
        [] if no_checker_emails else ["second"]
    )


def test_rs_smtp_alert_off_sends_no_checker_mail() -> None:
    s = start(make_vs(rs_kw={"smtp_alert": False})).state
    assert not [a for a in verdicts(s, (1, False)).actions if isinstance(a, Mail)]


def test_alpha_first_failure_notifies_down_without_a_transition() -> None:
    s = start(make_vs(alpha=True)).state
    t = apply_event(s, ProbeResult(chk(1), False))
    assert fifo(t) == [f"RS {rs_text(1)} {VS} DOWN\n"]
    assert not [a for a in t.actions if isinstance(a, Mail)]


def test_non_alpha_first_success_is_silent() -> None:
    s = start(make_vs()).state
    assert notices(apply_event(s, ProbeResult(chk(1), True, mail="x"))) == []


def test_probe_results_count_retries_in_the_pool() -> None:
    s = start(make_vs(weights=(1,), rs_kw={"retry": 2, "delay_before_retry": 3.0})).state
    s = apply_event(s, ProbeResult(chk(1), True)).state
    t1 = apply_event(s, ProbeResult(chk(1), False))
    t2 = apply_event(t1.state, ProbeResult(chk(1), False))
    t3 = apply_event(t2.state, ProbeResult(chk(1), False))
    assert [t.delay for t in (t1, t2, t3)] == [3.0, 3.0, 60.0]
    assert [t.state.member(rs_id(1)).alive for t in (t1, t2, t3)] == [True, True, False]


def test_inhibit_keeps_a_dead_server_at_weight_zero() -> None:
    s = start(make_vs(inhibit_on_failure=True)).state
    t = verdicts(s, (1, False))
    assert live(t.state) == {rs_text(1): 0, rs_text(2): 1}
    assert any(
        isinstance(a, LogEvent) and a.message == f"Disabling service {rs_text(1)} of VS {VS}"
        for a in t.actions
    )


def test_without_inhibit_a_dead_server_leaves() -> None:
    s = start(make_vs()).state
    assert live(verdicts(s, (1, False)).state) == {rs_text(1): None, rs_text(2): 1}


# --- quorum, hysteresis and the sorry server -----------------------------------------------------


def reference_quorum(up: bool, weight: int, quorum: int, hysteresis: int) -> bool:
    if not up and weight >= quorum + hysteresis:
        return True
    if up and (weight == 0 or weight < quorum - hysteresis):
        return False
    return up


@settings(max_examples=150, deadline=None)
@given(
    weights=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    quorum=st.integers(1, 12),
    hysteresis=st.integers(0, 6),
    sorry=st.booleans(),
    inhibit=st.booleans(),
    flips=st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=25),
)
def test_quorum_follows_the_hysteresis_band(
    weights: list[int],
    quorum: int,
    hysteresis: int,
    sorry: bool,
    inhibit: bool,
    flips: list[tuple[int, bool]],
) -> None:
    extra: dict[str, Any] = {"inhibit_on_failure": inhibit}
    if sorry:
        extra["sorry_server"] = HostPort("203.0.113.9")
    vs = make_vs(tuple(weights), quorum=quorum, hysteresis=hysteresis, **extra)
    t = start(vs)
    q, h = t.state.vs.quorum, t.state.vs.hysteresis
    up = t.state.quorum_up
    # keepalived takes the quorum as up before adding servers when q + h is 0, then loses it
    # at once if the pool weighs nothing.
    assert up == (sum(weights) > 0 and sum(weights) >= q + h)
    for pick, alive in flips:
        n = pick % len(weights) + 1
        before, was_alive = up, t.state.member(rs_id(n)).alive
        t = verdicts(t.state, (n, alive))
        if t.state.member(rs_id(n)).alive != was_alive:  # only transitions re-weigh
            up = reference_quorum(before, t.state.live_weight, q, h)
        snap = t.state.snapshot()
        assert snap.quorum_up == up
        # A quorum change is announced exactly once, on the FIFO and to the script.
        vs_lines = [x for x in fifo(t) if x.startswith("VS ")]
        assert vs_lines == ([f"VS {VS} {'UP' if up else 'DOWN'}\n"] if up != before else [])
        # The sorry server is in the pool exactly while the quorum is lost.
        assert snap.sorry_active == (sorry and not up)
        for m in snap.members:
            serving = m.alive and not snap.sorry_active
            assert m.pool_weight == (m.effective_weight if serving else 0 if inhibit else None)


@pytest.mark.parametrize(
    ("weights", "quorum", "hysteresis", "downs", "lost_at", "ups", "gained_at"),
    [
        # quorum 3, hysteresis 1: lost below 2, gained back at 4
        ((1, 1, 1, 1), 3, 1, [1, 2, 3], 3, [1, 2, 3], 3),
        ((1, 1, 1, 1), 3, 0, [1, 2, 3], 2, [1, 2, 3], 2),
        ((2, 2), 2, 1, [1, 2], 2, [1, 2], 2),  # lost only at 0 (< 1), back at 3 means both
        ((1, 1), 1, 0, [1, 2], 2, [1, 2], 1),
    ],
)
def test_hysteresis_rows(
    weights: tuple[int, ...],
    quorum: int,
    hysteresis: int,
    downs: list[int],
    lost_at: int,
    ups: list[int],
    gained_at: int,
) -> None:
    s = start(make_vs(weights, quorum=quorum, hysteresis=hysteresis)).state
    for n, i in enumerate(downs, 1):
        s = verdicts(s, (i, False)).state
        assert s.quorum_up == (n < lost_at), f"after {n} down"
    for n, i in enumerate(ups, 1):
        s = verdicts(s, (i, True)).state
        assert s.quorum_up == (n >= gained_at), f"after {n} up"


def test_lost_and_gained_quorum_mail_bodies() -> None:
    s = start(make_vs((1, 1, 1), quorum=2, hysteresis=1)).state
    t = verdicts(s, (1, False), (2, False), (3, False))
    mails = [a for a in t.actions if isinstance(a, Mail) and "Virtualserver" in a.subject]
    assert mails == [
        Mail(f"[lb1] Virtualserver {VS} - DOWN", "=> Lost quorum 2+1=1 <= 0 <=", f"VS {VS}")
    ]
    t = verdicts(t.state, (1, True), (2, True), (3, True))
    mails = [a for a in t.actions if isinstance(a, Mail) and "Virtualserver" in a.subject]
    assert mails == [
        Mail(f"[lb1] Virtualserver {VS} - UP", "=> Gained quorum 2+1=3 <= 3 <=", f"VS {VS}")
    ]


def test_sorry_server_replaces_and_restores_the_pool() -> None:
    s = start(make_vs((1, 1), quorum=2, sorry_server=HostPort("203.0.113.9"))).state
    t = verdicts(s, (1, False))
    snap = t.state.snapshot()
    assert snap.sorry_active and live(t.state) == {rs_text(1): None, rs_text(2): None}
    # While the sorry server serves, real server changes only change state.
    t = verdicts(t.state, (2, False))
    assert t.state.snapshot().sorry_active
    t = verdicts(t.state, (1, True), (2, True))
    snap = t.state.snapshot()
    assert not snap.sorry_active and snap.sorry_weight is None
    assert live(t.state) == {rs_text(1): 1, rs_text(2): 1}


def test_sorry_with_inhibited_real_servers_keeps_them_at_zero() -> None:
    vs = make_vs((1, 1), quorum=2, sorry_server=HostPort("203.0.113.9"), inhibit_on_failure=True)
    t = verdicts(start(vs).state, (1, False))
    assert live(t.state) == {rs_text(1): 0, rs_text(2): 0}


# --- weights -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, CheckerWeight("c", 0)),
        (1, None),
        (2, CheckerWeight("c", 0, absolute=True)),
        (7, CheckerWeight("c", 5, absolute=True)),
        (255, CheckerWeight("c", 253, absolute=True)),
        (256, None),
    ],
)
def test_misc_dynamic_weight(status: int, expected: CheckerWeight | None) -> None:
    assert misc_dynamic_weight("c", status) == expected


def test_misc_dynamic_weight_survives_a_weight_change_on_reload() -> None:
    vs = make_vs((2, 2), quorum=1)
    s = apply_event(start(vs).state, CheckerWeight(chk(1), 7, absolute=True)).state
    assert live(s)[rs_text(1)] == 7
    changed = replace(vs, real_servers=(replace(vs.real_servers[0], weight=5), vs.real_servers[1]))
    t = reload_pool(s, plan(changed))
    assert live(t.state)[rs_text(1)] == 7  # still the script's answer
    t = apply_event(t.state, CheckerWeight(chk(1), 0))  # exit 0: back to the configured weight
    assert live(t.state)[rs_text(1)] == 5


def test_reload_weight_change_is_logged_and_applied() -> None:
    vs = make_vs((2, 2))
    s = start(vs).state
    changed = replace(vs, real_servers=(replace(vs.real_servers[0], weight=5), vs.real_servers[1]))
    t = reload_pool(s, plan(changed))
    assert live(t.state)[rs_text(1)] == 5
    assert [a.message for a in t.actions if isinstance(a, LogEvent)] == [
        f"Changing weight from 2 to 5 for active service {rs_text(1)} of VS {VS}"
    ]


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "expected"),
    [
        (0, 0, False, 0),
        (3, 0, False, None),
        (3, 2, False, 6),
        (3, 2, True, -6),
        (-(2**30), 2, False, None),
        (2**40, 1, False, 2**31 - 1),
    ],
)
def test_file_check_weight(value: int, weight: int, reverse: bool, expected: int | None) -> None:
    assert file_check_weight(value, weight, reverse) == expected


def test_checker_weight_changes_effective_weight_and_quorum() -> None:
    s = start(make_vs((2, 2), quorum=4)).state
    t = apply_event(s, CheckerWeight(chk(1), -2))  # misc_dynamic exit 2 on a weight-2 server
    assert live(t.state) == {rs_text(1): 0, rs_text(2): 2}
    assert not t.state.quorum_up and fifo(t) == [f"VS {VS} DOWN\n"]
    assert any(
        isinstance(a, LogEvent)
        and a.message == f"Changing weight from 2 to 0 for active service {rs_text(1)} of VS {VS}"
        for a in t.actions
    )
    t = apply_event(t.state, CheckerWeight(chk(1), 0))
    assert t.state.quorum_up and live(t.state)[rs_text(1)] == 2


def test_negative_effective_weight_is_clamped_to_zero() -> None:
    s = start(make_vs((1,))).state
    t = apply_event(s, CheckerWeight(chk(1), -10))
    assert t.state.snapshot().members[0].effective_weight == 0


# --- shutdown and omega --------------------------------------------------------------------------


def test_shutdown_with_omega_runs_down_notifiers() -> None:
    s = start(make_vs((1,), omega=True)).state
    t = apply_event(s, Shutdown())
    assert notices(t) == [
        RunScript(Script("/down 1"), "notify_down", rs_id(1), stopping=True),
        FifoLine(f"RS {rs_text(1)} {VS} DOWN\n"),
        Mail(
            f"[lb1] Realserver {rs_text(1)} of virtual server {VS} - DOWN",
            "=> Shutting down <=",
            f"RS {rs_id(1)}",
        ),
        RunScript(Script("/qdown"), "quorum_down", VS, stopping=True),
        FifoLine(f"VS {VS} DOWN\n"),
        Mail(f"[lb1] Virtualserver {VS} - DOWN", "=> Shutting down <=", f"VS {VS}"),
    ]
    assert not t.state.quorum_up and not any(m.alive for m in t.state.members)


def test_shutdown_without_omega_is_silent() -> None:
    t = apply_event(start(make_vs()).state, Shutdown())
    assert notices(t) == []
    assert [a.message for a in t.actions if isinstance(a, LogEvent)] == [
        f"Shutting down service {rs_text(1)} from VS {VS}",
        f"Shutting down service {rs_text(2)} from VS {VS}",
    ]


def test_shutdown_skips_servers_out_of_the_pool() -> None:
    s = verdicts(start(make_vs((1, 1), omega=True)).state, (1, False)).state
    t = apply_event(s, Shutdown())
    assert [x for x in fifo(t) if x.startswith("RS")] == [f"RS {rs_text(2)} {VS} DOWN\n"]


def test_snapshot_as_dict_is_plain() -> None:
    d = start(make_vs()).state.snapshot().as_dict()
    assert d["vs"] == VS and d["members"][0] == {
        "id": rs_id(1),
        "ip": "198.51.100.1",
        "port": 80,
        "alive": True,
        "weight": 1,
        "effective_weight": 1,
        "pool_weight": 1,
    }


# --- reload --------------------------------------------------------------------------------------


def test_reload_unchanged_keeps_everything_and_says_nothing() -> None:
    vs = make_vs((1, 1, 1))
    s = verdicts(start(vs).state, (2, False)).state
    t = reload_pool(s, plan(vs))
    assert notices(t) == []
    assert [m.alive for m in t.state.members] == [True, False, True]
    assert t.state.member(rs_id(2)).checkers[chk(2)].retry.is_up is False


def test_reload_timing_change_keeps_checker_state() -> None:
    vs = make_vs((1, 1))
    s = verdicts(start(vs).state, (1, False)).state
    t = reload_pool(s, plan(replace(vs, retry=5, delay_loop=10.0)))
    assert not t.state.member(rs_id(1)).alive and notices(t) == []
    assert t.state.member(rs_id(1)).checkers[chk(1)].retry.retry_it == 6


def test_reload_keeps_a_down_http_get_down_and_starts_its_url_walk_afresh() -> None:
    """keepalived migrates an HTTP_GET whose urls are unchanged (compare_http_check, which
    ignores ``fast_recovery``) but starts its walk from the first url with no failed url."""
    walker = Checker("HTTP_GET", urls=(Url(path="/a"), Url(path="/b")))
    vs = make_vs((1, 1))
    vs = replace(vs, real_servers=tuple(replace(r, checkers=(walker,)) for r in vs.real_servers))
    http = chk(1, kind="HTTP_GET")
    s = apply_event(start(vs).state, ProbeResult(http, True)).state  # /a passed
    s = apply_event(s, ProbeResult(http, False)).state  # /b fails: down at once
    retry = s.member(rs_id(1)).checkers[http].retry
    assert (retry.is_up, retry.url, retry.failed_url) == (False, 1, 1)
    faster = replace(walker, fast_recovery=True)
    vs2 = replace(
        vs, real_servers=(replace(vs.real_servers[0], checkers=(faster,)), *vs.real_servers[1:])
    )
    t = reload_pool(s, plan(vs2))
    assert not t.state.member(rs_id(1)).alive and notices(t) == []
    retry = t.state.member(rs_id(1)).checkers[http].retry
    assert (retry.is_up, retry.has_run, retry.url, retry.failed_url) == (False, True, 0, None)


def test_reload_probe_change_resets_the_checker_and_brings_the_server_up() -> None:
    vs = make_vs((1, 1))
    s = verdicts(start(vs).state, (1, False)).state
    changed = replace(
        vs,
        real_servers=(
            replace(vs.real_servers[0], checkers=(Checker("TCP_CHECK", connect_port=81),)),
            vs.real_servers[1],
        ),
    )
    t = reload_pool(s, plan(changed))
    assert t.state.member(rs_id(1)).alive
    assert fifo(t) == [f"RS {rs_text(1)} {VS} UP\n"]


def test_reload_adds_new_servers_as_at_start() -> None:
    vs = make_vs((1,))
    s = start(vs).state
    new_rs = (
        replace(vs.real_servers[0], ip="198.51.100.2"),
        replace(vs.real_servers[0], ip="198.51.100.3", alpha=True),
    )
    t = reload_pool(s, plan(replace(vs, real_servers=(*vs.real_servers, *new_rs))))
    assert [m.alive for m in t.state.members] == [True, True, False]
    assert notices(t) == []  # a new server joins silently; an alpha one waits for a success


def test_reload_removes_gone_servers_with_notifications() -> None:
    vs = make_vs((1, 1), quorum=2)
    s = start(vs).state
    t = reload_pool(s, plan(replace(vs, real_servers=vs.real_servers[:1], quorum=1)))
    assert notices(t)[:3] == [
        RunScript(Script("/down 2"), "notify_down", rs_id(2)),
        FifoLine(f"RS {rs_text(2)} {VS} DOWN\n"),
        Mail(
            f"[lb1] Realserver {rs_text(2)} of virtual server {VS} - DOWN",
            "=> Removing <=",
            f"RS {rs_id(2)}",
        ),
    ]
    assert [m.rs.id for m in t.state.members] == [rs_id(1)]
    assert t.state.quorum_up


def test_reload_quorum_change_is_applied() -> None:
    vs = make_vs((1, 1, 1), quorum=1)
    s = verdicts(start(vs).state, (1, False)).state
    t = reload_pool(s, plan(replace(vs, quorum=3)))
    assert not t.state.quorum_up and fifo(t) == [f"VS {VS} DOWN\n"]


def test_reload_dropping_the_sorry_server_restores_the_pool() -> None:
    vs = make_vs((1, 1), quorum=2, sorry_server=HostPort("203.0.113.9"))
    s = verdicts(start(vs).state, (1, False)).state
    assert s.sorry_active
    t = reload_pool(s, plan(replace(vs, sorry_server=None, quorum=1)))
    assert not t.state.sorry_active and live(t.state)[rs_text(2)] == 1


def test_reload_keeps_an_unchanged_active_sorry_server() -> None:
    vs = make_vs((1, 1), quorum=2, sorry_server=HostPort("203.0.113.9"))
    s = verdicts(start(vs).state, (1, False)).state
    t = reload_pool(s, plan(vs))
    assert t.state.sorry_active and notices(t) == []


def test_remove_pool_takes_every_server_down() -> None:
    t = remove_pool(start(make_vs((1, 1))).state)
    assert fifo(t) == [
        f"RS {rs_text(1)} {VS} DOWN\n",
        f"RS {rs_text(2)} {VS} DOWN\n",
        f"VS {VS} DOWN\n",
    ]


def test_reload_new_checker_on_a_healthy_server_gets_its_retries() -> None:
    vs = make_vs((1,), rs_kw={"retry": 1})
    s = start(vs).state
    two = replace(
        vs,
        real_servers=(
            replace(vs.real_servers[0], checkers=(Checker("TCP_CHECK"), Checker("PING_CHECK"))),
        ),
    )
    t = reload_pool(s, plan(two))
    ping = chk(1, 0, "PING_CHECK")
    t = apply_event(t.state, ProbeResult(ping, False))
    assert t.state.member(rs_id(1)).alive and t.delay == 1.0  # a retry, not DOWN at once
    t = apply_event(t.state, ProbeResult(ping, False))
    assert not t.state.member(rs_id(1)).alive


def test_reload_new_alpha_checker_on_a_failed_server_counts_as_down() -> None:
    vs = make_vs((1,))
    s = verdicts(start(vs).state, (1, False)).state
    two = replace(
        vs,
        real_servers=(
            replace(
                vs.real_servers[0],
                checkers=(Checker("TCP_CHECK"), Checker("PING_CHECK", alpha=True)),
            ),
        ),
    )
    t = reload_pool(s, plan(two))
    m = t.state.member(rs_id(1))
    assert not m.alive and m.failed == 2
    t = apply_event(t.state, CheckerVerdict(chk(1), True))
    assert not t.state.member(rs_id(1)).alive  # the alpha checker still has to succeed
    t = apply_event(t.state, ProbeResult(chk(1, 0, "PING_CHECK"), True))
    assert t.state.member(rs_id(1)).alive


@pytest.mark.parametrize(
    ("vs_kw", "rs_line", "vs_line"),
    [
        (
            {"ip": "192.0.2.1", "port": 443, "protocol": "TCP"},
            "RS [198.51.100.1]:tcp:443 [192.0.2.1]:tcp:443 DOWN\n",
            "VS [192.0.2.1]:tcp:443 DOWN\n",
        ),
        (
            {"ip": "192.0.2.1", "port": 53, "protocol": "UDP"},
            "RS [198.51.100.1]:udp:53 [192.0.2.1]:udp:53 DOWN\n",
            "VS [192.0.2.1]:udp:53 DOWN\n",
        ),
        (
            {"fwmark": 7, "lvs_method": "DR"},
            "RS [198.51.100.1]:none:0 FWM 7 DOWN\n",
            "VS FWM 7 DOWN\n",
        ),
        (
            {"ip": "2001:db8::1", "port": 80, "protocol": "TCP"},
            "RS [198.51.100.1]:tcp:80 [2001:db8::1]:tcp:80 DOWN\n",
            "VS [2001:db8::1]:tcp:80 DOWN\n",
        ),
    ],
)
def test_fifo_lines_for_each_kind_of_virtual_server(
    vs_kw: dict[str, Any], rs_line: str, vs_line: str
) -> None:
    rs = RealServer(ip="198.51.100.1", checkers=(Checker("TCP_CHECK"),))
    vs = VirtualServer(name="x", real_servers=(rs,), **vs_kw)
    p = plan(vs)
    s = start_pool(p, router_id="lb1").state
    t = apply_event(s, CheckerVerdict(p.real_servers[0].checkers[0].id, False))
    assert fifo(t) == [rs_line, vs_line]


def test_fifo_lines_for_a_group_member() -> None:
    from checkd.checkplan import build_plan
    from core.model import Config, VirtualServerGroup, VsgEntry

    rs = RealServer(ip="198.51.100.1", port=80, checkers=(Checker("TCP_CHECK"),))
    cfg = Config(
        virtual_server_groups=(VirtualServerGroup("web", (VsgEntry("192.0.2.1-3", 80),)),),
        virtual_servers=(
            VirtualServer(name="group web", group="web", protocol="TCP", real_servers=(rs,)),
        ),
    )
    p = build_plan(cfg, hostname="lb1").virtual_servers[0]
    s = start_pool(p, router_id="lb1").state
    t = apply_event(s, CheckerVerdict(p.real_servers[0].checkers[0].id, False))
    assert fifo(t) == ["RS [198.51.100.1]:tcp:80 [web]:0 DOWN\n", "VS [web]:0 DOWN\n"]


@settings(max_examples=80, deadline=None)
@given(
    # A pool weighing 0 has quorum 0, which keepalived gains and loses at every look.
    weights=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    checkers=st.integers(1, 3),
    alpha=st.booleans(),
    sorry=st.booleans(),
    events=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans()), max_size=20),
)
def test_reload_with_the_same_configuration_changes_nothing(
    weights: list[int],
    checkers: int,
    alpha: bool,
    sorry: bool,
    events: list[tuple[int, int, bool]],
) -> None:
    extra: dict[str, Any] = {"alpha": alpha, "quorum": 2}
    if sorry:
        extra["sorry_server"] = HostPort("203.0.113.9")
    vs = make_vs(tuple(weights), checkers=checkers, **extra)
    s = start(vs).state
    for pick, n, ok in events:
        i = pick % len(weights) + 1
        s = apply_event(s, ProbeResult(chk(i, n % checkers), ok)).state
    t = reload_pool(s, plan(vs))
    assert notices(t) == []
    assert t.state.snapshot() == s.snapshot()
    for before, after in zip(s.members, t.state.members, strict=True):
        assert {k: (c.retry.is_up, c.retry.has_run) for k, c in before.checkers.items()} == {
            k: (c.retry.is_up, c.retry.has_run) for k, c in after.checkers.items()
        }


def test_reload_keeps_an_unrun_alpha_checker_down() -> None:
    vs = make_vs((1,), checkers=2, alpha=True)
    s = apply_event(start(vs).state, ProbeResult(chk(1, 0), True)).state
    assert not s.member(rs_id(1)).alive  # the second alpha checker has not run yet
    t = reload_pool(s, plan(vs))
    assert not t.state.member(rs_id(1)).alive and notices(t) == []


def test_unknown_checker_is_a_named_error() -> None:
    from checkd.errors import PoolError

    with pytest.raises(PoolError, match=r"virtual server \[192.0.2.1\]:tcp:80 has no checker 'x'"):
        apply_event(start(make_vs()).state, CheckerVerdict("x", True))


@pytest.mark.parametrize("log_all", [False, True])
def test_log_all_failures_logs_each_retry(log_all: bool) -> None:
    vs = make_vs((1,))
    vs = replace(
        vs,
        real_servers=(
            replace(vs.real_servers[0], checkers=(Checker("TCP_CHECK", log_all_failures=log_all),)),
        ),
    )
    s = apply_event(start(vs).state, ProbeResult(chk(1), True)).state
    t = apply_event(s, ProbeResult(chk(1), False))
    events = [a.event for a in t.actions if isinstance(a, LogEvent)]
    assert events == (["checkd.checker.retry"] if log_all else [])


# --- the probe fast path ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    retry=st.integers(min_value=0, max_value=3),
    checkers=st.integers(min_value=1, max_value=2),
    log_all=st.booleans(),
    alpha=st.booleans(),
    probes=st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), st.integers(0, 1), st.booleans()),
        max_size=40,
    ),
    http=st.one_of(
        st.none(),
        st.tuples(st.integers(1, 3), st.booleans(), st.sampled_from((1.0, 3.0, 6.0))),
    ),
    # SMTP_CHECK counts per delay_loop round: a down one still retries (long: delay_before_retry
    # over delay_loop)
    smtp=st.sampled_from((None, 1.0, 9.0)),
)
def test_probe_fast_path_equals_working_on_a_copy(
    retry: int,
    checkers: int,
    log_all: bool,
    alpha: bool,
    probes: list[tuple[int, int, bool]],
    http: tuple[int, bool, float] | None,
    smtp: float | None,
) -> None:
    """apply_event skips copying the pool for probes that change no verdict (and for a first
    success without alpha); whatever the sequence, each step must give what the full copy
    gives: state, actions and delay. Where ``leaves_unchanged`` says a result changes nothing
    (checkd.lvs_runner then skips the pool altogether), the pool must indeed come back equal,
    with no action and the next probe ``delay_loop`` away. ``http``: the checkers are
    HTTP_GETs walking (urls, fast_recovery, delay_before_retry) with ``delay_loop`` 3;
    ``smtp``: SMTP_CHECKs with that ``delay_before_retry`` and ``delay_loop`` 6."""
    vs = make_vs(weights=(1, 2, 3), checkers=checkers, rs_kw={"retry": retry})
    kind = "TCP_CHECK"
    if http is not None:
        kind = "HTTP_GET"
        urls, fast, before_retry = http
        walker = Checker(
            "HTTP_GET",
            urls=tuple(Url(path=f"/{n}") for n in range(urls)),
            fast_recovery=fast,
            delay_before_retry=before_retry,
            delay_loop=3,
        )
        vs = replace(
            vs,
            real_servers=tuple(replace(r, checkers=(walker,) * checkers) for r in vs.real_servers),
        )
    elif smtp is not None:
        kind = "SMTP_CHECK"
        mailer = Checker("SMTP_CHECK", delay_before_retry=smtp, delay_loop=6)
        vs = replace(
            vs,
            real_servers=tuple(replace(r, checkers=(mailer,) * checkers) for r in vs.real_servers),
        )
    logged = tuple(
        replace(
            r,
            checkers=tuple(replace(c, log_all_failures=log_all, alpha=alpha) for c in r.checkers),
        )
        for r in vs.real_servers
    )
    state = start(replace(vs, real_servers=logged)).state
    for rs, n, ok in probes:
        event = ProbeResult(chk(rs, n % checkers, kind), ok, mail="m")
        fast_t, full = apply_event(state, event), _apply_on_copy(state, event)
        assert fast_t == full
        assert fast_t.state.members == full.state.members
        member = state.members[state.position_of_checker(event.checker_id) or 0]
        c_plan = next(c for c in member.rs.checkers if c.id == event.checker_id)
        if leaves_unchanged(state, c_plan, ok):
            assert full.state == state and full.actions == ()
            assert full.delay == c_plan.settings.delay_loop
        state = fast_t.state
    assert [state.member(rs_id(i)).rs.id for i in (1, 2, 3)] == [rs_id(i) for i in (1, 2, 3)]
