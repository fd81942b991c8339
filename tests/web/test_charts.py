"""The server-side SVG charts (api/web/charts.py): accessible, escaped, proportional, and their table agrees."""

import re
import xml.etree.ElementTree as ET

import pytest

from api.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    """The figure as XML (the markup is well-formed: that is part of what is tested)."""
    return ET.fromstring(str(markup))


def bars(figure: ET.Element) -> list[ET.Element]:
    return [el for el in figure.iter(f"{SVG}rect") if el.get("class") == "cv-bar"]


def table_rows(figure: ET.Element) -> list[list[str]]:
    rows = []
    for tr in figure.iter("tr"):
        rows.append([(cell.text or "") for cell in tr if cell.tag in ("th", "td")])
    return rows


SERIES = [
    ("1 Nov", {"permitted": 4, "refused": 1}),
    ("2 Nov", {"permitted": 2}),
    ("3 Nov", {"permitted": 8, "refused": 3}),
]


def chart(series=SERIES, **options):
    return charts.bar_chart(
        series,
        title=options.pop("title", "Accesses by day"),
        description=options.pop("description", "Accesses per day, by outcome."),
        groups_order=options.pop("groups_order", ("permitted", "refused")),
        colours=options.pop("colours", charts.OUTCOME_COLOURS),
        **options,
    )


def test_the_svg_is_an_image_named_by_its_title_and_description():
    figure = parse(chart())
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title.text == "Accesses by day" and desc.text.startswith("Accesses per day")
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    details = figure.find("details")
    assert details.find("summary").text == "Show the numbers as a table"


def test_no_inline_style_anywhere():
    markup = str(chart())
    assert "style=" not in markup and "<style" not in markup and "<script" not in markup


def test_bar_heights_are_proportional_to_the_counts():
    figure = parse(chart())
    found = bars(figure)
    assert len(found) == 5  # one segment per non-zero count
    per_unit = {float(b.get("height")) / int(b.get("data-value")) for b in found}
    assert max(per_unit) - min(per_unit) < 0.01, per_unit
    # Stacked: each day's segments touch, the refused one on top of the permitted one.
    third = [b for b in found if "3 Nov" in b.find(f"{SVG}title").text]
    permitted = next(b for b in third if b.get("data-group") == "permitted")
    refused = next(b for b in third if b.get("data-group") == "refused")
    assert abs(float(refused.get("y")) + float(refused.get("height")) - float(permitted.get("y"))) < 0.01


def test_grouped_bars_stand_side_by_side_at_the_same_scale():
    figure = parse(chart(stacked=False))
    found = bars(figure)
    assert len(found) == 5
    per_unit = {round(float(b.get("height")) / int(b.get("data-value")), 3) for b in found}
    assert len(per_unit) == 1
    third = [b for b in found if "3 Nov" in b.find(f"{SVG}title").text]
    assert third[0].get("x") != third[1].get("x")
    assert {float(b.get("y")) + float(b.get("height")) for b in third} == {
        float(third[0].get("y")) + float(third[0].get("height"))
    }


def test_the_tallest_bar_fits_under_the_top_tick():
    figure = parse(chart())
    ticks = [int(t.text) for t in figure.iter(f"{SVG}text") if t.text and t.text.isdigit()]
    assert max(ticks) >= 11 and 0 in ticks and len(ticks) <= 8


def test_the_table_holds_exactly_the_data():
    figure = parse(chart())
    rows = table_rows(figure)
    assert rows[0] == ["Period", "permitted", "refused", "Total"]
    assert rows[1:] == [
        ["1 Nov", "4", "1", "5"],
        ["2 Nov", "2", "0", "2"],
        ["3 Nov", "8", "3", "11"],
    ]
    assert figure.find(".//caption").text == "Accesses by day"


def test_hostile_labels_and_groups_are_escaped():
    hostile = '<script>alert("x")</script>&'
    markup = str(
        charts.bar_chart(
            [(hostile, {hostile: 2, "ok": 1})],
            title=f"T {hostile}",
            description=f"D {hostile}",
        )
    )
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    figure = parse(markup)  # still well-formed XML
    assert figure.find(f"{SVG}svg/{SVG}title").text == f"T {hostile}"
    assert table_rows(figure)[1][0] == hostile
    # The id made from a hostile title is only letters, digits and dashes.
    ident = figure.get("id")
    assert re.fullmatch(r"[a-z0-9-]+", ident)


@pytest.mark.parametrize("series", [[], [("1 Nov", {}), ("2 Nov", {"permitted": 0})]])
def test_an_empty_chart_says_so_and_draws_no_bar(series):
    figure = parse(chart(series))
    assert bars(figure) == []
    texts = [t.text for t in figure.iter(f"{SVG}text")]
    assert "Nothing to show" in texts
    assert "No events in this period" in figure.find(f"{SVG}svg/{SVG}desc").text
    assert len(table_rows(figure)) == 1 + len(series)


def test_one_bucket():
    figure = parse(chart([("Today", {"permitted": 3})]))
    (bar,) = bars(figure)
    assert bar.get("data-value") == "3" and float(bar.get("height")) > 0
    assert table_rows(figure)[1] == ["Today", "3", "0", "3"]


def test_many_buckets_label_only_some_but_the_table_has_all():
    series = [(f"d{i}", {"permitted": i}) for i in range(30)]
    figure = parse(chart(series))
    labels = [t.text for t in figure.iter(f"{SVG}text") if t.text and t.text.startswith("d")]
    assert 3 <= len(labels) <= 10
    assert len(table_rows(figure)) == 31


def contrast_with_white(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


@pytest.mark.parametrize("colour", sorted(set(charts.PALETTE) | set(charts.OUTCOME_COLOURS.values())))
def test_every_colour_has_3_to_1_contrast_against_white(colour):
    assert contrast_with_white(colour) >= 3.0


def test_groups_without_a_given_colour_get_distinct_ones():
    figure = parse(charts.bar_chart([("a", {"x": 1, "y": 1, "z": 1})], title="t", description="d"))
    fills = {b.get("data-group"): b.get("fill") for b in bars(figure)}
    assert len(set(fills.values())) == 3


def test_nice_ticks():
    assert charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(1) == [0, 1]
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert charts.nice_ticks(101)[-1] >= 101


def test_long_labels_are_shortened_under_the_bars_but_whole_in_the_table():
    name = "Riverside Community Clinic of the Upper Valley (clinic)"
    series = [(f"{name} {i}", {"permitted": i + 1}) for i in range(5)]
    figure = parse(chart(series))
    under = [t.text for t in figure.iter(f"{SVG}text") if t.text and t.text.startswith("Riverside")]
    assert len(under) == 5 and all(t.endswith("\u2026") and len(t) < len(name) for t in under)
    assert [row[0] for row in table_rows(figure)[1:]] == [label for label, _ in series]
