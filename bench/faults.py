"""Network-fault scenarios on a three-node lab: recovery times, dual-master windows, take-overs.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/faults.py [--daemon both|pykeepalived|keepalived]
        [--variant v3-1s --variant v2-1s ...] [--json FILE]

For each variant (VRRPv3 at 1 s, VRRPv2 at 1 s, VRRPv3 at 0.1 s) and each daemon (pykeepalived,
Debian's keepalived 2.2.7; both by default, in the same run) a fresh lab of three nodes
(priorities 150, 120, 100) and an observer runs every scenario of tests/netfaults.py in turn,
exactly as tests/vrrpd/test_network_faults.py does (the same checks; a violated one is printed
as a failure). Printed per scenario: the transitions it caused, the stretches with two MASTERs
(how many, the longest), how much longer than its master-down timer the earliest take-over
waited (from the last advert that re-armed it, kernel receive stamps; a take-over before the
timer expired fails the scenario), how many split brains were logged (one per dual-master
stretch and other master the higher master heard; each one heard must be logged, or the
scenario fails; a stretch whose higher master heard nothing from the other has none), and the
time from the fault's end until node 0 alone is MASTER, alone holds the VIP and alone answers
the observer's ARP (that last check polls every 0.2 s and ARP waits 0.3 s, so the figure is an
upper bound).

After each table: the **take-over gap** of every take-over the timer (not a priority-0 advert
or a start-up) caused — from the last advert the new master heard from the old one to its own
first advert, both kernel stamps on its eth0 — as the median and range of its excess over the
theoretical master-down interval of the node that took over (3 x advert_int + skew).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the bench modules

from result_file import write_figures

from tests.fault_daemons import DAEMONS
from tests.netfaults import SCENARIOS, FaultLab, Outcome
from tests.vrrpd.test_network_faults import VARIANTS, fault_lab


def row(name: str, outcome: Outcome | str) -> str:
    if isinstance(outcome, str):
        return f"  {name:<38} FAILED: {outcome}"
    windows = outcome.dual_master
    worst = f"{max(windows):6.2f} s" if windows else "     -  "
    # How much longer than its timer the earliest take-over waited (never negative: checked)
    late = [t.waited - t.required for t in outcome.takeovers]
    timer = f"timer +{min(late) * 1000:4.0f} ms" if late else "timer      -  "
    return (
        f"  {name:<38} {len(outcome.transitions):>3} transitions  "
        f"dual-master {len(windows)} x, longest {worst}  {timer}  "
        f"split brains logged {outcome.split_brains_heard}  recovered in {outcome.recovery:5.2f} s"
    )


def figures(name: str, outcome: Outcome | str) -> dict[str, Any]:
    if isinstance(outcome, str):
        return {"scenario": name, "failed": outcome}
    return {
        "scenario": name,
        "transitions": len(outcome.transitions),
        "dual_master_s": outcome.dual_master,
        "split_brains_logged": outcome.split_brains_heard,
        "recovery_s": outcome.recovery,
        "takeovers": [
            {"node": t.node, "waited_s": t.waited, "timer_s": t.required, "gap_s": t.gap}
            for t in outcome.takeovers
        ],
    }


def gaps(lab: FaultLab, outcomes: list[Outcome]) -> list[float]:
    """Each timer take-over's gap minus its node's master-down interval (seconds)."""
    return [
        t.gap - lab.master_down(t.node)
        for out in outcomes
        for t in out.takeovers
        if t.gap is not None and t.by_advert and t.required == lab.master_down(t.node)
    ]


def run(variant: str, daemon: str) -> dict[str, Any]:
    lab = fault_lab(variant, daemon)
    rows, done = [], []
    try:
        for name, scenario in SCENARIOS.items():
            try:
                out: Outcome | str = scenario(lab)
            except AssertionError as exc:
                out = str(exc).splitlines()[0]
                lab.restore()
            print(row(name, out), flush=True)
            rows.append(figures(name, out))
            if isinstance(out, Outcome):
                done.append(out)
        excess = gaps(lab, done)
        node1 = [t.gap for o in done for t in o.takeovers if t.node == 1 and t.gap and t.by_advert]
        summary: dict[str, Any] = {"takeovers": len(excess)}
        if excess:
            summary |= {
                "gap_excess_median_s": statistics.median(excess),
                "gap_excess_min_s": min(excess),
                "gap_excess_max_s": max(excess),
            }
        if node1:
            summary |= {
                "node1_gap_median_s": statistics.median(node1),
                "node1_master_down_s": lab.master_down(1),
            }
        print(f"  take-over gap ({daemon}): " + describe(summary), flush=True)
        return {"scenarios": rows, "gap": summary}
    finally:
        lab.close()


def describe(s: dict[str, Any]) -> str:
    if not s["takeovers"]:
        return "no timer take-over seen"
    text = (
        f"{s['takeovers']} timer take-overs, gap - master-down interval: median "
        f"{s['gap_excess_median_s'] * 1000:+.0f} ms "
        f"(range {s['gap_excess_min_s'] * 1000:+.0f} .. {s['gap_excess_max_s'] * 1000:+.0f} ms)"
    )
    if "node1_gap_median_s" in s:
        text += (
            f"; node 1: median gap {s['node1_gap_median_s']:.3f} s "
            f"for a {s['node1_master_down_s']:.3f} s interval"
        )
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    ap.add_argument("--daemon", choices=[*DAEMONS, "both"], default="both")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    daemons = list(DAEMONS) if args.daemon == "both" else [args.daemon]
    out: dict[str, Any] = {}
    for variant in args.variant or list(VARIANTS):
        version, interval = VARIANTS[variant]
        skew = (256 - 120) / 256 * float(interval)
        for daemon in daemons:
            print(
                f"{daemon}: VRRPv{version}, advert_int {interval} s "
                f"(node 1's master-down interval {3 * float(interval) + skew:.2f} s)"
            )
            out[f"{variant}/{daemon}"] = run(variant, daemon)
    write_figures(args.json, out)


if __name__ == "__main__":
    main()
