"""Inline SVG bar charts for the HTML report: no script, no external asset, readable in print."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 680, 240
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 48, 56, 34


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def bar_chart(
    chart_id: str, title: str, bars: Sequence[tuple[str, float]], *, unit: str, top: float | None = None
) -> str:
    """An SVG bar chart of (label, value) bars; each bar carries `data-label` and `data-value` for checks."""
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 8, HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    peak = top if top is not None else max((v for _, v in bars), default=0.0) or 1.0
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN_LEFT}" y="16" class="chart-title">{escape(title)} ({escape(unit)})</text>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{WIDTH - 8}" y2="{MARGIN_TOP + plot_h}" '
        'class="axis"/>',
        f'<text x="{MARGIN_LEFT - 4}" y="{MARGIN_TOP + 8}" text-anchor="end" class="tick">{_fmt(peak)}</text>',
        f'<text x="{MARGIN_LEFT - 4}" y="{MARGIN_TOP + plot_h}" text-anchor="end" class="tick">0</text>',
    ]
    if not bars:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="tick">none in the period</text>'
        )
    for i, (label, value) in enumerate(bars):
        h = plot_h * min(value, peak) / peak
        w = min(slot * 0.7, 64.0)
        x = MARGIN_LEFT + i * slot + (slot - w) / 2
        y = MARGIN_TOP + plot_h - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'data-label="{escape(label)}" data-value="{value:g}">'
            f"<title>{escape(label)}: {_fmt(value)} {escape(unit)}</title></rect>"
        )
        if len(bars) <= 24:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="tick">{_fmt(value)}</text>'
            )
        cx, cy = x + w / 2, MARGIN_TOP + plot_h + 12
        parts.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" transform="rotate(-35 {cx:.1f} {cy:.1f})" '
            f'class="tick">{escape(label[:18])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
