"""Is the database there? The one question ``GET /healthz`` asks of storage.

A round trip of ``SELECT 1`` in the caller's transaction: it touches no table,
takes no lock and, in a read-only transaction, never waits for a writer. A
database that does not answer raises SQLAlchemy's ``OperationalError``, which
the API answers with 503.
"""

from sqlalchemy import text
from sqlalchemy.orm import Session


def check(session: Session) -> None:
    """Return when the database answers; raise ``OperationalError`` when it does not."""
    session.execute(text("SELECT 1")).scalar_one()
