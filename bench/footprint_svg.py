"""Draw docs/footprint.svg from bench/footprint.py's result file (no plotting library).

    .venv/bin/python bench/footprint_svg.py bench/results/footprint.json docs/footprint.svg

One row per daemon and instance count: the median PSS of each process, stacked (so the bar is
the daemon's total), and the median start-up time beside it. The targets of issue #15 are
drawn as dashed lines: 60 MB for an idle one-instance group, 0.5 s to the first advert.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

LEFT, TOP, ROW, BAR = 190, 50, 34, 20
MEM_W, START_X, START_W = 420, 650, 220
MIB_TARGET, START_TARGET = 60 / 1.048576, 0.5  # 60 MB (issue #15) in MiB
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
LABELS = {"ours": "pykeepalived", "ours-exec": "pykeepalived, exec'd", "keepalived": "keepalived"}


def rows(result: dict[str, Any]) -> list[tuple[str, dict[str, float], float]]:
    """(label, median MiB per process, median start-up s) per daemon and instance count."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for run in result["runs"]:
        groups.setdefault((run["instances"], run["daemon"]), []).append(run)
    out = []
    for (instances, daemon), runs in sorted(groups.items()):
        names = sorted({p for r in runs for p in r["pss_kib"]})
        per = {p: statistics.median(r["pss_kib"].get(p, 0) / 1024 for r in runs) for p in names}
        start = statistics.median(r["startup_s"] for r in runs)
        out.append((f"{LABELS.get(daemon, daemon)}, n={instances}", per, start))
    return out


def svg(data: list[tuple[str, dict[str, float], float]]) -> str:
    mem_max = max([*(sum(p.values()) for _, p, _ in data), MIB_TARGET]) * 1.1
    start_max = max([*(s for _, _, s in data), START_TARGET]) * 1.1
    height = TOP + len(data) * ROW + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{START_X + START_W + 60}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="{LEFT}" y="20" font-weight="bold">PSS per process, stacked (median, MiB)</text>',
        f'<text x="{START_X}" y="20" font-weight="bold">Start-up to first advert (median, s)'
        "</text>",
    ]
    colours: dict[str, str] = {}
    for i, (label, per, start) in enumerate(data):
        y = TOP + i * ROW
        parts.append(f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end">{label}</text>')
        x = float(LEFT)
        for process, mib in per.items():
            colour = colours.setdefault(process, PALETTE[len(colours) % len(PALETTE)])
            w = mib / mem_max * MEM_W
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR}" fill="{colour}">'
                f"<title>{process} {mib:.1f} MiB</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{sum(per.values()):.1f}</text>')
        w = start / start_max * START_W
        parts.append(
            f'<rect x="{START_X}" y="{y}" width="{w:.1f}" height="{BAR}" fill="#9c755f"/>'
            f'<text x="{START_X + w + 4:.1f}" y="{y + 14}">{start:.3f}</text>'
        )
    bottom = TOP + len(data) * ROW
    for x0, value, scale, width, text in (
        (LEFT, MIB_TARGET, mem_max, MEM_W, "60 MB target"),
        (START_X, START_TARGET, start_max, START_W, "0.5 s target"),
    ):
        x = x0 + value / scale * width
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{bottom}" stroke="#333" '
            f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="{bottom + 16}" '
            f'text-anchor="middle">{text}</text>'
        )
    legend_x = LEFT
    for process, colour in colours.items():
        parts.append(
            f'<rect x="{legend_x}" y="{bottom + 24}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{bottom + 33}">{process}</text>'
        )
        legend_x += 14 + 8 * len(process) + 12
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    result = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(svg(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
