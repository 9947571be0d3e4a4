"""Draw docs/failover.svg from the failover table in docs/benchmarks.md (no plotting library).

    .venv/bin/python bench/plot.py docs/benchmarks.md docs/failover.svg

The bars are each daemon's median takeover minus the theoretical interval, in milliseconds, so
"how far from the protocol's limit" is what the eye compares.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_ROW = re.compile(
    r"^\| (?P<name>[^|]+?) \| (?P<theory>[\d.]+) ms \| (?P<ours>[\d.]+) / [\d.]+ \| "
    r"(?P<ka>[\d.]+) / [\d.]+ \|"
)
W, BAR, GAP, LEFT, TOP, SCALE = 720, 18, 26, 250, 40, 60.0  # SCALE: pixels per millisecond


def rows(markdown: str) -> list[tuple[str, float, float]]:
    out = []
    for line in markdown.splitlines():
        m = _ROW.match(line)
        if m:
            theory = float(m["theory"])
            out.append((m["name"], float(m["ours"]) - theory, float(m["ka"]) - theory))
    return out


def svg(data: list[tuple[str, float, float]]) -> str:
    height = TOP + len(data) * (2 * BAR + GAP) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{LEFT}" y="20" font-weight="bold">Takeover minus the theoretical '
        "interval (median, ms)</text>",
    ]
    y = TOP
    for name, ours, ka in data:
        parts.append(f'<text x="{LEFT - 8}" y="{y + BAR + 4}" text-anchor="end">{name}</text>')
        for value, colour, label in (
            (ours, "#2b6cb0", "pykeepalived"),
            (ka, "#a0a0a0", "keepalived"),
        ):
            width = max(1.0, value * SCALE)
            parts.append(
                f'<rect x="{LEFT}" y="{y}" width="{width:.1f}" height="{BAR - 2}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{LEFT + width + 6:.1f}" y="{y + BAR - 6}">{label} +{value:.1f} ms</text>'
            )
            y += BAR
        y += GAP
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    data = rows(source.read_text())
    if not data:
        print(f"no failover table rows found in {source}", file=sys.stderr)
        return 1
    target.write_text(svg(data))
    print(f"wrote {target} ({len(data)} scenarios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
