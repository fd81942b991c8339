"""Pending events and the sequencer: ``ledger_pending``, and each event's leaf hash beside it.

The action's transaction stores its event in ``ledger_pending``; the
sequencer gives it the next index and moves it into ``events``
(vault/ledger/sequencer.py). ``events.leaf_hash`` lets a receipt that names
only its leaf hash be resolved to its index; existing rows get theirs from
level 0 of ``ledger_nodes``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.String(40), nullable=True),
        sa.Column("data", sa.String(4000), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("purpose", sa.String(40), nullable=True),
        sa.Column("categories", sa.String(600), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ux_ledger_pending_leaf_hash", "ledger_pending", ["leaf_hash"], unique=True)
    op.add_column("events", sa.Column("leaf_hash", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE events SET leaf_hash = "
        "(SELECT hash FROM ledger_nodes WHERE ledger_nodes.level = 0 AND ledger_nodes.idx = events.ledger_index)"
    )
    op.create_index("ux_events_leaf_hash", "events", ["leaf_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_events_leaf_hash", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("leaf_hash")
    op.drop_index("ux_ledger_pending_leaf_hash", table_name="ledger_pending")
    op.drop_table("ledger_pending")
