"""The reference pages say what the code does: every API route documented, no phantom one, the import rules as kept.

docs/api.md must name every method and path of the running app's OpenAPI
document; no page may name an endpoint the app does not have; and the table
of import arrows in docs/architecture.md ("Layout") must be the ``ALLOWED``
table that tests/test_layout.py enforces.
"""

import re
from pathlib import Path

import pytest

from tests.test_layout import ALLOWED

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
METHODS = ("get", "post", "put", "patch", "delete")
ENDPOINT = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/(?:api/v1|healthz|openapi\.json|docs)[^\s`?|,)]*)")


def _routes(client) -> set[tuple[str, str]]:
    spec = client.get("/openapi.json").get_json()
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS}


def _shape(path: str) -> str:
    """A path with its parameters unnamed: /consents/{id} and /consents/{grant_id} are one route."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/"))


def test_the_api_reference_names_every_route_of_the_app(client) -> None:
    routes = _routes(client)
    assert len(routes) > 30  # the document was read, not an empty spec
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = sorted(f"{method} {path}" for method, path in routes if f"{method} {path}" not in text)
    assert missing == [], f"docs/api.md does not document: {missing}"


def test_no_page_names_an_endpoint_the_app_does_not_have(client) -> None:
    routes = {(method, _shape(path)) for method, path in _routes(client)}
    routes |= {("GET", "/openapi.json"), ("GET", "/docs")}
    phantom = []
    for page in PAGES:
        for match in ENDPOINT.finditer(page.read_text(encoding="utf-8")):
            if (match[1], _shape(match[2])) not in routes:
                phantom.append(f"{page.relative_to(ROOT)}: {match[1]} {match[2]}")
    assert phantom == []


def _documented_arrows(markdown: str) -> dict[str, set[str]]:
    """The "context | holds | may import" table under the Layout heading of docs/architecture.md."""
    section = markdown.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    arrows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        context = re.findall(r"`([^`]+)`", cells[0])[0]
        arrows[context] = set(re.findall(r"`([^`]+)`", cells[2]))
    return arrows


def test_the_architecture_page_lists_the_import_arrows_the_layout_test_keeps() -> None:
    documented = _documented_arrows((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert documented == ALLOWED


def test_a_changed_arrow_shows_in_the_comparison() -> None:
    # The parser reads what the page says: drop one arrow from the table and it no longer matches.
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    broken = re.sub(r"(\| `ledger` \|[^\n]*\| )`core`, `storage` \|", r"\1`core` |", text, count=1)
    assert broken != text
    assert _documented_arrows(broken) != ALLOWED


LINK = re.compile(r"\[[^\]]*\]\((?!https?:|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings (a "# comment" inside a code block is no heading)."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if re.match(r"\s*(```|~~~)", line):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


def test_the_slug_is_githubs() -> None:
    assert _slug(" `GET /api/v1/me`") == "get-apiv1me"
    assert _slug("Erasure (GDPR Art. 17)") == "erasure-gdpr-art-17"
    assert _slug("What erasure guarantees, and the threat model") == "what-erasure-guarantees-and-the-threat-model"


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_pages_lead_somewhere(doc: Path) -> None:
    broken = []
    for match in LINK.finditer(doc.read_text(encoding="utf-8")):
        target = (doc.parent / match[1]).resolve() if match[1] else doc
        if not target.exists():
            broken.append(f"{match[0]}: no file {match[1]}")
        elif match[2] and target.suffix == ".md" and match[2] not in _anchors(target.read_text(encoding="utf-8")):
            broken.append(f"{match[0]}: no heading #{match[2]} in {target.name}")
    assert broken == []
