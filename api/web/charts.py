"""Charts drawn on the server as SVG, each with the same numbers as an HTML table beside it.

The compliance pages show counts over time (accesses by outcome, break-glass
declarations, a search's results by outcome and by actor). A chart here is
plain markup: no JavaScript draws it, so it shows with scripts off, and it
obeys the pages' Content-Security-Policy, which forbids inline styles: every
colour, size and font is an SVG presentation attribute (``fill=``,
``font-size=``), never a ``style=`` attribute or a ``<style>`` element.

Observable Plot was considered and not used: its runtime injects a
``<style>`` element into the page, which the CSP forbids, and it needs
JavaScript to draw anything at all.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and
``<desc>`` (``aria-labelledby``), with axes, a few ticks and a legend, and
is followed by the same numbers as a ``<table>`` in a ``<details>`` ("Show
the numbers as a table"), so a screen reader or a person who wants the
exact figures reads them there. Colours come from the USWDS palette and each
has at least 3:1 contrast against white (WCAG 2.2, 1.4.11 non-text
contrast); stacked segments are parted by a white line, and the legend and
table name every group, so colour is never the only cue.

Every text (titles, labels, group names) is escaped with ``markupsafe``.
The functions are pure: the same data give the same markup.
"""

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

# USWDS system colours, each at least 3:1 against white (tests/web/test_charts.py checks it).
BLUE = "#005ea2"  # blue-60v
RED = "#b50909"  # red-60v
GRAY = "#71767a"  # gray-50
ORANGE = "#c05600"  # orange-60v
VIOLET = "#54278f"  # violet-70v
GREEN = "#008817"  # green-cool-50v
CYAN = "#00687d"  # cyan-60v
PALETTE = (BLUE, RED, GRAY, ORANGE, VIOLET, GREEN, CYAN)
OUTCOME_COLOURS = {"permitted": BLUE, "refused": RED, "other": GRAY}

INK = "#1b1b1b"  # USWDS ink
GRID = "#dfe1e2"  # base-lighter: gridlines only (decoration; the numbers are in the table)

Series = Sequence[tuple[str, Mapping[str, int]]]


def nice_ticks(top: int, *, most: int = 5) -> list[int]:
    """0 and a few round steps (1, 2 or 5 times a power of ten) reaching at least ``top``."""
    if top <= 0:
        return [0, 1]
    rough = top / most
    power = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    step = max(1, int(step))
    ticks = list(range(0, top + step, step))
    if ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def _slug(text: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "chart"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    return f"cv-chart-{base}-{digest}"


def _groups(series: Series, groups_order: Sequence[str] | None) -> list[str]:
    seen: list[str] = list(groups_order or [])
    for _, counts in series:
        for group in counts:
            if group not in seen:
                seen.append(group)
    return seen


def _colours(groups: list[str], colours: Mapping[str, str] | None) -> dict[str, str]:
    chosen: dict[str, str] = {}
    spare = [c for c in PALETTE if c not in (colours or {}).values()]
    for i, group in enumerate(groups):
        given = (colours or {}).get(group)
        chosen[group] = given if given else (spare[i % len(spare)] if spare else PALETTE[i % len(PALETTE)])
    return chosen


def _fmt(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def table(
    series: Series,
    *,
    caption: str,
    groups: Sequence[str],
    label_header: str = "Period",
) -> Markup:
    """The chart's numbers: one row per label, one column per group, and a total."""
    head = "".join(f'<th scope="col">{escape(g)}</th>' for g in groups)
    rows = []
    for label, counts in series:
        cells = "".join(f"<td>{int(counts.get(g, 0))}</td>" for g in groups)
        total = sum(int(counts.get(g, 0)) for g in groups)
        rows.append(f'<tr><th scope="row">{escape(label)}</th>{cells}<td>{total}</td></tr>')
    return Markup(
        f'<div class="cv-table-wrap" tabindex="0" role="region" aria-label="{escape(caption)}, as a table">'
        '<table class="usa-table usa-table--compact usa-table--borderless">'
        f"<caption>{escape(caption)}</caption>"
        f'<thead><tr><th scope="col">{escape(label_header)}</th>{head}<th scope="col">Total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def bar_chart(
    series: Series,
    *,
    title: str,
    description: str,
    groups_order: Sequence[str] | None = None,
    colours: Mapping[str, str] | None = None,
    stacked: bool = True,
    label_header: str = "Period",
    width: int = 720,
    height: int = 280,
    max_labels: int = 10,
    chart_id: str | None = None,
) -> Markup:
    """A bar per label (stacked, or grouped side by side, by group), then its table.

    ``series`` is ``[(label, {group: count})]`` in the order to draw;
    ``groups_order`` puts groups in a fixed order (legend, stack from the
    bottom, table columns); groups it does not name follow in order of
    appearance. Empty series (or all zeros) draw an empty chart that says so.
    """
    groups = _groups(series, groups_order)
    colour = _colours(groups, colours)
    ident = chart_id or _slug(title)
    totals = [sum(max(0, int(c.get(g, 0))) for g in groups) for _, c in series]
    peaks = [max((max(0, int(c.get(g, 0))) for g in groups), default=0) for _, c in series]
    top = max(totals if stacked else peaks, default=0)
    ticks = nice_ticks(top)
    axis_max = ticks[-1]

    left, right, top_pad, bottom = 48, 12, 40, 44
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    base_y = top_pad + plot_h
    parts: list[str] = []

    # Gridlines and y ticks.
    for tick in ticks:
        y = base_y - tick / axis_max * plot_h
        parts.append(
            f'<line x1="{left}" y1="{_fmt(y)}" x2="{left + plot_w}" y2="{_fmt(y)}" stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{_fmt(y + 4)}" text-anchor="end" font-size="12" fill="{INK}">{tick}</text>'
        )
    # Axes.
    parts.append(f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{base_y}" stroke="{INK}" stroke-width="1"/>')
    parts.append(
        f'<line x1="{left}" y1="{base_y}" x2="{left + plot_w}" y2="{base_y}" stroke="{INK}" stroke-width="1"/>'
    )

    n = len(series)
    if n:
        slot = plot_w / n
        bar_w = max(1.0, min(slot * 0.7, 56.0))
        every = max(1, math.ceil(n / max_labels))
        for i, (label, counts) in enumerate(series):
            x0 = left + i * slot + (slot - bar_w) / 2
            if stacked:
                y = float(base_y)
                for group in groups:
                    value = max(0, int(counts.get(group, 0)))
                    if not value:
                        continue
                    h = value / axis_max * plot_h
                    y -= h
                    parts.append(_bar(x0, y, bar_w, h, colour[group], label, group, value))
            else:
                width_each = bar_w / max(1, len(groups))
                for j, group in enumerate(groups):
                    value = max(0, int(counts.get(group, 0)))
                    if not value:
                        continue
                    h = value / axis_max * plot_h
                    parts.append(
                        _bar(x0 + j * width_each, base_y - h, width_each, h, colour[group], label, group, value)
                    )
            if i % every == 0:
                cx = left + i * slot + slot / 2
                room = max(4, int(slot * every / 6.5))  # characters that fit under the bar (the table has them all)
                shown = label if len(label) <= room else label[: room - 1] + "\u2026"
                parts.append(
                    f'<text x="{_fmt(cx)}" y="{base_y + 16}" text-anchor="middle" font-size="11" '
                    f'fill="{INK}">{escape(shown)}</text>'
                )
    if not n or top == 0:
        parts.append(
            f'<text x="{left + plot_w / 2:.0f}" y="{top_pad + plot_h / 2:.0f}" text-anchor="middle" '
            f'font-size="14" fill="{INK}">Nothing to show</text>'
        )

    # Legend, along the top.
    x = float(left)
    for group in groups:
        parts.append(
            f'<rect x="{_fmt(x)}" y="12" width="12" height="12" fill="{colour[group]}" class="cv-legend-key"/>'
        )
        parts.append(f'<text x="{_fmt(x + 16)}" y="22" font-size="12" fill="{INK}">{escape(group)}</text>')
        x += 16 + 8 * len(group) + 18

    empty_note = " No events in this period." if not n or top == 0 else ""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="Source Sans Pro Web, Helvetica Neue, Helvetica, Roboto, Arial, sans-serif">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}{escape(empty_note)}</desc>'
        f"{''.join(parts)}</svg>"
    )
    numbers = table(series, caption=title, groups=groups, label_header=label_header)
    return Markup(
        f'<figure class="cv-chart" id="{ident}">{svg}'
        f'<details class="cv-chart__numbers"><summary>Show the numbers as a table</summary>{numbers}</details>'
        "</figure>"
    )


def _bar(x: float, y: float, w: float, h: float, fill: str, label: str, group: str, value: int) -> str:
    return (
        f'<rect class="cv-bar" x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(w)}" height="{_fmt(h)}" fill="{fill}" '
        f'stroke="#ffffff" stroke-width="1" data-group="{escape(group)}" data-value="{value}">'
        f"<title>{escape(label)}, {escape(group)}: {value}</title></rect>"
    )
