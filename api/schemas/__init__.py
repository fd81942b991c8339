"""Marshmallow schemas of the JSON API, by context: the shapes of requests and responses.

``common`` holds what they share (strict input, RFC 3339 times, problems,
receipts, paging, the cast of the examples); each other module holds one
context's inputs (``...In``, ``...Query``: unknown fields refused), outputs
(``...Out``) and the OpenAPI examples of its operations (``..._EXAMPLE``),
which tests/api/test_openapi.py checks against the schemas.

Views import from here; nothing here imports a view.
"""
