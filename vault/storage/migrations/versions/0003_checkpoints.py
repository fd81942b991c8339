"""Signed checkpoints of the ledger, witnesses' keys and their cosignatures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.String(200), nullable=False),
        sa.Column("key_id", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_checkpoints_tree_size", "checkpoints", ["tree_size"])
    op.create_table(
        "witness_keys",
        sa.Column("principal_id", sa.String(40), sa.ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "cosignatures",
        sa.Column("checkpoint_id", sa.Integer(), sa.ForeignKey("checkpoints.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("witness_id", sa.String(40), sa.ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "checkpoint_lease",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(80), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=True),
    )
    op.execute("INSERT INTO checkpoint_lease (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("checkpoint_lease")
    op.drop_table("cosignatures")
    op.drop_table("witness_keys")
    op.drop_index("ix_checkpoints_tree_size", table_name="checkpoints")
    op.drop_table("checkpoints")
