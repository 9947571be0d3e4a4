"""The checker scheduler on a fake clock: spread, no bursts, retry timing, ha_suspend, reload.

``PoolRunner``'s decisions (``apply``, ``due``, ``finished``, ``set_held``) take the time as an
argument, so these tests step a fake clock through minutes of checking in milliseconds; the
probes' results are scripted per real server.
"""

from __future__ import annotations

import gc
import itertools
from collections import Counter
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.topics import is_valid
from checkd.attempts import Armed, AttemptResult, probe_events
from checkd.checker_state import BOOTSTRAP_DELAY
from checkd.checkers import CheckResult
from checkd.checkplan import CheckPlan, build_plan
from checkd.lvs_runner import PoolRunner
from checkd.pool_messages import Action
from checkd.schedule import TimerHeap, phase, start_delay
from core.model import Checker, Config, RealServer, Url, VirtualServer
from tests.checkd.support import FakePublisher


class FakeActions:
    def __init__(self) -> None:
        self.done: list[Action] = []

    def configure(self, config: Config) -> None:
        pass

    def perform(self, actions: Iterable[Action]) -> None:
        self.done.extend(actions)


def config(
    n: int = 3,
    *,
    services: int = 1,
    delay_loop: float = 6,
    retry: int = 2,
    delay_before_retry: float = 1,
    ha_suspend: bool = False,
    warmup: float | None = None,
) -> Config:
    checker = Checker(
        kind="TCP_CHECK",
        retry=retry,
        delay_before_retry=delay_before_retry,
        connect_timeout=1,
        warmup=warmup,
    )
    rss = tuple(
        RealServer(ip=f"198.51.{100 + i // 250}.{i % 250 + 1}", port=80, checkers=(checker,))
        for i in range(n)
    )
    vss = tuple(
        VirtualServer(
            name=f"192.0.2.1 {80 + i}",
            ip="192.0.2.1",
            port=80 + i,
            protocol="TCP",
            delay_loop=delay_loop,
            ha_suspend=ha_suspend,
            real_servers=rss,
        )
        for i in range(services)
    )
    return Config(virtual_servers=vss)


def armed_for(plan: CheckPlan) -> dict[str, Armed]:
    async def never() -> AttemptResult:  # the simulation supplies results itself
        raise AssertionError("not run in a fake-clock test")

    return {
        c.id: Armed(c, vs.id, c.settings.connect_timeout + 1, never)
        for vs in plan.virtual_servers
        for rs in vs.real_servers
        for c in rs.checkers
    }


class Sim:
    """A PoolRunner on a fake clock; ``healthy(rs_ip, t)`` decides each probe."""

    def __init__(self, cfg: Config, healthy: Callable[[str, float], bool]) -> None:
        self.t = 0.0
        self.publisher = FakePublisher()
        self.actions = FakeActions()
        self.runner = PoolRunner(
            self.publisher, self.actions, clock=lambda: self.t, wall=lambda: self.t
        )
        self.healthy = healthy
        self.starts: dict[str, list[float]] = {}
        self.apply(cfg)

    def apply(self, cfg: Config) -> None:
        self.plan = build_plan(cfg, hostname="lb1")
        self.runner.apply(self.plan, armed_for(self.plan))

    def run_until(self, end: float, step: float = 0.05, took: float = 0.02) -> None:
        while self.t < end:
            for armed in self.runner.due(self.t):
                cid = armed.plan.id
                self.starts.setdefault(cid, []).append(round(self.t, 3))
                ok = self.probe(armed)
                result = CheckResult(ok, "ok" if ok else "refused")
                events = probe_events(armed.plan, result)
                self.runner.finished(armed, AttemptResult(ok, result.reason, events), self.t + took)
            self.t = round(self.t + step, 6)

    def probe(self, armed: Armed) -> bool:
        ip = armed.plan.id.split("[")[2].split("]")[0]
        return self.healthy(ip, self.t)


def test_phase_is_stable_and_within_the_period() -> None:
    assert phase("a", 10) == phase("a", 10)
    assert phase("a", 10) != phase("b", 10)
    assert phase("a", 0) == 0.0


@given(st.lists(st.text(min_size=1), min_size=1, max_size=50), st.floats(0.1, 3600))
def test_start_delay_bounds(keys: list[str], period: float) -> None:
    for key in keys:
        assert BOOTSTRAP_DELAY <= start_delay(key, period, 0) < BOOTSTRAP_DELAY + period
        assert BOOTSTRAP_DELAY <= start_delay(key, 1, period) < BOOTSTRAP_DELAY + period


def test_timer_heap_orders_reschedules_and_cancels() -> None:
    heap = TimerHeap()
    heap.push("a", 3)
    heap.push("b", 1)
    heap.push("c", 2)
    heap.push("a", 0.5)  # rescheduled earlier: the old entry is skipped
    heap.cancel("c")
    assert heap.next_at() == 0.5
    assert heap.pop_due(1.5) == ["a", "b"]
    assert heap.pop_due(10) == []
    assert len(heap) == 0 and heap.next_at() is None
    for i in range(1000):  # many reschedules do not grow the heap without bound
        heap.push("x", float(i))
    assert len(heap._heap) < 200


def test_thousands_of_checkers_spread_over_delay_loop() -> None:
    sim = Sim(config(20, services=100, delay_loop=10), lambda ip, t: True)
    sim.run_until(31, step=0.1)
    firsts = [s[0] for s in sim.starts.values()]
    assert len(firsts) == 2000
    assert min(firsts) >= BOOTSTRAP_DELAY and max(firsts) <= BOOTSTRAP_DELAY + 10 + 0.1
    # Every second of the period starts about a tenth of them: no burst (keepalived fires
    # them all 1 s after start-up).
    per_second = Counter(int(t) for starts in sim.starts.values() for t in starts if t >= 11)
    assert max(per_second.values()) < 2000 / 10 * 1.5
    assert min(per_second.values()) > 2000 / 10 * 0.5
    # And each keeps its own pace: delay_loop after the previous attempt ended.
    some = next(iter(sim.starts.values()))
    assert all(abs(b - a - 10.02) < 0.11 for a, b in itertools.pairwise(some))


def test_a_late_start_returns_to_the_checkers_phase() -> None:
    """keepalived runs a checker's next attempt ``delay_loop`` after the last one ended. A
    checker that is not retrying runs instead at its phase (a whole number of delays
    after its phase's due time) when that is at most a tenth of the delay earlier, else a
    tenth earlier: on time it runs exactly every ``delay_loop`` (its attempts' length does not
    slide it), and one a stall made late comes back to its phase a tenth per round instead of
    staying where the stall left it, bunched with the others it delayed."""
    sim = Sim(config(1, delay_loop=6), lambda ip, t: True)
    runner = sim.runner
    (cid,) = runner.armed

    def attempt(late: float) -> tuple[float, float, float]:
        due = runner.heap.at(cid)
        assert due is not None
        (armed,) = runner.due(due + late)
        result = AttemptResult(True, "ok", probe_events(armed.plan, CheckResult(True, "ok")))
        end = due + late + 0.02
        runner.finished(armed, result, end)
        nxt = runner.heap.at(cid)
        assert nxt is not None
        # never later than keepalived's rule, never more than a tenth of the delay earlier
        assert end + 6 - 0.6 - 1e-9 <= nxt <= end + 6 + 1e-9
        return due, end, nxt

    phase, _, first = attempt(0.0)
    assert first == pytest.approx(phase + 6)  # not + 6.02
    assert attempt(0.0)[2] == pytest.approx(phase + 12)
    assert attempt(0.25)[2] == pytest.approx(phase + 18)  # back at once: under a tenth
    _, end, nxt = attempt(2.0)  # a 2 s stall: 0.6 s back per round
    assert nxt == pytest.approx(end + 6 - 0.6)
    nexts = [attempt(0.0)[2] for _ in range(5)]
    # 25.42 -> 30.84 -> 36.26 -> on its phase again from the third round
    assert nexts == pytest.approx(
        [phase + 30.84, phase + 36.26, phase + 42, phase + 48, phase + 54]
    )


def test_warmup_spreads_the_first_probe_over_warmup() -> None:
    sim = Sim(config(200, delay_loop=60, warmup=4), lambda ip, t: True)
    sim.run_until(6)
    firsts = [s[0] for s in sim.starts.values()]
    assert len(firsts) == 200 and max(firsts) < BOOTSTRAP_DELAY + 4 + 0.1


def test_retry_timing_and_the_verdict_on_the_bus() -> None:
    failing_from = 20.0
    sim = Sim(config(2), lambda ip, t: not (ip == "198.51.100.1" and t >= failing_from))
    sim.run_until(60)
    cid = next(c for c in sim.starts if "198.51.100.1" in c)
    starts = sim.starts[cid]
    first_fail = next(t for t in starts if t >= failing_from)
    i = starts.index(first_fail)
    # Two retries delay_before_retry (1 s) after each failed attempt ended, then the DOWN
    # verdict; a down checker is probed every delay_loop (6 s) without retries.
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(starts[i:])]
    # (the fake clock steps 0.05 s, the attempt takes 0.02 s; a start made late by the steps
    # brings the next one forward by as much, so each lands within a step of its due time)
    assert all(0.95 < g <= 1.1 for g in gaps[:2]), gaps
    assert len(gaps) > 3 and all(5.95 < g <= 6.1 for g in gaps[2:]), gaps
    rs_topic = "check.rs.192.0.2.1:tcp:80/198.51.100.1:tcp:80"
    downs = [b for t, b in sim.publisher.sent if t == rs_topic and not b["alive"]]
    assert len(downs) == 1
    assert downs[0]["checkers"][0]["reason"] == "refused"
    pool = sim.publisher.retained["check.pool.192.0.2.1:tcp:80"]
    assert [m["alive"] for m in pool["members"]] == [False, True]
    assert pool["members"][0]["pool_weight"] is None
    assert any("RS [198.51.100.1]:tcp:80" in getattr(a, "text", "") for a in sim.actions.done)


def test_topics_are_valid_bus_topics_and_quorum_is_a_verdict() -> None:
    sim = Sim(config(2), lambda ip, t: False)
    sim.run_until(20)
    assert sim.publisher.retained
    assert all(is_valid(t) for t in sim.publisher.retained)
    verdict = sim.publisher.retained["health.vs:192.0.2.1:tcp:80"]
    assert verdict["name"] == "vs:192.0.2.1:tcp:80" and verdict["ok"] is False
    # Re-sent on a timer as vrrpd expects of every verdict; pool reports only on change.
    assert sim.publisher.repeated == {"health.vs:192.0.2.1:tcp:80"}


def test_ha_suspend_pauses_checks_until_this_node_holds_the_address() -> None:
    sim = Sim(config(1, ha_suspend=True), lambda ip, t: True)
    sim.run_until(20)
    assert sim.starts == {}
    pool = sim.publisher.retained["check.pool.192.0.2.1:tcp:80"]
    assert pool["ha_suspended"] is True
    sim.runner.set_held({"192.0.2.1"})
    sim.run_until(30)
    assert len(next(iter(sim.starts.values()))) >= 1
    assert sim.publisher.retained["check.pool.192.0.2.1:tcp:80"]["ha_suspended"] is False
    count = len(next(iter(sim.starts.values())))
    sim.runner.set_held({"192.0.2.99"})
    sim.run_until(60)
    assert len(next(iter(sim.starts.values()))) == count


def test_reload_keeps_unchanged_servers_and_their_schedule() -> None:
    sim = Sim(config(2), lambda ip, t: ip != "198.51.100.2")
    sim.run_until(30)
    cid = next(c for c in sim.starts if "198.51.100.1" in c)
    due_before = sim.runner.heap.at(cid)
    sent_before = len(sim.publisher.sent)
    sim.apply(config(3))  # one real server added
    assert sim.runner.heap.at(cid) == due_before
    rs1 = "check.rs.192.0.2.1:tcp:80/198.51.100.1:tcp:80"
    rs2 = "check.rs.192.0.2.1:tcp:80/198.51.100.2:tcp:80"
    new = [t for t, _ in sim.publisher.sent[sent_before:]]
    assert rs1 not in new and rs2 not in new  # nothing changed for them: no flap
    assert sim.publisher.retained[rs2]["alive"] is False
    sim.apply(config(1))  # two removed: their topics are forgotten
    assert rs2 not in sim.publisher.retained and rs1 in sim.publisher.retained
    assert cid in sim.runner.armed and len(sim.runner.armed) == 1


def test_core_and_checkd_agree_on_quorum_script_names() -> None:
    from core.vsnames import quorum_script_names

    cfg = config(2, services=3)
    plan = build_plan(cfg, hostname="lb")
    from checkd.pool_topics import quorum_name

    assert sorted(quorum_script_names(cfg)) == sorted(
        quorum_name(v.id) for v in plan.virtual_servers
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["push", "push", "push", "cancel", "pop"]),
            st.sampled_from([f"k{i}" for i in range(12)]),
            st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.5, 3.0, 7.0]),
        ),
        max_size=300,
    )
)
def test_timer_heap_hands_out_what_a_plain_model_does(ops: list[tuple[str, str, float]]) -> None:
    """Ties, reschedules to the same or another time, cancels and compactions: the set due
    at each pop and their order by time are the plain model's (a dict of key -> time)."""
    heap = TimerHeap()
    model: dict[str, float] = {}
    for op, key, when in ops:
        if op == "push":
            heap.push(key, when)
            model[key] = when
        elif op == "cancel":
            heap.cancel(key)
            model.pop(key, None)
        else:
            got = heap.pop_due(when)
            want = {k for k, t in model.items() if t <= when}
            assert set(got) == want and len(got) == len(want)
            assert [model[k] for k in got] == sorted(model[k] for k in got)
            for k in got:
                del model[k]
        assert len(heap) == len(model)
        assert heap.next_at() == (min(model.values()) if model else None)


def test_timer_heap_entries_are_nothing_the_young_collections_walk() -> None:
    """One push and one pop per check (some 12,000 a second): no tracked object each."""
    heap = TimerHeap()
    keys = [f"checker {i}" for i in range(2_000)]
    for i, key in enumerate(keys):
        heap.push(key, float(i))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        before = len(gc.get_objects(0))
        for i, key in enumerate(keys):
            heap.push(key, 5_000.0 + i)
        grown = len(gc.get_objects(0)) - before
    finally:
        if was_enabled:
            gc.enable()
    # a tuple per entry left 2,000 tracked objects here
    assert grown < 10, f"{grown} new objects for the collector per 2,000 entries"


def test_first_round_is_announced_once_every_new_checker_has_a_result() -> None:
    """checkd freezes a big configuration's heap when its first round is over
    (``LvsService._first_round_done``): the runner says so after the last new checker's first
    result, not before, and again after a reload only once the checkers it changed have run."""
    sim = Sim(config(4, delay_loop=6), lambda ip, t: True)
    told: list[float] = []
    sim.runner.on_first_round = lambda: told.append(sim.t)
    sim.run_until(BOOTSTRAP_DELAY + 6 + 0.1)
    assert len(sim.starts) == 4 and len(told) == 1
    assert told[0] == max(s[0] for s in sim.starts.values())  # at the last first result
    sim.run_until(30)
    assert len(told) == 1  # steady rounds say nothing

    sim.apply(config(4, delay_loop=6, retry=3))  # every checker changed: a new first round
    sim.run_until(31)
    assert len(told) == 1  # none of them has run yet (BOOTSTRAP_DELAY)
    sim.run_until(30 + BOOTSTRAP_DELAY + 6 + 0.1)
    assert len(told) == 2

    sim.apply(config(4, delay_loop=6, retry=3))  # nothing changed: no round to wait for
    sim.run_until(60)
    assert len(told) == 2


def test_a_checker_removed_before_its_first_result_does_not_hold_the_round() -> None:
    sim = Sim(config(3, delay_loop=6), lambda ip, t: True)
    told: list[float] = []
    sim.runner.on_first_round = lambda: told.append(sim.t)
    sim.apply(config(2, delay_loop=6))  # the third goes before any has run
    sim.run_until(BOOTSTRAP_DELAY + 6 + 0.1)
    assert len(sim.starts) == 2 and len(told) == 1


# --- HTTP_GET: one url per attempt (checkd.url_walk) ------------------------------------------


def http_config(*, fast_recovery: bool = False) -> Config:
    checker = Checker(
        kind="HTTP_GET",
        urls=(Url(path="/a"), Url(path="/b")),
        retry=1,
        delay_before_retry=3,
        connect_timeout=1,
        fast_recovery=fast_recovery,
    )
    rs = RealServer(ip="198.51.100.1", port=80, checkers=(checker,))
    vs = VirtualServer(
        name="192.0.2.1 80",
        ip="192.0.2.1",
        port=80,
        protocol="TCP",
        delay_loop=6,
        real_servers=(rs,),
    )
    return Config(virtual_servers=(vs,))


class UrlSim(Sim):
    """Each attempt GETs the url the runner says the checker is on; ``healthy(path, t)``
    decides it. ``log`` holds (time, path, result, whether the real server is alive after)."""

    def __init__(self, cfg: Config, healthy: Callable[[str, float], bool]) -> None:
        self.log: list[tuple[float, str, bool, bool]] = []
        super().__init__(cfg, healthy)

    def probe(self, armed: Armed) -> bool:
        path = armed.plan.checker.urls[self.runner.url_index(armed)].path
        assert path is not None
        ok = self.healthy(path, self.t)
        self.log.append((round(self.t, 3), path, ok, True))
        return ok

    def run_until(self, end: float, step: float = 0.05, took: float = 0.02) -> None:
        while self.t < end:
            before = len(self.log)
            super().run_until(self.t + step / 2, step, took)
            if len(self.log) > before:  # the pool as that attempt left it
                (rs,) = self.runner.pools["[192.0.2.1]:tcp:80"].members
                t, path, ok, _ = self.log[-1]
                self.log[-1] = (t, path, ok, rs.alive)


def test_http_get_checks_one_url_per_delay_loop_and_polls_the_failed_url() -> None:
    """keepalived's HTTP_GET (check_http.c ``epilog``): one url per attempt, the next one
    ``delay_loop`` later; a failing url is retried after ``delay_before_retry``, then the
    checker is down and only that url is polled, every max(``delay_before_retry``,
    ``delay_loop``); once it passes the whole list must pass again, one url per
    ``delay_loop``, before the real server is back."""
    sim = UrlSim(http_config(), lambda path, t: not (path == "/b" and 30 <= t < 60))
    sim.run_until(100)
    paths = [p for _, p, _, _ in sim.log]
    first_fail = next(i for i, (_, p, ok, _) in enumerate(sim.log) if not ok)
    assert paths[:first_fail] == ["/a", "/b"] * (first_fail // 2) + ["/a"] * (first_fail % 2)
    times = [t for t, _, _, _ in sim.log]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    # up: one url every delay_loop, on the checker's phase
    assert all(5.95 < g <= 6.05 for g in gaps[: first_fail - 1]), gaps
    # /b fails: retried once after delay_before_retry (3 s), then DOWN
    fails = [(t, p, alive) for t, p, ok, alive in sim.log if not ok]
    assert [p for _, p, _ in fails] == ["/b"] * len(fails)
    assert fails[0][2] is True and fails[1][2] is False  # the second failure is the verdict
    assert 2.95 < round(fails[1][0] - fails[0][0], 2) <= 3.1
    # down: /b alone, every max(3, 6) s, until it passes
    assert all(5.95 < round(b[0] - a[0], 2) <= 6.1 for a, b in itertools.pairwise(fails[1:]))
    back = next(i for i, (t, p, ok, _) in enumerate(sim.log) if ok and t >= 60)
    assert [(p, ok, alive) for _, p, ok, alive in sim.log[back : back + 4]] == [
        ("/b", True, False),  # the failed url passes: the list starts again
        ("/a", True, False),
        ("/b", True, True),  # the whole list passed: UP
        ("/a", True, True),
    ]
    assert all(5.95 < g <= 6.1 for g in gaps[back : back + 3]), gaps


def test_http_get_fast_recovery_walks_the_list_without_delay_loop_gaps() -> None:
    sim = UrlSim(
        http_config(fast_recovery=True), lambda path, t: not (path == "/b" and 30 <= t < 60)
    )
    sim.run_until(100)
    start = sim.log[0][0]
    # at start-up the list is walked at once: /b right after /a, then one url per delay_loop
    assert [(p, round(t - start, 2)) for t, p, _, _ in sim.log[:3]] == [
        ("/a", 0),
        ("/b", 0.05),
        ("/a", 6.05),
    ]
    back = next(i for i, (t, p, ok, _) in enumerate(sim.log) if ok and t >= 60)
    walk = sim.log[back : back + 4]
    assert [(p, alive) for _, p, _, alive in walk] == [
        ("/b", False),
        ("/a", False),
        ("/b", True),
        ("/a", True),
    ]
    # the walk back up takes one clock step per url; up again, delay_loop between urls
    assert [round(b[0] - a[0], 2) for a, b in itertools.pairwise(walk)] == [0.05, 0.05, 6.0]
    fails = [t for t, _, ok, _ in sim.log if not ok]
    assert all(5.95 < round(b - a, 2) <= 6.1 for a, b in itertools.pairwise(fails[1:]))
