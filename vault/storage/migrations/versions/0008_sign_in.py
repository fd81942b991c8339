"""Sign-in: principals' logins, passwords and TOTP secrets; ``web_sessions`` and ``invitations``.

``principals`` gains nullable columns, all NULL for the principals that
exist (they keep their API tokens and get a login with ``civicvault
principal set-login``): the login's blind index (unique) and the master key
version it was computed under, the sealed login, the argon2id password hash,
the sealed TOTP secret, when TOTP was enabled and the last step accepted.
``web_sessions`` holds signed-in browsers and ``invitations`` the one-time
links to set a password, both by token hash only (vault/identity).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.String(40)


def upgrade() -> None:
    op.add_column("principals", sa.Column("login_index", sa.String(64), nullable=True))
    op.add_column("principals", sa.Column("login_index_version", sa.Integer(), nullable=True))
    op.add_column("principals", sa.Column("login_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("principals", sa.Column("password_hash", sa.String(255), nullable=True))
    op.add_column("principals", sa.Column("totp_secret_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("principals", sa.Column("totp_enabled_at", UTCDateTime(), nullable=True))
    op.add_column("principals", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    # Unique among principals that have a login: both databases let many rows hold NULL.
    op.create_index("ux_principals_login_index", "principals", ["login_index"], unique=True)
    op.create_table(
        "web_sessions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("principal_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("csrf_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("second_factor_done", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("second_factor_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_web_sessions_principal_id", "web_sessions", ["principal_id"])
    op.create_table(
        "invitations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("principal_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_invitations_principal_id", "invitations", ["principal_id"])


def downgrade() -> None:
    op.drop_index("ix_invitations_principal_id", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_web_sessions_principal_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ux_principals_login_index", table_name="principals")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), never a batch copy of the table:
    # on SQLite, dropping the old ``principals`` would cascade to every table that references it
    # (tokens, subject keys, records) while foreign keys are on.
    for column in (
        "totp_last_step",
        "totp_enabled_at",
        "totp_secret_sealed",
        "password_hash",
        "login_sealed",
        "login_index_version",
        "login_index",
    ):
        op.drop_column("principals", column)
