"""Bar charts as inline SVG, drawn on the server.

Deployments may be offline, so the admin loads no charting library from anywhere: the
page carries the drawing itself. Each chart is an accessible image (role="img", a
<title> and a <desc> that says the totals), each bar has a <title> that browsers show
on hover and screen readers read, and every text in it is escaped.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: One colour per series, in order; they repeat after the last one.
PALETTE = ("#417690", "#d4893a", "#5b9a68", "#b0483f", "#7b61a8", "#3f9fb3", "#8c6d4f", "#c75d9a")
LEFT, RIGHT, TOP, BOTTOM, LEGEND = 44, 12, 12, 28, 22


@dataclass(frozen=True)
class Series:
    """One stacked layer: a name (the legend's) and a value per label."""

    name: str
    values: Sequence[int]


def nice_scale(largest: int, ticks: int = 4) -> tuple[int, int]:
    """The top of the y axis and the step between its gridlines: whole numbers of the
    form 1, 2 or 5 times a power of ten, so that the labels read well."""
    if largest <= 0:
        return 1, 1
    rough = largest / ticks
    power = 10 ** max(0, math.floor(math.log10(rough)))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return step * math.ceil(largest / step), step


def stacked_bars(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series],
                 *, width: int = 760, height: int = 260, label_every: int = 1,
                 unit: str = "messages") -> SafeString:
    """An SVG of one bar per label, each stacked from the series' values for it.

    `label_every` writes every n-th label under the x axis, counted from the last (the
    current hour or day), and every bar keeps its own <title>; `chart_id` prefixes the
    ids that the <title> and <desc> are referred by.
    """
    totals = ([sum(values) for values in zip(*(s.values for s in series), strict=True)]
              or [0] * len(labels))
    top, step = nice_scale(max(totals, default=0))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM - LEGEND
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.72, 1.0)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    summary = f"{sum(totals)} {unit} in all" + "".join(
        f"; {s.name}: {sum(s.values)}" for s in series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(summary)}</desc>',
        '<g class="grid">',
    ]
    for tick in range(0, top + 1, step):
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
                     f'text-anchor="end">{tick}</text>')
    parts.append("</g>")
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{escape(one.name)}" fill="{colour}">')
        for n, (label, value) in enumerate(zip(labels, one.values, strict=True)):
            if value <= 0:
                continue
            below = sum(s.values[n] for s in series[:index])
            x = LEFT + n * slot + (slot - bar_w) / 2
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y(below + value):.1f}" width="{bar_w:.1f}" '
                f'height="{y(below) - y(below + value):.1f}"><title>{escape(label)}: '
                f'{value} {escape(unit)} on {escape(one.name)}</title></rect>')
        parts.append("</g>")
    parts.append(f'<g class="axis"><line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(0):.1f}" '
                 f'y2="{y(0):.1f}"/>')
    for n, label in enumerate(labels):
        if (len(labels) - 1 - n) % label_every == 0:
            parts.append(f'<text class="label" x="{LEFT + (n + 0.5) * slot:.1f}" '
                         f'y="{y(0) + 16:.1f}" text-anchor="middle">{escape(label)}</text>')
    parts.append("</g>")
    parts.append(f'<g class="legend" transform="translate({LEFT} {height - 6})">')
    for index, one in enumerate(series):
        parts.append(f'<rect x="{index * 170}" y="-10" width="10" height="10" '
                     f'fill="{PALETTE[index % len(PALETTE)]}"/>'
                     f'<text x="{index * 170 + 14}" y="0">{escape(one.name)}</text>')
    if not series:
        parts.append(f'<text x="0" y="0">No {escape(unit)} in this period.</text>')
    parts.append("</g></svg>")
    return mark_safe("".join(parts))
