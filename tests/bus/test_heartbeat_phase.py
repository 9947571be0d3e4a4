"""Heartbeats keep a place in the second per component, so the group's beats are spread out
however close together the components started (forked from one image: milliseconds apart).
netd reads a gap in bus traffic longer than ``BUS_SILENT_AFTER`` as a silent bus and then holds
the leases of a vrrpd that is gone; heartbeats bunched together left such a gap every second."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.component import HEARTBEAT_INTERVAL, beat_phase, next_beat
from netd.leases import BUS_SILENT_AFTER
from watchdog.children import START_ORDER

GROUP = (*START_ORDER, "watchdog")


def test_the_group_s_beats_leave_no_gap_netd_would_read_as_a_silent_bus() -> None:
    phases = sorted(beat_phase(name) for name in GROUP)
    gaps = [b - a for a, b in itertools.pairwise(phases)]
    gaps.append(phases[0] + HEARTBEAT_INTERVAL - phases[-1])  # round the clock
    assert max(gaps) < BUS_SILENT_AFTER / 2, dict(zip(GROUP, map(beat_phase, GROUP), strict=True))


@given(now=st.floats(0, 1e6), name=st.sampled_from(GROUP))
def test_the_next_beat_falls_on_the_component_s_phase_half_to_one_and_a_half_intervals_later(
    now: float, name: str
) -> None:
    phase = beat_phase(name)
    at = next_beat(now, phase)
    assert now + HEARTBEAT_INTERVAL / 2 <= at < now + 1.5 * HEARTBEAT_INTERVAL
    off = (at - phase) % HEARTBEAT_INTERVAL
    assert min(off, HEARTBEAT_INTERVAL - off) < 1e-6


def test_once_in_phase_a_component_beats_every_interval() -> None:
    phase = beat_phase("vrrpd")
    at = next_beat(100.0, phase)
    assert next_beat(at, phase) == pytest.approx(at + HEARTBEAT_INTERVAL)
