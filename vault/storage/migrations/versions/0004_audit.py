"""Compliance: search columns on events (outcome, purpose, categories) and the break-glass review queue.

Existing events get their search columns back-filled from their data, in
batches, with the same derivation ``emit`` uses (vault.storage.audit_index). Events
whose data has been cleared (an erased resident's) get none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import json

import sqlalchemy as sa
from alembic import op

from vault.storage import audit_index
from vault.storage.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        batch.add_column(sa.Column("purpose", sa.String(40), nullable=True))
    op.create_index("ix_events_kind", "events", ["kind", "ledger_index"])
    op.create_index("ix_events_outcome", "events", ["outcome", "ledger_index"])
    op.create_index("ix_events_purpose", "events", ["purpose", "ledger_index"])
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])
    op.create_table(
        "event_categories",
        sa.Column(
            "ledger_index",
            sa.BigInteger(),
            sa.ForeignKey("events.ledger_index", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("category", sa.String(40), primary_key=True),
    )
    op.create_index("ix_event_categories_category", "event_categories", ["category", "ledger_index"])
    op.create_table(
        "break_glass_reviews",
        sa.Column(
            "break_glass_id", sa.String(40), sa.ForeignKey("break_glass.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("reviewer_id", sa.String(40), sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("note_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
    )
    _backfill(op.get_bind())


def _backfill(connection) -> None:
    events = sa.table(
        "events",
        sa.column("ledger_index", sa.BigInteger()),
        sa.column("kind", sa.String()),
        sa.column("data", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("purpose", sa.String()),
    )
    categories = sa.table(
        "event_categories", sa.column("ledger_index", sa.BigInteger()), sa.column("category", sa.String())
    )
    update = (
        sa.update(events)
        .where(events.c.ledger_index == sa.bindparam("index"))
        .values(outcome=sa.bindparam("new_outcome"), purpose=sa.bindparam("new_purpose"))
    )
    after = -1
    while True:
        rows = connection.execute(
            sa.select(events.c.ledger_index, events.c.kind, events.c.data)
            .where(events.c.ledger_index > after)
            .order_by(events.c.ledger_index)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changes: list[dict] = []
        category_rows: list[dict] = []
        for index, kind, data_json in rows:
            data = json.loads(data_json) if data_json else None
            if not isinstance(data, dict):
                continue  # cleared by an erasure: nothing to index
            columns = audit_index.columns_of(kind, data)
            if columns["outcome"] is not None or columns["purpose"] is not None:
                changes.append({"index": index, "new_outcome": columns["outcome"], "new_purpose": columns["purpose"]})
            category_rows.extend({"ledger_index": index, "category": c} for c in audit_index.categories_of(data))
        if changes:
            connection.execute(update, changes)
        if category_rows:
            connection.execute(sa.insert(categories), category_rows)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("break_glass_reviews")
    op.drop_index("ix_event_categories_category", table_name="event_categories")
    op.drop_table("event_categories")
    for name in ("ix_events_occurred_at", "ix_events_purpose", "ix_events_outcome", "ix_events_kind"):
        op.drop_index(name, table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("purpose")
        batch.drop_column("outcome")
