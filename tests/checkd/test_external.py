"""Real-server verdicts from external checkers (docs/checkers.md, "External verdicts").

The pool's rules as tables (``checkd.pool`` with ``ExternalVerdict``), the message's reading
(``checkd.external``), staleness on the runner's fake clock, and the service as the
``health.rs:*`` subscriber drives it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
import zmq.asyncio

import core
from bus import Publisher, RuntimeDir, Subscriber
from bus.envelope import Envelope, Event
from checkd.checkplan import build_plan, plan_virtual_server
from checkd.errors import PoolError
from checkd.external import ExternalRefused, ExternalReport, read_report, stale_after
from checkd.lvs_runner import PoolRunner
from checkd.lvs_service import LvsService
from checkd.pool import Transition, apply_event, reload_pool, start_pool
from checkd.pool_actions import ActionRunner
from checkd.pool_messages import (
    Action,
    CheckerVerdict,
    ExternalVerdict,
    FifoLine,
    LogEvent,
    Mail,
    RunScript,
    external_id,
)
from checkd.pool_messages import Event as PoolEvent
from core.model import Checker, Config, GlobalDefs, RealServer, Script, VirtualServer
from tests.checkd.support import FakePublisher
from tests.checkd.test_schedule import FakeActions, armed_for
from tests.daemon import (
    JSON_LOGS,
    REPO,
    connected,
    python_module,
    running_bus,
    runtime_dir,
    stop,
)

VS = "[192.0.2.1]:tcp:80"
KEY = "192.0.2.1:tcp:80"


def rs_text(i: int) -> str:
    return f"[198.51.100.{i}]:tcp:80"


def rs_id(i: int) -> str:
    return f"{VS} {rs_text(i)}"


def topic(i: int) -> str:
    return f"health.rs:{KEY}/198.51.100.{i}:tcp:80"


def make_vs(checkers: int = 0, weights: Sequence[int] = (1, 1), **vs_kw: Any) -> VirtualServer:
    return VirtualServer(
        name="192.0.2.1 80",
        ip="192.0.2.1",
        port=80,
        protocol="TCP",
        real_servers=tuple(
            RealServer(
                ip=f"198.51.100.{i + 1}",
                port=80,
                weight=w,
                notify_down=Script(f"/down {i + 1}"),
                checkers=tuple(Checker("TCP_CHECK") for _ in range(checkers)),
            )
            for i, w in enumerate(weights)
        ),
        **vs_kw,
    )


def start(vs: VirtualServer) -> Transition:
    return start_pool(plan_virtual_server(vs, GlobalDefs()), router_id="lb1")


# --- the pool, as tables ----------------------------------------------------------------------

# A step: ("ext", up[, weight]) is an external verdict on real server 1, ("chk", up) its
# configured TCP_CHECK's verdict after retries.
Step = tuple[Any, ...]


def event(step: Step) -> PoolEvent:
    if step[0] == "ext":
        weight = step[2] if len(step) > 2 else None
        return ExternalVerdict(rs_id(1), step[1], weight, f"ext {step[1]}")
    return CheckerVerdict(f"{rs_id(1)} TCP_CHECK#0", step[1], f"chk {step[1]}")


def run(state: Any, steps: Sequence[Step]) -> Transition:
    t = Transition(state, ())
    for step in steps:
        t = apply_event(t.state, event(step))
    return t


@pytest.mark.parametrize(
    ("checkers", "steps", "alive", "fifo"),
    [
        # checked from outside only
        (0, [("ext", True)], True, []),  # a first "ok" changes nothing and says nothing
        (0, [("ext", False)], False, ["DOWN"]),  # a first failure is DOWN at once: final
        (0, [("ext", False), ("ext", True)], True, ["DOWN", "UP"]),
        (0, [("ext", True), ("ext", False), ("ext", False)], False, ["DOWN"]),
        # combined with a configured checker: alive only while both are up
        (1, [("ext", False), ("chk", True)], False, ["DOWN"]),
        (1, [("chk", False), ("ext", True)], False, ["DOWN"]),
        (1, [("chk", False), ("ext", False), ("chk", True)], False, ["DOWN"]),
        (1, [("chk", False), ("ext", False), ("chk", True), ("ext", True)], True, ["DOWN", "UP"]),
        (1, [("ext", False), ("chk", False), ("ext", True)], False, ["DOWN"]),
    ],
)
def test_external_verdicts_on_the_pool(
    checkers: int, steps: list[Step], alive: bool, fifo: list[str]
) -> None:
    actions: list[Action] = []
    t = start(make_vs(checkers))
    for step in steps:
        t = run(t.state, [step])
        actions += t.actions
    assert t.state.member(rs_id(1)).alive is alive
    assert [a.text for a in actions if isinstance(a, FifoLine)] == [
        f"RS {rs_text(1)} {VS} {s}\n" for s in fifo
    ]
    ext = t.state.member(rs_id(1)).checkers[external_id(rs_id(1))]
    last_ext = [s[1] for s in steps if s[0] == "ext"][-1]
    assert ext.retry.has_run and ext.retry.is_up is last_ext


def test_an_external_failure_notifies_and_mails_like_a_checker() -> None:
    t = run(start(make_vs(smtp_alert=True)).state, [("ext", False)])
    assert [a for a in t.actions if not isinstance(a, LogEvent)] == [
        RunScript(Script("/down 1"), "notify_down", rs_id(1)),
        FifoLine(f"RS {rs_text(1)} {VS} DOWN\n"),
        Mail(
            f"[lb1] Realserver {rs_text(1)} of virtual server {VS} - DOWN",
            "ext False",
            f"RS {rs_id(1)}",
        ),
    ]


@pytest.mark.parametrize(
    ("steps", "effective", "live"),
    [
        ([("ext", True, 5)], 5, 6),  # the whole weight, as misc_dynamic sets it
        ([("ext", True, 0)], 0, 1),
        ([("ext", True, 5), ("ext", True)], 2, 3),  # an ok without weight: the configured one
        ([("ext", True, 5), ("ext", False, 9)], 5, 1),  # a failure leaves the weight alone
        ([("ext", True, 5), ("ext", False), ("ext", True, 7)], 7, 8),
    ],
)
def test_external_weight(steps: list[Step], effective: int, live: int) -> None:
    t = run(start(make_vs(weights=(2, 1))).state, steps)
    assert t.state.member(rs_id(1)).effective_weight == effective
    assert t.state.live_weight == live


def test_a_repeated_verdict_is_the_same_state_and_says_nothing() -> None:
    first = run(start(make_vs()).state, [("ext", False)])
    for step in [("ext", False), ("ext", False, 3)]:  # the weight of a failure is not taken
        again = apply_event(first.state, event(step))
        assert again.state is first.state and again.actions == ()
    up = run(first.state, [("ext", True, 4)])
    assert apply_event(up.state, event(("ext", True, 4))).state is up.state
    assert apply_event(up.state, event(("ext", True))).state is not up.state


def test_a_verdict_on_an_unknown_real_server_is_a_named_error() -> None:
    with pytest.raises(PoolError, match="no real server"):
        apply_event(start(make_vs()).state, ExternalVerdict(rs_id(9), False))


@pytest.mark.parametrize("checkers", [0, 1])
def test_reload_keeps_the_external_checker(checkers: int) -> None:
    down = run(start(make_vs(checkers)).state, [("ext", False)])
    weighted = run(start(make_vs(checkers)).state, [("ext", True, 9)])
    # an unchanged configuration, then one with another weight and delay_loop
    for vs in (make_vs(checkers), make_vs(checkers, weights=(3, 1), delay_loop=5)):
        new = plan_virtual_server(vs, GlobalDefs())
        t = reload_pool(down.state, new)
        member = t.state.member(rs_id(1))
        assert not member.alive and not member.checkers[external_id(rs_id(1))].retry.is_up
        assert not [a for a in t.actions if isinstance(a, FifoLine)]
        # it still needs a verdict to come back
        assert run(t.state, [("ext", True)]).state.member(rs_id(1)).alive
        kept = reload_pool(weighted.state, new).state.member(rs_id(1))
        assert kept.alive and kept.effective_weight == 9
    # a reload that removes the real server forgets it
    gone = reload_pool(
        down.state, plan_virtual_server(make_vs(checkers, weights=(1,)), GlobalDefs())
    )
    assert [m.rs.id for m in gone.state.members] == [rs_id(1)]
    regained = reload_pool(gone.state, plan_virtual_server(make_vs(checkers), GlobalDefs()))
    assert external_id(rs_id(2)) not in regained.state.member(rs_id(2)).checkers


# --- reading the message ----------------------------------------------------------------------


def body(**fields: Any) -> dict[str, Any]:
    return {"name": topic(1).removeprefix("health."), "ok": False, **fields}


def test_a_verdict_is_read() -> None:
    assert read_report(topic(1), body()) == ExternalReport(
        f"{KEY}/198.51.100.1:tcp:80", False, "failed", None, None
    )
    full = read_report(topic(1), body(ok=True, reason="HTTP 200", ttl=30, weight=4, kind="x"))
    assert (full.ok, full.reason, full.ttl, full.weight) == (True, "HTTP 200", 30, 4)


@pytest.mark.parametrize(
    ("topic_", "fields", "why"),
    [
        (topic(1), {"name": "rs:other"}, "carries a verdict named"),
        (topic(1), {"ttl": 0}, "'ttl' is 0, expected a number above 0"),  # bus.messages
        (topic(1), {"ttl": -1.5}, "'ttl' is -1.5"),
        (topic(1), {"ttl": "30"}, "'ttl'"),
        (topic(1), {"weight": -1}, "weight -1"),
        (topic(1), {"weight": 2**31}, "outside"),
        (topic(1), {"weight": 1.5}, "'weight'"),
        (topic(1), {"reason": 7}, "'reason'"),
        (topic(1), {"ok": "false"}, "'ok'"),
        ("health.rs:192.0.2.1:tcp:80", {"name": "rs:192.0.2.1:tcp:80"}, "names no real server"),
    ],
)
def test_a_bad_verdict_is_refused(topic_: str, fields: dict[str, Any], why: str) -> None:
    with pytest.raises(ExternalRefused, match=why):
        read_report(topic_, body(**fields))


@pytest.mark.parametrize(
    ("rs_kw", "vs_kw", "after"),
    [
        ({}, {}, 2 * 60 + 5),  # keepalived's defaults: delay_loop 60, connect_timeout 5
        ({}, {"delay_loop": 10, "connect_timeout": 2}, 22),
        ({"delay_loop": 3}, {"delay_loop": 10, "connect_timeout": 2}, 8),
        ({"connect_timeout": 1}, {"delay_loop": 2, "connect_timeout": 4}, 5),
        ({"delay_loop": 0.5, "connect_timeout": 0.5}, {}, 3),  # the floor
    ],
)
def test_stale_after_follows_the_delay_loop(
    rs_kw: dict[str, Any], vs_kw: dict[str, Any], after: float
) -> None:
    vs = VirtualServer(
        name="192.0.2.1 80",
        ip="192.0.2.1",
        port=80,
        real_servers=(RealServer(ip="198.51.100.1", port=80, **rs_kw),),
        **vs_kw,
    )
    plan = plan_virtual_server(vs, GlobalDefs())
    assert stale_after(plan, plan.real_servers[0]) == after


# --- staleness on the runner's fake clock -----------------------------------------------------


class Clocked:
    def __init__(self, vs: VirtualServer) -> None:
        self.t = 100.0
        self.publisher = FakePublisher()
        self.actions = FakeActions()
        self.runner = PoolRunner(
            self.publisher, self.actions, clock=lambda: self.t, wall=lambda: self.t
        )
        self.apply(vs)

    def apply(self, vs: VirtualServer) -> None:
        plan = build_plan(Config(virtual_servers=(vs,)), hostname="lb1")
        self.runner.apply(plan, armed_for(plan))

    def verdict(self, ok: bool, **fields: Any) -> bool:
        return self.runner.external(read_report(topic(1), body(ok=ok, **fields)), self.t)

    def at(self, t: float) -> None:
        self.t = t
        assert self.runner.due(t) == []  # no configured checker: nothing to start

    def rs(self) -> dict[str, Any]:
        published = self.publisher.retained[f"check.rs.{KEY}/198.51.100.1:tcp:80"]
        return dict(published)

    def alive(self) -> bool:
        return self.runner.pools[VS].member(rs_id(1)).alive


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_a_verdict_without_ttl_goes_stale_after_the_rule(
    logs: list[MutableMapping[str, Any]],
) -> None:
    sim = Clocked(make_vs(delay_loop=10, connect_timeout=2))  # fresh for 22 s
    assert sim.verdict(True)
    assert sim.alive()
    sim.at(121)
    assert sim.verdict(True)  # re-sent: fresh until 143
    sim.at(142.9)
    assert sim.alive()
    sim.at(143)
    assert not sim.alive()
    ext = sim.rs()["checkers"][-1]
    assert (ext["kind"], ext["up"], ext["ok"]) == ("EXTERNAL", False, False)
    assert ext["reason"] == "stale: no verdict for 22 s"
    sim.at(500)  # stale once, logged once
    assert len(events(logs, "checkd.external.stale")) == 1
    assert sim.verdict(True)  # the next fresh verdict brings it back
    assert sim.alive() and events(logs, "checkd.external.fresh")
    assert sim.rs()["checkers"][-1]["reason"] == "ok"


def test_a_ttl_is_the_verdicts_own_freshness() -> None:
    sim = Clocked(make_vs(delay_loop=10, connect_timeout=2))
    assert sim.verdict(True, ttl=2.5)
    sim.at(102.4)
    assert sim.alive()
    sim.at(102.5)
    assert not sim.alive()
    assert sim.verdict(True, ttl=300)  # a slow checker says so; the rule's 22 s do not apply
    sim.at(402.4)
    assert sim.alive()
    sim.at(402.5)
    assert not sim.alive()


def test_a_stale_external_checker_on_a_server_with_a_configured_one() -> None:
    sim = Clocked(make_vs(checkers=1, delay_loop=1, connect_timeout=1))
    assert sim.verdict(False)
    assert not sim.alive()
    assert [c["kind"] for c in sim.rs()["checkers"]] == ["TCP_CHECK", "EXTERNAL"]


def test_a_reload_keeps_the_verdict_and_its_deadline_a_removal_forgets_it() -> None:
    sim = Clocked(make_vs(delay_loop=10, connect_timeout=2))
    assert sim.verdict(False, ttl=50)
    sim.apply(make_vs(delay_loop=20, weights=(2, 1)))  # the real server is kept
    assert not sim.alive()
    assert sim.verdict(True, ttl=50)
    sim.apply(make_vs(delay_loop=20, weights=(2, 1)))
    assert sim.alive()
    sim.at(150)  # the deadline set before the reload still holds
    assert not sim.alive()
    without = make_vs()
    sim.apply(replace(without, real_servers=without.real_servers[1:]))
    assert not sim.verdict(True)  # no such real server any more
    assert external_id(rs_id(1)) not in sim.runner.heap


# --- the service, as the health.rs:* subscriber drives it ------------------------------------

CONF = """
virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 1
  real_server 198.51.100.1 80 {
  }
  real_server 198.51.100.2 80 {
    TCP_CHECK {
      connect_port 9
    }
  }
}
"""


def bus_event(topic_: str, src: str = "my-checker", **fields: Any) -> Event:
    return Event(topic_, Envelope(1, src, 4242, "b00t", 1, 0.0), fields)


def test_the_service_takes_refuses_and_ignores_external_verdicts(
    logs: list[MutableMapping[str, Any]],
) -> None:
    publisher = FakePublisher()
    service = LvsService(publisher, actions=ActionRunner())
    assert service.apply_model(core.to_wire(core.loads(CONF, script_env=None).config), 1)
    name = topic(1).removeprefix("health.")
    service.external(bus_event(topic(1), name=name, ok=False, reason="HTTP 503"))
    rs = publisher.retained[f"check.rs.{KEY}/198.51.100.1:tcp:80"]
    assert not rs["alive"] and rs["pool_weight"] is None
    assert [(c["kind"], c["up"], c["reason"]) for c in rs["checkers"]] == [
        ("EXTERNAL", False, "HTTP 503")
    ]
    assert "   Keepalive method = EXTERNAL\n" in (service.dump_text() or "")
    # refused: logged once per topic with the sender, counted after
    for _ in range(3):
        service.external(bus_event(topic(1), name="rs:elsewhere", ok=True))
    refused = events(logs, "checkd.external.refused")
    assert [(e["src"], e["pid"], e["topic"]) for e in refused] == [("my-checker", 4242, topic(1))]
    # a real server the configuration does not have: ignored, logged once
    for _ in range(2):
        service.external(bus_event(topic(7), name=topic(7).removeprefix("health."), ok=True))
    assert len(events(logs, "checkd.external.unknown")) == 1
    assert service.refused.counts == {topic(1): 3} and service.unknown.counts == {topic(7): 2}
    assert not publisher.retained[f"check.rs.{KEY}/198.51.100.1:tcp:80"]["alive"]
    # a reload keeps the verdict; the notes start again
    conf = CONF.replace("delay_loop 1", "delay_loop 2")
    assert service.apply_model(core.to_wire(core.loads(conf, script_env=None).config), 2)
    assert not service.runner.pools[VS].member(rs_id(1)).alive
    assert service.unknown.counts == {}
    service.external(bus_event(topic(1), name=name, ok=True))
    assert publisher.retained[f"check.rs.{KEY}/198.51.100.1:tcp:80"]["alive"]


# --- end to end: checkd as a process on a real bus --------------------------------------------


def test_checkd_follows_external_verdicts_on_the_bus(tmp_path: Path) -> None:
    conf = CONF.replace("connect_port 9\n", "connect_port 9\n      connect_timeout 1\n")
    model = core.to_wire(core.loads(conf, script_env=None).config)
    with runtime_dir() as rt, running_bus(rt):
        log_path = tmp_path / "checkd.log"
        with log_path.open("wb") as log_file:
            checkd = python_module(
                "checkd",
                "--runtime-dir",
                str(rt.path),
                env=JSON_LOGS,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                asyncio.run(_on_the_bus(rt, model))
            finally:
                code = stop(checkd)
        assert code == 0, log_path.read_text()


class Heard:
    """Every ``check.rs.*`` body and checkd log record received, waited on with deadlines."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.rs: dict[str, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []

    async def pump(self) -> None:
        while True:
            for e in await self.sub.recv_batch():
                if e.topic.startswith("check.rs."):
                    self.rs[e.topic] = e.body
                else:
                    self.logs.append(e.body)

    async def until(self, what: str, predicate: Callable[[], object], timeout: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"no {what}; rs={self.rs} logs={self.logs[-5:]}")
            await asyncio.sleep(0.01)

    def external(self, i: int) -> dict[str, Any] | None:
        body = self.rs.get(f"check.rs.{KEY}/198.51.100.{i}:tcp:80")
        if body is None:
            return None
        return next((c for c in body["checkers"] if c["kind"] == "EXTERNAL"), None)

    def alive(self, i: int) -> bool | None:
        body = self.rs.get(f"check.rs.{KEY}/198.51.100.{i}:tcp:80")
        return None if body is None else bool(body["alive"])

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.logs if r.get("event") == event]


async def _ctl_publish(rt: RuntimeDir, *words: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ctl", "--runtime-dir", str(rt.path), "publish", *words, cwd=REPO
    )
    assert await asyncio.wait_for(proc.wait(), 20) == 0


async def _on_the_bus(rt: RuntimeDir, model: dict[str, Any]) -> None:
    ctx = zmq.asyncio.Context()
    core_pub = Publisher(ctx, rt, "core")
    core_pub.start()
    checker = Publisher(ctx, rt, "my-checker")
    checker.start()
    sub = Subscriber(ctx, rt, ["check.rs.*", "log.checkd"])
    sub.start()
    heard = Heard(sub)
    pump = asyncio.create_task(heard.pump())
    try:
        await connected(sub, ctx, rt, "check.rs.x")
        digest = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()
        config = {"generation": 1, "hash": digest, "path": "/etc/keepalived/keepalived.conf"}
        core_pub.retain("config.current", {**config, "model": model, "diff": {}, "reason": "t"})
        await heard.until("the pool", lambda: heard.alive(1) is True)
        assert await checker.wait_for_subscriber(topic(1), 10)  # checkd listens

        # docs/bus.md's one-liner takes the real server out of the pool
        await _ctl_publish(rt, topic(1), "ok=false", "reason=HTTP 503")
        await heard.until("the external failure", lambda: heard.alive(1) is False)
        assert (heard.external(1) or {}).get("reason") == "HTTP 503"

        # an ok that is fresh for half a second brings it back; then it goes stale
        name = topic(1).removeprefix("health.")
        checker.publish(topic(1), {"name": name, "ok": True, "ttl": 0.5})
        await heard.until("the server back", lambda: heard.alive(1) is True)
        await heard.until("staleness", lambda: heard.logged("checkd.external.stale"))
        await heard.until("the stale server out", lambda: heard.alive(1) is False)

        # bad and unknown verdicts are logged with their sender, and change nothing
        checker.publish(topic(1), {"name": "rs:elsewhere", "ok": True})
        checker.publish(topic(9), {"name": topic(9).removeprefix("health."), "ok": True})
        await heard.until("the refusal", lambda: heard.logged("checkd.external.refused"))
        await heard.until("the unknown", lambda: heard.logged("checkd.external.unknown"))
        refused = heard.logged("checkd.external.refused")[0]
        # (on the bus a log field named like an envelope key gets a trailing underscore)
        assert (refused["src_"], refused["pid_"]) == ("my-checker", os.getpid())
        assert heard.alive(1) is False
        # the server with a configured checker (on a closed port) has both in its list
        checker.publish(topic(2), {"name": topic(2).removeprefix("health."), "ok": True})
        await heard.until("both checkers", lambda: heard.external(2) is not None)
        kinds = [c["kind"] for c in heard.rs[f"check.rs.{KEY}/198.51.100.2:tcp:80"]["checkers"]]
        assert kinds == ["TCP_CHECK", "EXTERNAL"]
    finally:
        pump.cancel()
        sub.close()
        await checker.close()
        await core_pub.close()
        ctx.term()
