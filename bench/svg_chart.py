"""A small SVG chart writer for the benchmark plots: horizontal bar charts (grouped or stacked)
and line charts, with an axis, ticks, a legend and dashed reference lines (targets, theory).

No plotting library: the plots must be drawable on a bare machine where only the project's
own dependencies are installed, and an SVG is text that diffs and renders on any forge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
FONT = 'font-family="sans-serif" font-size="12"'
CHAR_W = 7.0  # rough width of one character at 12 px, to size labels and legends


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per category (bar) or per point (line); None: no data


@dataclass(frozen=True, slots=True)
class Reference:
    """A dashed line across the plot at ``value`` on the value axis, labelled."""

    value: float
    label: str


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering lo..hi, about ``count`` of them (1, 2 or 5 times 10^k apart)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, y, name))
        x += 14 + CHAR_W * len(name) + 14
    return parts


def _document(width: float, height: float, title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>'
    )
    background = f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>'
    heading = _text(10, 20, title, extra=' font-weight="bold" font-size="14"')
    return "\n".join([head, background, heading, *body, "</svg>"]) + "\n"


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str,
    references: Sequence[Reference] = (),
    stacked: bool = False,
    plot_width: float = 460.0,
) -> str:
    """Horizontal bars, one row per category: a bar per series side by side, or one bar of
    stacked segments (then each row's total is written at its end)."""
    bar = 18.0 if stacked else 14.0
    row = bar + 14 if stacked else bar * len(series) + 14
    left = 20 + CHAR_W * max((len(c) for c in categories), default=4)
    top = 54.0 + 14 * max(len(references) - 1, 0)
    height = top + row * len(categories) + 64
    values = [v for s in series for v in s.values if v is not None]
    totals = [
        sum(s.values[i] or 0.0 for s in series) for i in range(len(categories))
    ] if stacked else values  # fmt: skip
    lo = min([0.0, *values, *(r.value for r in references)])
    hi = max([0.0, *totals, *(r.value for r in references)])
    ticks = nice_ticks(lo, hi * 1.05 if hi > 0 else hi)
    lo, hi = ticks[0], ticks[-1]

    def x(value: float) -> float:
        return left + (value - lo) / (hi - lo) * plot_width

    body = _axis_x(ticks, x, top, top + row * len(categories), unit)
    for i, category in enumerate(categories):
        y = top + i * row + 7
        body.append(_text(left - 8, y + (bar if stacked else row - 14) / 2 + 4, category, "end"))
        start = 0.0
        for k, s in enumerate(series):
            value = s.values[i]
            if value is None:
                continue
            colour = PALETTE[k % len(PALETTE)]
            a, b = (start, start + value) if stacked else (0.0, value)
            top_y = y if stacked else y + k * bar
            tip = f"{s.name}: {_fmt(value)} {unit}"
            body.append(
                f'<rect x="{min(x(a), x(b)):.1f}" y="{top_y:.1f}" width="{abs(x(b) - x(a)):.1f}" '
                f'height="{bar - 2:.1f}" fill="{colour}"><title>{escape(tip)}</title></rect>'
            )
            if not stacked:
                body.append(_text(max(x(a), x(b)) + 4, top_y + bar - 5, _fmt(value)))
            start += value
        if stacked:
            body.append(_text(x(start) + 4, y + bar - 5, _fmt(start)))
    bottom = top + row * len(categories)
    body += _references(references, lambda v: (x(v), x(v)), (top - 4, bottom), vertical=True)
    body += _legend([s.name for s in series], left, bottom + 48)
    return _document(left + plot_width + 90, height, title, body)


def _axis_x(
    ticks: Sequence[float], x: Callable[[float], float], top: float, bottom: float, unit: str
) -> list[str]:
    parts = []
    for t in ticks:
        px = x(t)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 4:.1f}" x2="{px:.1f}" y2="{bottom:.1f}" '
            f'stroke="{"#888" if t == 0 else "#e4e4e4"}"/>'
        )
        parts.append(_text(px, bottom + 16, f"{t:g}", "middle"))
    parts.append(_text(x(ticks[-1]), bottom + 32, unit, "end", ' fill="#555"'))
    return parts


def _references(
    references: Sequence[Reference],
    at: Callable[[float], tuple[float, float]],
    span: tuple[float, float],
    vertical: bool,
) -> list[str]:
    parts = []
    for k, ref in enumerate(references):
        a, b = at(ref.value)
        if vertical:
            # Labels above the plot, one line each, so two close references stay readable.
            x1, y1, x2, y2 = a, span[0] - 14 * k, b, span[1]
            label = _text(a + 3, span[0] - 14 * k, ref.label, extra=' fill="#333"')
        else:
            x1, y1, x2, y2 = span[0], a, span[1], b
            label = _text(span[1] - 3, a - 4, ref.label, "end", ' fill="#333"')
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#333" '
            'stroke-dasharray="5 4"/>'
        )
        parts.append(label)
    return parts


def line_chart(
    title: str,
    xs: Sequence[float],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    references: Sequence[Reference] = (),
    plot_width: float = 480.0,
    plot_height: float = 260.0,
    markers: bool = True,
) -> str:
    """One line with a marker per point for each series, over the shared ``xs``; without
    ``markers`` (long time series) the lines only."""
    left, top = 70.0, 44.0
    values = [v for s in series for v in s.values if v is not None]
    y_ticks = nice_ticks(min([0.0, *values]), max([0.0, *values, *(r.value for r in references)]))
    x_ticks = nice_ticks(min([0.0, *xs]), max([1.0, *xs]))
    x_lo, x_hi, y_lo, y_hi = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * plot_width

    def py(v: float) -> float:
        return top + plot_height - (v - y_lo) / (y_hi - y_lo) * plot_height

    bottom = top + plot_height
    body = _axis_x(x_ticks, px, top, bottom, x_label)
    for t in y_ticks:
        body.append(
            f'<line x1="{left:.1f}" y1="{py(t):.1f}" x2="{left + plot_width:.1f}" '
            f'y2="{py(t):.1f}" stroke="{"#888" if t == 0 else "#e4e4e4"}"/>'
        )
        body.append(_text(left - 6, py(t) + 4, f"{t:g}", "end"))
    body.append(_text(left, top - 8, y_label, extra=' fill="#555"'))
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        points = [(px(a), py(b), b) for a, b in zip(xs, s.values, strict=True) if b is not None]
        if len(points) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b, _ in points)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for a, b, value in points if markers else []:
            body.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(s.name)}: {_fmt(value)}</title></circle>"
            )
            body.append(_text(a + 6, b - 6, _fmt(value), extra=f' fill="{colour}"'))
    body += _references(references, lambda v: (py(v), py(v)), (left, left + plot_width), False)
    body += _legend([s.name for s in series], left, bottom + 52)
    return _document(left + plot_width + 40, bottom + 70, title, body)
