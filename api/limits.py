"""Throttling at the HTTP edge, with Flask-Limiter (and the ``limits`` library under it).

What is counted, and by whom (the rates are settings: ``CIVICVAULT_RATE_LIMIT_*``,
docs/operations.md, "Rate limits"):

- **failed authentication, per client address**: a request whose bearer token
  is missing, unknown or revoked counts against its address; past the limit it
  is answered 429 instead of 401. A valid token is never refused by this
  limit, so a client behind the same address (a clinic's NAT, a reverse proxy)
  cannot lock out the others. Guessing a token is hopeless anyway (256 random
  bits); the limit makes a scan visible (429s, a warning in the log) and
  tells a misbehaving client to stop;
- **break-glass declarations, per clinic**, **access requests, per requester**,
  **erasure attempts, per caller** and **share-code redemptions, per clinic
  or landlord**: every ``POST`` of the authenticated caller counts, whatever
  its outcome, before its body is read. The pages (api/web) count the same
  actions against the same rates with ``Throttle.check_page`` and
  ``Throttle.page_attempt`` (their own counters: a page's posts are not
  the API endpoint's): break-glass declarations and access requests on each
  post, share codes on each failed redemption.

Over a limit the answer is a 429 problem with ``Retry-After`` in seconds
(api/errors.py). Counts live in Redis when ``CIVICVAULT_RATE_LIMIT_STORAGE``
names one, shared by every worker and host using the same server and
``CIVICVAULT_RATE_LIMIT_PREFIX``; otherwise in the process's memory, per
worker. If Redis stops answering, counting goes on in memory (with a warning
in the log) until it is back. The strategy is a moving window: exact, so a
client cannot get twice the rate across a window's edge.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from typing import cast

from flask import Flask, current_app, request
from flask.typing import RouteCallable
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from werkzeug.exceptions import TooManyRequests

from api.context import THROTTLE, current_caller
from vault.core.config import RateLimits

log = logging.getLogger("civicvault.api")

STRATEGY = "moving-window"
REDIS_TIMEOUT_SECONDS = 1  # a Redis that does not answer must not hold requests up

# endpoint -> the RateLimits field with its rate; the caller's POSTs to it are counted.
PER_CALLER = {
    "consents.BreakGlass": "break_glass",
    "consents.AccessRequests": "access_requests",
    "erasure.Erasure": "erasure",
    "share_codes.ShareCodeRedemptions": "share_codes",
    "attestations.SubjectAttestations": "attestations",
}
PAGE_SCOPE = "page"  # the pages' own per-caller counts (Throttle.page_attempt)
FAILED_AUTH_SCOPE = "failed-auth"
FAILED_SIGN_IN_SCOPE = "failed-sign-in"


class RateLimited(TooManyRequests):
    """Over a limit; ``seconds`` until the next request of this kind is counted again."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.seconds = retry_after


def client_address() -> str:
    """The client's address: the peer's, or the one trusted proxies forwarded (CIVICVAULT_TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def caller_key() -> str:
    return current_caller().id


@dataclass
class Throttle:
    """The app's limiter and the failed-authentication counter, which shares its storage."""

    limiter: Limiter
    rates: RateLimits
    failed_auth: list[RateLimitItem]
    fallback: RateLimiter  # in memory, for when the shared storage does not answer
    failed_sign_in: list[RateLimitItem] = field(default_factory=list)  # per login (its blind rate key)
    warned: dict[str, float] = field(default_factory=dict)  # address -> when this worker last logged it

    def _warn_once_a_minute(self, address: str) -> None:
        """One warning per address and minute, however many requests a scan sends."""
        now = time.monotonic()
        if now - self.warned.get(address, -60.0) < 60:
            return
        if len(self.warned) > 10_000:
            self.warned.clear()
        self.warned[address] = now
        log.warning("too many failed authentications from %s (limit %s)", address, self.rates.failed_auth)

    def failed_authentication(self) -> None:
        """Count a failed authentication from this request's address; ``RateLimited`` past the limit."""
        address = client_address()
        keys = (self.rates.key_prefix, FAILED_AUTH_SCOPE, address)
        try:
            strategy = self.limiter.limiter
            over = [item for item in self.failed_auth if not strategy.hit(item, *keys)]
        except Exception as exc:  # the shared storage is down: count here meanwhile
            log.warning("rate limit storage unreachable (%s); counting in memory", type(exc).__name__)
            strategy = self.fallback
            over = [item for item in self.failed_auth if not strategy.hit(item, *keys)]
        if over:
            self._warn_once_a_minute(address)
            retry = max(_seconds_until(strategy.get_window_stats(item, *keys).reset_time) for item in over)
            raise RateLimited(
                f"Too many failed authentications from this address; retry in {retry} seconds.", retry_after=retry
            )

    def _over(self, items: list[RateLimitItem], keys: tuple[str, ...], *, hit: bool) -> int:
        """Seconds until ``keys`` is under every limit in ``items`` (0: under them); ``hit`` counts one first."""
        try:
            strategy = self.limiter.limiter
            over = [item for item in items if not (strategy.hit(item, *keys) if hit else strategy.test(item, *keys))]
        except Exception as exc:  # the shared storage is down: count here meanwhile
            log.warning("rate limit storage unreachable (%s); counting in memory", type(exc).__name__)
            strategy = self.fallback
            over = [item for item in items if not (strategy.hit(item, *keys) if hit else strategy.test(item, *keys))]
        if not over:
            return 0
        return max(_seconds_until(strategy.get_window_stats(item, *keys).reset_time) for item in over)

    def _sign_in_keys(self, login_key: str) -> list[tuple[list[RateLimitItem], tuple[str, ...]]]:
        return [
            (self.failed_auth, (self.rates.key_prefix, FAILED_AUTH_SCOPE, client_address())),
            (self.failed_sign_in, (self.rates.key_prefix, FAILED_SIGN_IN_SCOPE, login_key)),
        ]

    def check_sign_in(self, login_key: str) -> None:
        """Before a password is checked: ``RateLimited`` while this address or this login is over its limit.

        Unlike a bearer token (256 random bits, never refused when valid), a
        password can be guessed: a login over its limit is refused whatever
        the password, or the limit would not slow a guesser down.
        """
        retry = max(self._over(items, keys, hit=False) for items, keys in self._sign_in_keys(login_key))
        if retry:
            self._warn_once_a_minute(client_address())
            raise RateLimited(f"Too many failed sign-ins; try again in {retry} seconds.", retry_after=retry)

    def failed_sign_in_attempt(self, login_key: str) -> None:
        """Count a failed sign-in against the address and the login (a blind key, never the login itself)."""
        for items, keys in self._sign_in_keys(login_key):
            self._over(items, keys, hit=True)

    def _page_keys(self, setting: str, caller_id: str) -> tuple[list[RateLimitItem], tuple[str, ...]]:
        rate: str = getattr(self.rates, setting)
        return parse_many(rate), (self.rates.key_prefix, PAGE_SCOPE, setting, caller_id)

    def check_page(self, setting: str, caller_id: str) -> None:
        """``RateLimited`` while ``caller_id`` is over the ``setting`` rate on the pages (nothing counted)."""
        retry = self._over(*self._page_keys(setting, caller_id), hit=False)
        if retry:
            raise RateLimited(f"Too many attempts of this kind; try again in {retry} seconds.", retry_after=retry)

    def page_attempt(self, setting: str, caller_id: str) -> None:
        """Count one attempt of ``caller_id`` against the ``setting`` rate (RateLimits field) on the pages."""
        self._over(*self._page_keys(setting, caller_id), hit=True)


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


def retry_after(exc: TooManyRequests) -> int:
    """Seconds for ``Retry-After`` of a 429: ours, or Flask-Limiter's for the limit it found breached."""
    if isinstance(exc, RateLimited):
        return exc.seconds
    throttle: Throttle | None = current_app.extensions.get(THROTTLE)
    breached = throttle.limiter.current_limit if throttle is not None else None
    return _seconds_until(breached.window.reset_time) if breached is not None else 60


def describe(exc: TooManyRequests, seconds: int) -> str:
    if isinstance(exc, RateLimited):
        return exc.description or ""
    if isinstance(exc, RateLimitExceeded):
        return f"Too many requests of this kind from this caller; retry in {seconds} seconds."
    return exc.description or ""


def register(app: Flask, rates: RateLimits) -> Throttle:
    """Bind a limiter to ``app`` and put the per-caller limits on their views (after the blueprints)."""
    options: dict[str, str | int] = {}
    if rates.shared:
        options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
    limiter = Limiter(
        caller_key,
        app=app,
        storage_uri=rates.storage,
        storage_options=options,
        strategy=STRATEGY,
        key_prefix=rates.key_prefix,
        headers_enabled=False,  # Retry-After on a 429 only, set by api/errors.py
        in_memory_fallback_enabled=True,
    )
    for endpoint, setting in PER_CALLER.items():
        view = app.view_functions[endpoint]
        limited = limiter.limit(getattr(rates, setting), key_func=caller_key, methods=["POST"])(view)
        app.view_functions[endpoint] = cast(RouteCallable, limited)
    throttle = Throttle(
        limiter=limiter,
        rates=rates,
        failed_auth=parse_many(rates.failed_auth),
        failed_sign_in=parse_many(rates.failed_sign_in),
        fallback=MovingWindowRateLimiter(MemoryStorage()),
    )
    app.extensions[THROTTLE] = throttle
    return throttle
