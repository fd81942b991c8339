"""Share codes: a resident's short, single-use code that starts an access request at a desk.

``share_codes`` holds each code's keyed hash only (vault/consent/share_codes.py),
the resident it names, when it was made and when it ends, and who used it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "share_codes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("subject_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("used_by", ID, sa.ForeignKey("principals.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_share_codes_subject_id", "share_codes", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_share_codes_subject_id", table_name="share_codes")
    op.drop_table("share_codes")
