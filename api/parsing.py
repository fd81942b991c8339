"""Strict request parsing for every endpoint.

webargs' Flask parser is close to what we want; we tighten it so that:

* validation errors are 400 (the contract), not webargs' default 422;
* unknown fields are refused in every location, query strings included;
* a body that is not ``application/json`` gets 415 instead of being ignored;
* a chunked body that reaches the size limit gets 413, not a truncated parse;
* a body that nests arrays and objects deeper than ``MAX_JSON_DEPTH`` is
  refused (400) before it is parsed, by an iterative scan of the raw text;
* an object that repeats a key is refused (400), at any depth, so that no two
  parsers can read one request differently (RFC 8259, section 4: names
  "SHOULD be unique");
* the non-standard ``NaN``/``Infinity`` constants are "invalid JSON" (400).

Why the depth is bounded before parsing: ``json.loads`` recurses in C once
per level, guarded only by the interpreter's recursion limit, and py_ecc
raises that limit to 100,000 when it is imported (on the first BLS signature
in a process). A body of a few hundred kilobytes of ``[`` then overflows the C
stack and the worker dies with SIGSEGV instead of raising ``RecursionError``.
The scan below counts nesting itself and never depends on
``sys.getrecursionlimit()``.

The views' ``Blueprint`` (api/openapi.py) parses with ``StrictParser``.
"""

import json
import re
from itertools import accumulate
from typing import Any, NoReturn

import marshmallow as ma
from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

# Deeper than any body of this API needs: record content may nest 32 levels
# (vault.core.content), inside a body of one or two.
MAX_JSON_DEPTH = 64
# A whole JSON string (escapes included; possibly unterminated, which the
# parser then refuses). Strings are removed whole, so brackets inside them do
# not count; UTF-8 never uses these ASCII bytes inside a multi-byte character.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_KEY_SHOWN = 100  # characters of a repeated key named in the answer


class JsonTooDeep(BadRequest):
    description = f"The request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels."


class DuplicateKey(BadRequest):
    def __init__(self, key: str) -> None:
        shown = key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "..."
        super().__init__(f"The request body repeats the key {json.dumps(shown)} in one object.")
        self.key = key


def json_depth_exceeds(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` opens more than ``limit`` arrays or objects inside one another.

    Iterative and linear in the length of ``text`` (a regular expression
    removes the strings, ``bytes.translate`` keeps the brackets, and a running
    sum gives the depth), and independent of the recursion limit. The text
    need not be valid JSON: the parser judges that afterwards.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # the common case: too few brackets to be too deep
    brackets = _STRING.sub(b"", data).translate(None, _NOT_A_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def loads_strict(text: str) -> Any:
    """Parse a request body: bounded depth, unique keys, no NaN or Infinity.

    Raises ``JsonTooDeep`` or ``DuplicateKey`` (400 with their own detail),
    or ``json.JSONDecodeError`` for anything else that is not JSON.
    """
    if json_depth_exceeds(text):
        raise JsonTooDeep()
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:  # not reachable within MAX_JSON_DEPTH; kept as a second line
        raise JsonTooDeep() from None
    except (json.JSONDecodeError, BadRequest):
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), "<body>", 0) from None


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
        return loads_strict(text)
