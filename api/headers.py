"""Security headers on every response the app sends, problems included.

Responses carry health and tenancy data, so nothing may keep or reuse them:

- ``Cache-Control: no-store``: no browser, proxy or CDN stores a response
  (RFC 9111, section 5.2.2.5); a response that set its own policy keeps it
  (the vendored /docs assets are public and revalidated);
- ``X-Content-Type-Options: nosniff``: JSON is never sniffed into HTML or script;
- ``Referrer-Policy: no-referrer``: no URL, with its ids, leaks to another site;
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``: a JSON answer opened in a browser loads and runs
  nothing, and no page is framed (clickjacking). /docs sets its own, wider
  policy (api/docs.py), which is kept;
- ``Strict-Transport-Security: max-age=N`` when ``CIVICVAULT_HSTS`` is set,
  for a vault served over TLS (docs/api.md, "Headers").
"""

from flask import Flask, Response

from vault.core.config import Settings

JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
UNLESS_SET = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": JSON_CONTENT_SECURITY_POLICY,
}


def register(app: Flask, settings: Settings) -> None:
    always = dict(ALWAYS)
    if settings.hsts_seconds is not None:
        always["Strict-Transport-Security"] = f"max-age={settings.hsts_seconds}"

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.update(always)
        for name, value in UNLESS_SET.items():
            response.headers.setdefault(name, value)
        return response
