"""The benchmark plots, drawn from a result file (bench/result_file.py) with bench/svg_chart.py.

    .venv/bin/python bench/charts.py [bench/results/latest.json] [--out docs]

Four SVG files, each drawn only when the benches it needs succeeded:

* ``failover.svg``: each daemon's median takeover minus the protocol's interval, per scenario
  (bench/failover.py);
* ``scale-cpu.svg``: group CPU of both nodes against the number of instances at advert_int
  0.1 s, both daemons (every ``scale-N`` run of bench/scale.py);
* ``memory.svg``: PSS per process, stacked, per daemon and instance count (bench/footprint.py),
  with issue #15's targets;
* ``startup.svg``: launch to first advert per daemon and instance count, with the 0.5 s target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from result_file import load, ok_figures
from svg_chart import Reference, Series, bar_chart, line_chart

MIB_PER_MB = 1 / 1.048576
LABELS = {"ours": "pykeepalived", "ours-exec": "pykeepalived, exec'd", "keepalived": "keepalived"}
DAEMONS = ("pykeepalived", "keepalived")  # scale.py's labels


def failover(doc: dict[str, Any]) -> str | None:
    found = ok_figures(doc, "failover.py")
    if not found:
        return None
    scenarios = found[-1][1]["scenarios"]
    daemons = [d for d in ("ours", "keepalived") if any(d in s["daemons"] for s in scenarios)]
    categories = [f"{s['name']} (theory {s['theory_s'] * 1000:.0f} ms)" for s in scenarios]
    series = [
        Series(
            LABELS[d],
            [
                (s["daemons"][d]["median_s"] - s["theory_s"]) * 1000 if d in s["daemons"] else None
                for s in scenarios
            ],
        )
        for d in daemons
    ]
    return bar_chart(
        "Failover: takeover minus the theoretical interval (median)",
        categories,
        series,
        "ms over theory",
        [Reference(3.0, "target +3 ms")],
    )


def scale_cpu(doc: dict[str, Any]) -> str | None:
    runs = sorted((f["instances"], f) for _, f in ok_figures(doc, "scale.py"))
    if not runs:
        return None
    xs = [float(n) for n, _ in runs]
    series = [
        Series(
            label,
            [
                100 * f["daemons"][label]["cpu_share"] if label in f["daemons"] else None
                for _, f in runs
            ],
        )
        for label in DAEMONS
    ]
    return line_chart(
        "Group CPU of both nodes at advert_int 0.1 s (median, % of one core)",
        xs,
        series,
        "instances",
        "% of one core",
    )


def _footprint_groups(doc: dict[str, Any]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    found = ok_figures(doc, "footprint.py")
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in found[-1][1]["runs"] if found else []:
        groups.setdefault((run["daemon"], run["instances"]), []).append(run)
    order = list(LABELS)
    return dict(
        sorted(
            groups.items(),
            key=lambda kv: (kv[0][1], order.index(kv[0][0]) if kv[0][0] in order else 9),
        )
    )


def memory(doc: dict[str, Any]) -> str | None:
    groups = _footprint_groups(doc)
    if not groups:
        return None
    categories = [f"{LABELS.get(d, d)}, {n} inst." for d, n in groups]
    processes: list[str] = []
    for runs in groups.values():
        for run in runs:
            processes += [p for p in run["pss_kib"] if p not in processes]
    series = [
        Series(
            process,
            [
                statistics.median(r["pss_kib"].get(process, 0) for r in runs) / 1024
                if any(process in r["pss_kib"] for r in runs)
                else None
                for runs in groups.values()
            ],
        )
        for process in processes
    ]
    return bar_chart(
        "Memory: PSS per process, stacked (median, MiB)",
        categories,
        series,
        "MiB",
        [
            Reference(60 * MIB_PER_MB, "60 MB: 1 instance"),
            Reference(90 * MIB_PER_MB, "90 MB: 255"),
        ],
        stacked=True,
    )


def startup(doc: dict[str, Any]) -> str | None:
    groups = _footprint_groups(doc)
    if not groups:
        return None
    counts = sorted({n for _, n in groups})
    daemons = [d for d in LABELS if any(d == g[0] for g in groups)]
    series = [
        Series(
            LABELS[d],
            [
                statistics.median(r["startup_s"] for r in groups[(d, n)])
                if (d, n) in groups
                else None
                for n in counts
            ],
        )
        for d in daemons
    ]
    return bar_chart(
        "Start-up: launch to the first advert on the wire (median)",
        [f"{n} instance{'s' if n != 1 else ''}" for n in counts],
        series,
        "s",
        [Reference(0.5, "target 0.5 s")],
    )


CHARTS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "failover.svg": failover,
    "scale-cpu.svg": scale_cpu,
    "memory.svg": memory,
    "startup.svg": startup,
}


def write_all(doc: dict[str, Any], directory: Path) -> list[Path]:
    """Draw every chart the result file has figures for; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        svg = draw(doc)
        if svg is not None:
            path = directory / name
            path.write_text(svg)
            written.append(path)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root = Path(__file__).resolve().parent
    ap.add_argument("result", type=Path, nargs="?", default=root / "results" / "latest.json")
    ap.add_argument("--out", type=Path, default=root.parent / "docs")
    args = ap.parse_args()
    for path in write_all(load(args.result), args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
