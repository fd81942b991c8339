"""Create and upgrade the database schema with the Alembic migrations.

Every command that opens the vault asks ``is_current`` first, so it reads the
``alembic_version`` row itself and compares it with ``HEAD``, without
importing Alembic (about 0.2 s with its templates). ``HEAD`` names the newest
revision in ``migrations/versions``; tests/vault/storage/test_schema.py fails
when a new revision is added and ``HEAD`` is not moved with it.
"""

from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest revision in migrations/versions.
HEAD = "0011"


def _config() -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("vault.storage") / "migrations"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def alembic_head() -> str | None:
    """The newest revision as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for a database without a schema."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        versions: list[str] = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return versions[0] if len(versions) == 1 else None


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest revision."""
    return current_revision(engine) == HEAD
