"""The access history's chart: accesses per day as an inline SVG bar chart, drawn on the server.

No script and no inline style (the pages' Content-Security-Policy allows
neither): the bars are ``<rect>`` with classes that site.css colours. The SVG
is an image for assistive technology (``role="img"``, a ``<title>`` and a
``<desc>`` that say what it shows); the page puts the same numbers in a table.
"""

from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 12, 28


def _nice_top(value: int) -> int:
    """The axis top: the largest day rounded up to 1, 2 or 5 times a power of ten."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def bar_chart(days: list[tuple[date, int, int]], *, title: str) -> Markup:
    """``days``: (day, permitted, refused), oldest first. Permitted and refused are stacked."""
    totals = [p + r for _, p, r in days]
    top = _nice_top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    first, last = (days[0][0], days[-1][0]) if days else (None, None)
    busiest = max(range(len(days)), key=lambda i: totals[i]) if days and any(totals) else None
    summary = f"{sum(totals)} entries in all from {first:%-d %b} to {last:%-d %b %Y}" if first and last else "No days"
    if busiest is not None:
        summary += f"; the busiest day was {days[busiest][0]:%-d %b} with {totals[busiest]}"
    summary += f"; {sum(r for _, _, r in days)} refused."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="cv-chart-title cv-chart-desc" class="cv-bars">',
        f'<title id="cv-chart-title">{escape(title)}</title>',
        f'<desc id="cv-chart-desc">{escape(summary)}</desc>',
    ]
    for tick in (0, top // 2 if top >= 2 else None, top):
        if tick is None:
            continue
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="cv-bars__grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="cv-bars__label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, (day, permitted, refused) in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        base: float = TOP + plot_h
        for value, kind in ((permitted, "permitted"), (refused, "refused")):
            if value:
                h = plot_h * value / top
                base -= h
                parts.append(
                    f'<rect class="cv-bars__{kind}" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                    f"<title>{day:%-d %b}: {value} {kind}</title></rect>"
                )
        if (len(days) - 1 - i) % 7 == 0:  # every seventh day, ending on today
            parts.append(
                f'<text class="cv-bars__label" x="{x + bar / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{day:%-d %b}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
