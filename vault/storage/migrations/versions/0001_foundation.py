"""Foundation: principals, API tokens, subject keys, records and their versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", ID, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_principals_role", "principals", ["role"])
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, primary_key=True),
        sa.Column("principal_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_tokens_principal_id", "api_tokens", ["principal_id"])
    op.create_table(
        "subject_keys",
        sa.Column("subject_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("id", ID, primary_key=True),
        sa.Column("subject_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_by", ID, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_records_subject_category", "records", ["subject_id", "category"])
    op.create_table(
        "record_versions",
        sa.Column("record_id", ID, sa.ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("content_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("title_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_by", ID, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("record_versions")
    op.drop_index("ix_records_subject_category", table_name="records")
    op.drop_table("records")
    op.drop_table("subject_keys")
    op.drop_index("ix_api_tokens_principal_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_principals_role", table_name="principals")
    op.drop_table("principals")
