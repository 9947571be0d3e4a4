"""``pykeepalivedctl demo`` end to end, and the pure pieces it measures with."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vrrp import VRRP, VRRPv3

from core import loads
from ctl.demo import DemoOptions, NodeView, View, node_config, priorities, render_table
from ctl.takeover import (
    WireAdvert,
    master_down_interval,
    measure_takeover,
    parse_frame,
    skew_time,
)

REPO = Path(__file__).resolve().parents[2]

# ---- the wire decoder, checked against scapy as the independent reference -------------------


@given(
    vrid=st.integers(1, 255),
    priority=st.integers(0, 255),
    interval=st.integers(1, 255),
    host=st.integers(1, 254),
)
def test_parse_frame_reads_scapy_v2_adverts(
    vrid: int, priority: int, interval: int, host: int
) -> None:
    frame = bytes(
        Ether(dst="01:00:5e:00:00:12")
        / IP(src=f"192.0.2.{host}", dst="224.0.0.18", ttl=255)
        / VRRP(vrid=vrid, priority=priority, adv=interval, addrlist=["192.0.2.100"])
    )
    advert = parse_frame(frame, 12.5)
    assert advert == WireAdvert(12.5, f"192.0.2.{host}", vrid, 2, priority, float(interval))


@given(vrid=st.integers(1, 255), priority=st.integers(0, 255), cs=st.integers(1, 4095))
def test_parse_frame_reads_scapy_v3_adverts(vrid: int, priority: int, cs: int) -> None:
    v4 = bytes(
        Ether()
        / IP(src="198.51.100.7", dst="224.0.0.18", ttl=255)
        / VRRPv3(vrid=vrid, priority=priority, adv=cs, addrlist=["198.51.100.1"])
    )
    v6 = bytes(
        Ether()
        / IPv6(src="2001:db8::7", dst="ff02::12", hlim=255)
        / VRRPv3(vrid=vrid, priority=priority, adv=cs, addrlist=["2001:db8::1"])
    )
    assert parse_frame(v4, 1.0) == WireAdvert(1.0, "198.51.100.7", vrid, 3, priority, cs / 100)
    assert parse_frame(v6, 1.0) == WireAdvert(1.0, "2001:db8::7", vrid, 3, priority, cs / 100)


def test_parse_frame_ignores_other_traffic_and_truncation() -> None:
    udp = bytes(Ether() / IP(src="192.0.2.1", dst="192.0.2.2", proto=17) / (b"\0" * 20))
    assert parse_frame(udp, 0.0) is None
    advert = bytes(Ether() / IP(src="192.0.2.1", dst="224.0.0.18") / VRRP(vrid=1))
    assert parse_frame(advert[: -len(bytes(VRRP(vrid=1))) + 4], 0.0) is None
    assert parse_frame(b"\x01\x02", 0.0) is None


# ---- takeover arithmetic --------------------------------------------------------------------


def test_theory_matches_the_rfc_table() -> None:
    # the VRRP RFCs: v2 1 s, prio 100 -> 3.6094 s; v3 10 cs, prio 200 -> 321.9 ms.
    assert master_down_interval(100, 1.0) == pytest.approx(3.6094, abs=1e-4)
    assert master_down_interval(200, 0.1) == pytest.approx(0.3219, abs=1e-4)
    assert skew_time(254, 1.0) == pytest.approx(0.0078, abs=1e-4)


def _adv(ts: float, src: str, priority: int, vrid: int = 51) -> WireAdvert:
    return WireAdvert(ts, src, vrid, 2, priority, 1.0)


def test_takeover_spans_last_old_advert_to_first_new_one() -> None:
    old, new = "192.0.2.10", "192.0.2.11"
    adverts = [_adv(t, old, 150) for t in (1.0, 2.0, 3.0)]
    adverts += [_adv(3.2, "192.0.2.12", 200, vrid=52)]  # another VRID does not count
    assert measure_takeover(adverts, 51, old, since=3.1) is None  # nobody took over yet
    adverts.append(_adv(6.53, new, 120))
    adverts.append(_adv(7.53, new, 120))
    took = measure_takeover(list(reversed(adverts)), 51, old, since=3.1)
    assert took is not None
    assert (took.last_old.ts, took.first_new.src) == (3.0, new)
    assert took.seconds == pytest.approx(3.53)
    assert not took.graceful


def test_graceful_takeover_starts_at_the_priority_zero_advert() -> None:
    old = "192.0.2.10"
    adverts = [_adv(1.0, old, 150), _adv(1.4, old, 0), _adv(1.93, "192.0.2.11", 120)]
    took = measure_takeover(adverts, 51, old, since=1.3)
    assert took is not None and took.graceful
    assert took.seconds == pytest.approx(0.53)


# ---- configs and the view -------------------------------------------------------------------


def test_priorities_decrease_and_stay_valid() -> None:
    assert priorities(3) == [150, 120, 100]
    many = priorities(20)
    assert all(1 <= p <= 254 for p in many)
    assert many == sorted(many, reverse=True)


@pytest.mark.parametrize(("version", "interval"), [(2, 1.0), (3, 0.1)])
def test_generated_config_is_clean_for_our_parser(version: int, interval: float) -> None:
    opts = DemoOptions(vrrp_version=version, advert_int=interval)
    result = loads(node_config("node2", 120, opts), script_env=None)
    assert result.exit_code == 0, result.problems
    (inst,) = result.config.instances
    assert (inst.name, inst.priority, inst.virtual_router_id) == ("VI_1", 120, 51)
    assert inst.advert_int == pytest.approx(interval)
    assert result.config.global_defs.vrrp_version == version


def test_view_waits_for_the_expected_master_and_hides_the_dead() -> None:
    view = View([NodeView(f"node{i + 1}", f"192.0.2.1{i}") for i in range(3)])
    view.nodes[1].state, view.nodes[1].vip = "MASTER", True
    view.nodes[0].state = view.nodes[2].state = "BACKUP"
    assert view.master() == 1
    assert view.master(expected=0) is None  # the preempting node has not won yet
    view.nodes[0].vip = True  # two holders: not converged
    assert view.master() is None
    view.nodes[1].gone = "crashed"
    view.nodes[0].state = "MASTER"
    assert view.master(expected=0) == 0
    table = render_table(view.nodes)
    assert re.search(r"node2\s+192\.0\.2\.11\s+crashed\s+-\s+-", table)
    assert re.search(r"node1\s+192\.0\.2\.10\s+MASTER\s+-?\s*held", table)


# ---- end to end -----------------------------------------------------------------------------

TAKEOVER = re.compile(
    r"takeover: (?P<new>node\d) \((?P<ip>[\d.]+), priority (?P<prio>\d+)\) took over from "
    r"(?P<old>node\d) in (?P<secs>[\d.]+) s \(theory (?P<theory>[\d.]+) s"
)


def _run_demo(*args: str) -> tuple[str, re.Match[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "ctl", "demo", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=100,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    found = TAKEOVER.search(out)
    assert found, out
    lab = re.search(r"lab (pk-[0-9a-f]{6}):", out)
    assert lab, out
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.group(1) not in left, "the demo left namespaces behind"
    return out, found


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_demo_crash_names_the_new_master_and_times_the_master_down_interval() -> None:
    out, found = _run_demo("--crash")
    # node1 (150) is elected and crashed; node2 (120) beats node3 (100) to the takeover.
    assert (found["old"], found["new"], found["ip"], found["prio"]) == (
        "node1",
        "node2",
        "192.0.2.11",
        "120",
    )
    theory = master_down_interval(120, 1.0)
    assert float(found["theory"]) == pytest.approx(theory, abs=1e-3)
    assert float(found["secs"]) == pytest.approx(theory, abs=0.1), out


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_demo_graceful_stop_hands_over_after_the_skew_time() -> None:
    out, found = _run_demo("--graceful", "--nodes", "2")
    assert (found["old"], found["new"]) == ("node1", "node2")
    assert float(found["secs"]) == pytest.approx(skew_time(120, 1.0), abs=0.1), out
