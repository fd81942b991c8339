"""Storage: the database and its schema.

The SQLAlchemy engine and sessions (``db``), the ORM models (``models``), the
search columns derived from events (``audit_index``, pure), and the Alembic
migrations with the code that runs them (``schema``).

May import: ``core``.
"""
