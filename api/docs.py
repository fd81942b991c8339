"""``GET /docs``: Swagger UI on ``/openapi.json``, served entirely by the vault.

The page, its script and Swagger UI's files (vendored from the pinned npm
package ``swagger-ui-dist``: api/static/swagger-ui/README.md) all come from
this server, so the documentation works offline and no visitor's browser
asks a CDN for code that would then run with access to their token. The
page's Content-Security-Policy says the same to the browser: scripts, styles,
images and requests from this origin only.

Only the files listed in ``ASSETS`` are served, each with its content type.
"""

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template_string, send_from_directory, url_for

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = STATIC / "swagger-ui"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
PNG = "image/png"

# name -> (folder, content type)
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (SWAGGER_UI, JS),
    "swagger-ui.css": (SWAGGER_UI, CSS),
    "favicon-32x32.png": (SWAGGER_UI, PNG),
    "favicon-16x16.png": (SWAGGER_UI, PNG),
    "docs.js": (STATIC, JS),
}
SPEC_ENDPOINT = "api-docs.openapi_json"  # flask-smorest's route of /openapi.json

# Swagger UI sets styles from script and shows SVG icons as data: URLs.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} API documentation</title>
<link rel="stylesheet" href="{{ asset('swagger-ui.css') }}">
<link rel="icon" type="image/png" sizes="32x32" href="{{ asset('favicon-32x32.png') }}">
<link rel="icon" type="image/png" sizes="16x16" href="{{ asset('favicon-16x16.png') }}">
</head>
<body>
<noscript>The interactive documentation needs JavaScript. The OpenAPI document itself is at
<a href="{{ spec_url }}">{{ spec_url }}</a>.</noscript>
<div id="swagger-ui" data-spec-url="{{ spec_url }}"></div>
<script src="{{ asset('swagger-ui-bundle.js') }}"></script>
<script src="{{ asset('docs.js') }}"></script>
</body>
</html>
"""

blp = Blueprint("docs", __name__)


def _asset_url(name: str) -> str:
    return url_for("docs.asset", name=name)


@blp.get("/docs")
def page() -> Response:
    html = render_template_string(
        PAGE, title=current_app.config["API_TITLE"], spec_url=url_for(SPEC_ENDPOINT), asset=_asset_url
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    folder, content_type = ASSETS[name]
    response = send_from_directory(folder, name, mimetype=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
