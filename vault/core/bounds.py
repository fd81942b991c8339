"""Bounds that several services share: page sizes and validity windows.

One home for them, so that a page limit or a window rule is not borrowed from
an unrelated module. Pure: no session, no clock (``now`` is a parameter).
"""

from datetime import datetime, timedelta

from vault.core.errors import InvalidInput

#: The most lines one page of grants, requests, access log or review queue holds.
MAX_PAGE = 500
#: The most lines one page of a compliance search holds (it is keyset-paged and streamed).
MAX_AUDIT_PAGE = 1000


def check_window(valid_from: datetime, expires_at: datetime, *, now: datetime, max_days: int, what: str) -> None:
    if expires_at.tzinfo is None or valid_from.tzinfo is None:
        raise InvalidInput("Times must carry a time zone (RFC 3339).")
    if expires_at <= now:
        raise InvalidInput(f"{what} must expire in the future.")
    if expires_at <= valid_from:
        raise InvalidInput(f"{what} must expire after it becomes valid.")
    if expires_at > now + timedelta(days=max_days):
        raise InvalidInput(f"{what} may last at most {max_days} days.")
