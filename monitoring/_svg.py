"""Small server-side SVG line charts for the KPI page and the HTML report (no plotting library, no script).

The SVG uses presentation attributes only (no ``style`` elements or attributes, no script), so the
copilot's Content-Security-Policy allows it as a ``data:`` image, and every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

__all__ = ["PALETTE", "line_chart"]

PALETTE = ("#4f46e5", "#16a34a", "#d97706", "#db2777", "#0891b2", "#7c3aed")
_W, _H = 560, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 14, 30, 40


def _nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * 10**exponent >= value * (1 - 1e-9):
            return float(step * 10**exponent)
    return float(10 ** (exponent + 1))


def line_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
    y_max: float | None = None,
    y_min: float | None = None,
    markers: Sequence[int] = (),
) -> str:
    """An SVG line chart: one line per series over the x labels (gaps where a value is None).

    ``markers`` are x indexes to flag (e.g. windows with a drift alert) with a red dot on the axis.
    """
    values = [v for vs in series.values() for v in vs if v is not None]
    low = y_min if y_min is not None else min([0.0, *values])
    top = y_max if y_max is not None else max(values, default=1.0)
    if top <= low:
        top = low + 1.0
    step = _nice((top - low) / 4)
    ticks = max(1, math.ceil((top - low) / step - 1e-9))
    high = low + step * ticks
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return _LEFT + (width * (i + 0.5) / n)

    def y(v: float) -> float:
        return _TOP + height * (1 - (v - low) / (high - low))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'font-family="system-ui, sans-serif" font-size="11" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="18" font-size="13" font-weight="600" fill="#0f172a">{escape(title)}</text>',
    ]
    for k in range(ticks + 1):
        tick = low + step * k
        yy = y(tick)
        out.append(f'<line x1="{_LEFT}" y1="{yy:.1f}" x2="{_W - _RIGHT}" y2="{yy:.1f}" stroke="#e2e8f0"/>')
        out.append(
            f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#64748b">{escape(y_format(tick))}</text>'
        )
    every = max(1, math.ceil(n / 8))
    for i, label in enumerate(labels):
        if i % every == 0 or i == n - 1:
            out.append(
                f'<text x="{x(i):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" fill="#64748b">{escape(label)}</text>'
            )
    for i in markers:
        if 0 <= i < n:
            out.append(f'<circle cx="{x(i):.1f}" cy="{_TOP + height:.1f}" r="4" fill="#b91c1c"/>')
    legend_x = _LEFT
    for j, (name, vs) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>')
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(series) > 1:
            ly = _H - 10
            out.append(f'<rect x="{legend_x}" y="{ly - 8}" width="10" height="10" rx="2" fill="{color}"/>')
            out.append(f'<text x="{legend_x + 14}" y="{ly + 1}" fill="#334155">{escape(name)}</text>')
            legend_x += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)
