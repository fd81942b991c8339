"""/docs works offline: Swagger UI comes from the vault itself, never from a CDN.

The page and every file it references are served by the vault with the right
content type; the page's Content-Security-Policy keeps the browser on this
origin; the vendored files are the pinned swagger-ui-dist. A real browser
(Debian's Chromium through Playwright, with every request to another host
aborted) renders the operations from a live server and sends nothing
off the machine.
"""

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.served import home_env, is_local, served

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "api" / "static" / "swagger-ui"
CHROMIUM = Path("/usr/bin/chromium")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class References(HTMLParser):
    """Every URL an HTML page makes the browser fetch or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "data-spec-url", "poster", "srcset") and value:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


def test_the_docs_page_references_only_the_vaults_own_files(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    urls = references(html)
    assert len(urls) >= 5, urls  # a stylesheet, two icons, two scripts, the document
    assert "//" not in html and "http" not in html, "an absolute or protocol-relative URL"
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        if url == "/openapi.json":
            assert asset.get_json()["openapi"].startswith("3.")
            continue
        expected = CONTENT_TYPES[Path(parts.path).suffix]
        assert asset.mimetype == expected, (url, asset.mimetype)
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert len(asset.get_data()) > 0
    scripts = [u for u in urls if u.endswith(".js")]
    assert any("swagger-ui-bundle" in u for u in scripts) and any("docs.js" in u for u in scripts)


def test_the_docs_page_tells_the_browser_to_stay_on_this_origin(client):
    policy = client.get("/docs").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no CDN
    assert directives["connect-src"] == "'self'"
    for name, sources in directives.items():
        assert "http" not in sources and "*" not in sources, (name, sources)


@pytest.mark.parametrize(
    "name",
    ["README.md", "refresh.sh", "LICENSE", "swagger-ui.css.map", "..%2F__init__.py", "index.html", "nothing.js"],
)
def test_only_the_listed_assets_are_served(client, name):
    assert client.get(f"/docs/assets/{name}").status_code == 404


def test_the_vendored_files_are_the_pinned_swagger_ui_dist():
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["swagger-ui-dist"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "pin an exact version"
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/swagger-ui-dist"]
    assert locked["version"] == pinned
    bundle = (VENDORED / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    assert f'PACKAGE_VERSION:"{pinned}"' in bundle
    assert f"**{pinned}**" in (VENDORED / "README.md").read_text(encoding="utf-8")
    assert "Apache License" in (VENDORED / "LICENSE").read_text(encoding="utf-8")
    assert (VENDORED / "NOTICE").exists() and (VENDORED / "swagger-ui-bundle.js.LICENSE.txt").exists()


# --- a real browser against a live server ----------------------------------------------------------


@pytest.fixture
def live_server(tmp_path):
    """``civicvault init`` and ``serve`` on a fresh home and a free loopback port."""
    with served(home_env(tmp_path / "home")) as base:
        yield base


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"
)
@pytest.mark.browser
def test_docs_render_in_a_browser_with_no_request_leaving_the_machine(live_server, browser):
    """``browser``: pytest-playwright's, launched as tests/web/conftest.py says (Debian's Chromium)."""
    from playwright.sync_api import expect

    requested: list[str] = []
    blocked: list[str] = []
    problems: list[str] = []

    def guard(route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context = browser.new_context(service_workers="block")
    try:
        context.route("**/*", guard)
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{live_server}/docs", wait_until="load")
        # The operations render: the summary of GET /api/v1/me, and its documented example.
        summary = page.get_by_text("The caller's principal", exact=True)
        expect(summary).to_be_visible(timeout=30_000)
        expect(page.get_by_text("/api/v1/records/{record_id}", exact=True).first).to_be_visible()
        summary.click()
        expect(page.get_by_text("p-seytgdvtc3czy56kuyxdtjhdne").first).to_be_visible(timeout=10_000)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()

    assert blocked == [], f"requests to other hosts: {blocked}"
    assert all(is_local(url) for url in requested), requested
    assert f"{live_server}/openapi.json" in requested
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in requested)
    assert problems == [], problems  # no script error, no Content-Security-Policy violation
