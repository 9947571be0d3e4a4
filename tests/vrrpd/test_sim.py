"""Multi-router simulation in virtual time (see tests/vrrpd/sim.py).

Set VRRPD_SIM_EXAMPLES to run more hypothesis examples (a deeper soak than the default).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vrrpd.sim import Segment, measure_takeover
from vrrpd.machine import (
    FaultChanged,
    InstanceParams,
    PriorityChanged,
    Shutdown,
    Startup,
    State,
)

_SCALE = int(os.environ.get("VRRPD_SIM_EXAMPLES", "0")) or None


def _examples(default: int) -> int:
    return _SCALE or default


def _params(
    i: int, prio: int, interval_cs: int, version: int, preempt: bool = True
) -> InstanceParams:
    return InstanceParams(
        name=f"r{i}",
        vrid=51,
        version=version,
        primary_address=IPv4Address(f"192.0.2.{10 + i}"),
        priority=prio,
        interval_cs=interval_cs,
        preempt=preempt,
    )


_perturbation = st.tuples(
    st.floats(0, 1),  # when, as a fraction of the chaos phase
    st.integers(0, 3),  # which router (modulo n)
    st.sampled_from(["crash", "restart", "stop", "priority", "link_down", "link_up"]),
    st.integers(1, 254),  # new priority for "priority"
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    version = draw(st.sampled_from([2, 3]))
    interval_cs = 100 if version == 2 else draw(st.sampled_from([100, 10, 3]))
    n = draw(st.integers(2, 4))
    return {
        "version": version,
        "interval_cs": interval_cs,
        "priorities": draw(st.lists(st.integers(1, 254), min_size=n, max_size=n)),
        "starts": draw(st.lists(st.floats(0, 3), min_size=n, max_size=n)),
        "loss": draw(st.sampled_from([0.0, 0.1, 0.3, 0.6])),
        "delay": draw(st.floats(0, 0.3)),
        "perturbations": draw(st.lists(_perturbation, max_size=8)),
        "seed": draw(st.integers(0, 2**32)),
    }


def _one_master_with_top_priority(seg: Segment) -> None:
    masters = seg.masters()
    assert len(masters) == 1, [(r.name, r.machine.state) for r in seg.routers.values()]
    alive = [r for r in seg.routers.values() if r.alive]
    top = max(r.machine.priority for r in alive)
    assert masters[0].machine.priority == top
    assert seg.vip_holders() == masters


@settings(max_examples=_examples(60), deadline=None)
@given(scenarios())
def test_converges_to_one_master_with_highest_priority(sc: dict[str, Any]) -> None:
    interval = int(sc["interval_cs"]) / 100
    version = int(sc["version"])
    priorities: list[int] = sc["priorities"]
    starts: list[float] = sc["starts"]
    seg = Segment(
        seed=int(sc["seed"]),
        loss=float(sc["loss"]),
        delay=(0.0, float(sc["delay"]) * interval),
    )
    n = len(priorities)
    for i, prio in enumerate(priorities):
        seg.add(_params(i, prio, int(sc["interval_cs"]), version))
        seg.at(starts[i] * interval, f"r{i}", Startup())
    chaos = 30 * interval
    for frac, idx, kind, prio in sc["perturbations"]:
        name = f"r{idx % n}"
        when = frac * chaos
        if kind == "priority":
            seg.at(when, name, PriorityChanged(prio, "simulated tracker"))
        elif kind == "stop":
            seg.at(when, name, Shutdown())
        elif kind in ("link_down", "link_up"):
            seg.at(when, name, FaultChanged.interface("eth0", up=kind == "link_up"))
        else:
            seg.at(when, name, kind)
    seg.run_until(chaos)
    # Chaos over: the wire becomes lossless, links come up, stopped or crashed routers restart.
    seg.loss = 0.0
    for router in seg.routers.values():
        if not router.alive or router.machine.state is State.INIT:
            seg.at(chaos, router.name, "restart")
        else:
            seg.at(chaos, router.name, FaultChanged.interface("eth0", up=True))
    settle = chaos + 12 * interval
    seg.run_until(settle)
    _one_master_with_top_priority(seg)
    seg.run_until(settle + 12 * interval, check=_one_master_with_top_priority)
    # Every transition in the whole run carried a cause matching its event (checked by the
    # harness as it ran); and there were some.
    assert seg.transitions


@settings(max_examples=_examples(40), deadline=None)
@given(
    st.sampled_from([100, 10]),
    st.floats(0, 0.2),
    st.floats(4, 10),  # r1 starts once r0 is master (its MDI is 3.61 intervals)
    st.integers(101, 254),
)
def test_nopreempt_router_never_takes_over_a_live_master(
    interval_cs: int, delay: float, later: float, high: int
) -> None:
    interval = interval_cs / 100
    seg = Segment(delay=(0.0, delay * interval))
    seg.add(_params(0, 100, interval_cs, 3))
    seg.add(_params(1, high, interval_cs, 3, preempt=False))
    seg.at(0.0, "r0", Startup())
    seg.at(later * interval, "r1", Startup())
    seg.run_until(60 * interval)
    assert [r.name for r in seg.masters()] == ["r0"]
    assert not [t for t in seg.transitions if t.router == "r1" and t.new is State.MASTER]
    # It is still a backup: when the master dies it takes over.
    seg.at(60 * interval, "r0", "crash")
    seg.run_until(70 * interval)
    assert [r.name for r in seg.masters()] == ["r1"]


def test_preempting_router_takes_over_after_its_own_master_down_interval() -> None:
    seg = Segment()
    seg.add(_params(0, 100, 100, 3))
    seg.add(_params(1, 200, 100, 3))
    seg.at(0.0, "r0", Startup())
    seg.at(20.0, "r1", Startup())
    seg.run_until(40.0)
    (takeover,) = [t for t in seg.transitions if t.router == "r1" and t.new is State.MASTER]
    # It starts in BACKUP, discards the lower master's adverts and waits its full MDI.
    assert takeover.time == pytest.approx(20.0 + 3 + 56 / 256, abs=1e-9)
    assert [r.name for r in seg.masters()] == ["r1"]
    (stepped,) = [t for t in seg.transitions if t.router == "r0" and t.new is State.BACKUP][-1:]
    assert stepped.time == pytest.approx(takeover.time, abs=1e-9)


@settings(max_examples=_examples(40), deadline=None)
@given(
    st.tuples(st.sampled_from([2, 3]), st.sampled_from([1, 3, 10, 100, 255])),
    st.tuples(st.integers(3, 254), st.integers(2, 250)),
    st.tuples(st.floats(0, 0.25), st.floats(0, 1)),
    st.booleans(),
)
def test_takeover_happens_exactly_at_master_down_interval(
    timing: tuple[int, int],
    prios: tuple[int, int],
    lags: tuple[float, float],
    graceful: bool,
) -> None:
    version, interval_cs = timing
    if version == 2:
        interval_cs = 100
    p1, gap = prios
    delay_frac, phase = lags
    p0 = 255 if p1 == 254 else min(254, p1 + 1 + gap % 50)
    p2 = max(1, p1 - gap)
    interval = interval_cs / 100
    _seg, t = measure_takeover(
        priorities=(p0, p1, p2) if p2 < p1 else (p0, p1),
        interval_cs=interval_cs,
        version=version,
        delay=delay_frac * interval,
        fail_at=(20 + phase) * interval,
        graceful=graceful,
    )
    assert t.detection == pytest.approx(t.expected_interval, abs=1e-9)
    skew = (256 - p1) / 256 * (interval if version == 3 else 1.0)
    if graceful:
        assert t.expected_interval == pytest.approx(skew, abs=1e-6)
    else:
        assert t.expected_interval == pytest.approx(3 * interval + skew, abs=1e-6)
