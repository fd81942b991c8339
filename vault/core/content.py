"""Record content: a JSON object, checked and encoded canonically before sealing.

Checks run before anything is sealed: the content must be a JSON object of
bounded nesting depth and size, with finite numbers only. The canonical
encoding (sorted keys, no insignificant white space, UTF-8) makes the sealed
bytes independent of how a client happened to format its request.
"""

import json
from typing import Any

from vault.core.errors import InvalidInput

MAX_DEPTH = 32
MAX_CONTENT_BYTES = 768 * 1024
MAX_TITLE_LENGTH = 200


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def encode_content(content: Any) -> bytes:
    if not isinstance(content, dict):
        raise InvalidInput("A record's content must be a JSON object.")
    if not _depth_ok(content):
        raise InvalidInput(f"A record's content may be nested at most {MAX_DEPTH} levels deep.")
    try:
        data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = data.encode("utf-8")  # a lone surrogate ("\ud800") cannot be encoded
    except (TypeError, ValueError):
        raise InvalidInput("A record's content must be plain JSON with finite numbers and valid Unicode.") from None
    if len(encoded) > MAX_CONTENT_BYTES:
        raise InvalidInput(f"A record's content may be at most {MAX_CONTENT_BYTES} bytes once encoded.")
    return encoded


def decode_content(data: bytes) -> dict:
    return json.loads(data.decode("utf-8"))


def check_text(value: str, *, what: str, max_length: int) -> str:
    """Strip a one-line text and refuse what cannot be stored or shown safely."""
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput(f"{what} may have at most {max_length} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(f"{what} must not contain control characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} must be valid Unicode.") from None
    return value


def check_title(title: str | None) -> str | None:
    """A title, or ``None`` for none (an empty title counts as none)."""
    if title is None:
        return None
    return check_text(title, what="A title", max_length=MAX_TITLE_LENGTH) or None
