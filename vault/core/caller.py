"""The authenticated principal of a request, as every access check sees it.

It lives in ``core`` because every context takes one (the ledger's witnesses,
consent, records, rights, compliance) and none may import the principals
service to get it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request: what access checks need."""

    id: str
    role: str
