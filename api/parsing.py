"""Strict request parsing for every endpoint.

webargs' Flask parser is close to what we want; we tighten it so that:

* validation errors are 400 (the contract), not webargs' default 422;
* unknown fields are refused in every location, query strings included;
* a body that is not ``application/json`` gets 415 instead of being ignored;
* a chunked body that reaches the size limit gets 413, not a truncated parse;
* JSON that nests deeper than the interpreter can parse, or that uses the
  non-standard ``NaN``/``Infinity`` constants, is "invalid JSON" (400), never a
  ``RecursionError`` and a 500.

The views' ``Blueprint`` (api/openapi.py) parses with ``StrictParser``.
"""

import json
from typing import Any, NoReturn

import marshmallow as ma
from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class StrictParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, ma.RAISE)

    def _raw_load_json(self, req: Request) -> Any:
        data = req.get_data(cache=True)  # 413 when Content-Length is over the limit
        # A chunked body (no Content-Length) is cut at the limit by Werkzeug's
        # LimitedStream without an error when it ends exactly there; a body that
        # fills the limit is therefore treated as over it, never parsed truncated.
        if req.content_length is None and req.max_content_length is not None and len(data) >= req.max_content_length:
            raise RequestEntityTooLarge()
        if not data:
            return core.missing
        if not is_json_request(req):
            raise UnsupportedMediaType("Send the request body as application/json.")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("body is not UTF-8", "<body>", exc.start) from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "<body>", 0) from None
        except json.JSONDecodeError:
            raise
        except ValueError as exc:
            raise json.JSONDecodeError(str(exc), "<body>", 0) from None
