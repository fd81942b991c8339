"""Key management: subject key use counts and binding, erasure markers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Existing subject keys and names keep scheme 1 (sealed under the master key
alone) until the next ``civicvault keys rotate`` binds them to a subject
secret (scheme 2). Existing keys start counting their uses from 0.
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subject_keys") as batch:
        batch.add_column(sa.Column("wrap_scheme", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("uses", sa.BigInteger(), nullable=False, server_default="0"))
        batch.create_index("ix_subject_keys_master_key_version", ["master_key_version"])
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("name_scheme", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("erased_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("erased_by", sa.BigInteger(), nullable=True))
        batch.create_index("ix_events_erased_by", ["erased_by"])


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_erased_by")
        batch.drop_column("erased_by")
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("name_scheme")
    with op.batch_alter_table("subject_keys") as batch:
        batch.drop_index("ix_subject_keys_master_key_version")
        batch.drop_column("uses")
        batch.drop_column("wrap_scheme")
