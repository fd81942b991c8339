"""Checkpoints anchored on an EVM chain, and the lease of the background anchorer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anchors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.LargeBinary(), nullable=False),
        sa.Column("gas_used", sa.BigInteger(), nullable=False),
        sa.Column("anchored_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_anchors_tree_size", "anchors", ["tree_size"])
    op.create_index("ux_anchors_chain_size", "anchors", ["chain_id", "contract", "origin", "tree_size"], unique=True)
    op.create_table(
        "anchor_lease",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(80), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("anchor_lease")
    op.drop_index("ux_anchors_chain_size", table_name="anchors")
    op.drop_index("ix_anchors_tree_size", table_name="anchors")
    op.drop_table("anchors")
