"""The vault's error family, mapped to HTTP once in ``api/errors.py``.

Messages are written for the person who made the request: one sentence, no
internal detail, never any record content.
"""


class VaultError(Exception):
    """Base of every expected failure of a vault operation."""

    code = "vault-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # Domain events to record although the action failed (refused
        # accesses): stored in their own transaction by Vault.transaction.
        self.events: list = []

    def with_events(self, *events) -> "VaultError":
        self.events.extend(events)
        return self


class InvalidInput(VaultError):
    """The request is well-formed but its values are not acceptable."""

    code = "invalid-input"


class NotFound(VaultError):
    """No such object, or one the caller may not know exists (same answer)."""

    code = "not-found"

    def __init__(self, detail: str = "No such resource.") -> None:
        super().__init__(detail)


class Unauthenticated(VaultError):
    """No credential, or one that is unknown or revoked."""

    code = "unauthenticated"


class Forbidden(VaultError):
    """The caller is known but their role may not do this."""

    code = "forbidden"


class ConsentDenied(VaultError):
    """No live consent covers the request; ``reason`` is a stable code."""

    code = "consent-denied"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Conflict(VaultError):
    """The request conflicts with the current state (e.g. a stale version)."""

    code = "conflict"


class RecordUnreadable(VaultError):
    """A stored envelope failed its integrity check: no content is released."""

    code = "record-unreadable"

    def __init__(self) -> None:
        super().__init__("The stored record failed its integrity check and cannot be read.")


class ConfigError(VaultError):
    """The vault cannot start or run with the settings it was given."""

    code = "config-error"


class LedgerIntegrityError(VaultError):
    """The ledger's stored state is inconsistent; nothing that needs it proceeds."""

    code = "ledger-integrity"


class LedgerUnavailable(VaultError):
    """The ledger could not append an event: the audit trail is unavailable, so nothing that needs it proceeds.

    An integrity incident, not a conflict to retry: the action is rolled back
    and no content is released (fail closed, as an audit log must).
    """

    code = "ledger-unavailable"

    def __init__(self, detail: str = "The audit trail is unavailable, so the request was not carried out.") -> None:
        super().__init__(detail)


class LedgerBusy(VaultError):
    """Back-pressure: more events wait for their ledger index than the vault lets queue up.

    The sequencer is down or behind (``CIVICVAULT_LEDGER_MAX_PENDING``); the
    action is refused before it does anything, and a retry after a while can
    succeed.
    """

    code = "ledger-busy"

    def __init__(
        self, detail: str = "Too many events wait for the ledger's sequencer; retry in a few seconds."
    ) -> None:
        super().__init__(detail)
