"""Does any process of an idle daemon grow? Memory of each process sampled over minutes.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/steady_memory.py [--instances 1] [--minutes 8] [--every 20]

One node of a fresh lab runs our daemon with the footprint bench's configuration (N instances
that own their VIPs, advert_int 1). From the moment every instance has advertised, every
``--every`` seconds, each process's RSS, PSS and anonymous memory (``/proc/PID/smaps_rollup``,
KiB) is printed as one CSV row; at the end, per process, the growth over the first half of the
run and over the second half, in KiB. A process whose second half is near zero is flat; the
first minutes include start-up work (caches, first reconciles) and are not a leak.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from failover import Ours
from footprint import compiled_bytecode, component, footprint_config

from ctl.capture import AdvertCapture
from ctl.lab import Lab

FIELDS = ("Rss", "Pss", "Anonymous")


def rollup(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    values = {line.split()[0].rstrip(":"): int(line.split()[1]) for line in lines}
    return {f: values[f] for f in FIELDS}


def sample(
    instances: int, seconds: float, every: float
) -> list[tuple[float, dict[str, dict[str, int]]]]:
    rows: list[tuple[float, dict[str, dict[str, int]]]] = []
    with Lab(nodes=1) as lab:
        lab.wait_ready()
        (node,) = lab.nodes
        with AdvertCapture(lab.hub) as cap:
            daemon = Ours(node, footprint_config(instances))
            try:
                vrids: set[int] = set()
                deadline = time.monotonic() + 60
                while len(vrids) < instances and time.monotonic() < deadline:
                    vrids.update(adv.vrid for adv in cap.drain())
                    time.sleep(0.01)
                pids = {component(pid): pid for pid in daemon.pids()}
                names = sorted(pids)
                print("t," + ",".join(f"{n}_{f.lower()}" for n in names for f in FIELDS))
                start = time.monotonic()
                while (now := time.monotonic() - start) <= seconds:
                    cap.drain()  # the capture's buffer is not what is measured
                    row = {n: rollup(pids[n]) for n in names}
                    rows.append((now, row))
                    values = (str(row[n][f]) for n in names for f in FIELDS)
                    print(f"{now:.0f}," + ",".join(values), flush=True)
                    time.sleep(every)
            finally:
                daemon.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--every", type=float, default=20.0)
    args = ap.parse_args()
    compiled_bytecode()
    rows = sample(args.instances, args.minutes * 60, args.every)
    first, middle, last = rows[0][1], rows[len(rows) // 2][1], rows[-1][1]
    print(f"\ngrowth, KiB: first half (0..{rows[len(rows) // 2][0]:.0f} s), second half")
    for name in sorted(first):
        halves = ", ".join(
            f"{f} {middle[name][f] - first[name][f]:+d} / {last[name][f] - middle[name][f]:+d}"
            for f in FIELDS
        )
        print(f"{name:9} {halves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
