"""Horizontal bar charts as inline SVG, drawn on the server: no script, no build step, no network.

Every text that goes into the markup is escaped here; the caller gets a string safe to insert as is.
"""

from __future__ import annotations

from html import escape

COLOURS = [
    "#2b6cb0",
    "#dd6b20",
    "#38a169",
    "#805ad5",
    "#c53030",
]  # one per compared model (at most 5)
LABEL_WIDTH = 210
BAR_WIDTH = 380
ROW = 18


NICE_TOPS = (
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
)  # the axis ends at the first of these the data fits


def axis_top(values: list[float | None]) -> float:
    """The axis maximum: the smallest of :data:`NICE_TOPS` at or above the largest value, so that a
    chart of 0-3% values is not a row of slivers on a 0-100% axis."""
    largest = max((v for v in values if v is not None), default=0.0)
    return next((top for top in NICE_TOPS if largest <= top), 1.0)


def bar_chart(rows: list[tuple[str, list[float | None]]], series: list[str], title: str) -> str:
    """One group of bars per row (a branch), one bar per series (a model), values 0-1 drawn as percentages
    on an axis scaled to the data (:func:`axis_top`); a missing value (no samples) is drawn as a dash.
    With several series the legend lists one per line, so long ids never overlap."""
    per_group = len(series) * ROW + 8
    legend = len(series) * ROW + 6 if len(series) > 1 else 0
    height = legend + len(rows) * per_group + 26
    width = LABEL_WIDTH + BAR_WIDTH + 60
    top_value = axis_top([v for _, values in rows for v in values])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mllzoo-chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for s, name in enumerate(series if len(series) > 1 else []):
        y = 4 + s * ROW
        out.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="10" height="10" fill="{COLOURS[s % len(COLOURS)]}"/>'
            f'<text x="{LABEL_WIDTH + 14}" y="{y + 9}">{escape(name)}</text>'
        )
    for quarter in range(5):
        tick_x = LABEL_WIDTH + BAR_WIDTH * quarter / 4
        label = f"{top_value * quarter / 4:.1%}".replace(".0%", "%")
        out.append(
            f'<line x1="{tick_x:.1f}" y1="{legend}" x2="{tick_x:.1f}" y2="{height - 20}" stroke="#ddd"/>'
            f'<text x="{tick_x:.1f}" y="{height - 6}" text-anchor="middle" fill="#555">{label}</text>'
        )
    for g, (label, values) in enumerate(rows):
        top = legend + g * per_group + 4
        out.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{top + per_group / 2:.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(label)}</text>'
        )
        for s, value in enumerate(values):
            y = top + s * ROW
            if value is None:
                out.append(f'<text x="{LABEL_WIDTH + 4}" y="{y + ROW - 5}" fill="#555">-</text>')
                continue
            w = BAR_WIDTH * max(0.0, min(1.0, value / top_value))
            out.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w:.1f}" height="{ROW - 4}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(series[s])}: {value:.1%}</title></rect>'
                f'<text x="{LABEL_WIDTH + w + 4:.1f}" y="{y + ROW - 6}">{value:.1%}</text>'
            )
    out.append("</svg>")
    return "".join(out)
