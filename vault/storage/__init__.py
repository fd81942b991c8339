"""Storage: the database and its schema.

The SQLAlchemy engine and sessions (``db``), the ORM models (``models``), the
search columns derived from events (``audit_index``, pure), the Alembic
migrations with the code that runs them (``schema``), and the database check
behind ``/healthz`` (``health``).

May import: ``core``.
"""
