"""Network-fault scenarios on a three-node lab: recovery times and dual-master windows.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/faults.py [--variant v3-1s --variant v2-1s ...]

For each variant (VRRPv3 at 1 s, VRRPv2 at 1 s, VRRPv3 at 0.1 s) a fresh lab of three
pykeepalived nodes (priorities 150, 120, 100) and an observer runs every scenario of
tests/netfaults.py in turn, exactly as tests/vrrpd/test_network_faults.py does (the same
checks; a violated one is printed as a failure). Printed per scenario: the transitions it
caused, the longest stretch with two MASTERs (with what the protocol allows: the master-down
interval for a master that cannot be heard, about one advert interval for two that can), and
how much longer than its master-down timer the earliest take-over waited (from the last
advert that re-armed it, kernel receive stamps; a take-over before the timer expired fails
the scenario), how many dual-master stretches had their split brain logged out of how many
there were (a stretch whose higher master heard nothing from the other cannot be), and
the time from the fault's end until node 0 alone is MASTER, alone holds the VIP and alone
answers the observer's ARP (that last check polls every 0.2 s and ARP waits 0.3 s, so the
figure is an upper bound).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from tests.netfaults import SCENARIOS, Outcome
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
        f"dual-master {worst}  {timer}  split brains logged {outcome.split_brains_heard}/"
        f"{len(windows)}  recovered in {outcome.recovery:5.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    args = ap.parse_args()
    for variant in args.variant or list(VARIANTS):
        version, interval = VARIANTS[variant]
        skew = (256 - 120) / 256 * float(interval)
        print(
            f"VRRPv{version}, advert_int {interval} s "
            f"(node 1's master-down interval {3 * float(interval) + skew:.2f} s)"
        )
        lab = fault_lab(variant)
        try:
            for name, scenario in SCENARIOS.items():
                try:
                    print(row(name, scenario(lab)), flush=True)
                except AssertionError as exc:
                    print(row(name, str(exc).splitlines()[0]), flush=True)
                    lab.restore()
        finally:
            lab.close()


if __name__ == "__main__":
    main()
