"""Consent: grants, access requests, delegations, break-glass; domain events and their ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(40)


def _principal(name, nullable=False, cascade=True):
    return sa.Column(
        name, ID, sa.ForeignKey("principals.id", ondelete="CASCADE" if cascade else None), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", ID, primary_key=True),
        _principal("subject_id"),
        _principal("grantee_id"),
        sa.Column("categories", sa.String(600), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("actions", sa.String(40), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        _principal("created_by", cascade=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        _principal("revoked_by", nullable=True, cascade=False),
        sa.Column("request_id", ID, nullable=True),
    )
    op.create_index("ix_grants_subject_grantee", "grants", ["subject_id", "grantee_id"])
    op.create_index("ix_grants_grantee", "grants", ["grantee_id"])
    op.create_table(
        "access_requests",
        sa.Column("id", ID, primary_key=True),
        _principal("subject_id"),
        _principal("requester_id"),
        sa.Column("categories", sa.String(600), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("actions", sa.String(40), nullable=False),
        sa.Column("reason_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        _principal("decided_by", nullable=True, cascade=False),
        sa.Column("grant_id", ID, sa.ForeignKey("grants.id"), nullable=True),
    )
    op.create_index("ix_access_requests_subject_status", "access_requests", ["subject_id", "status"])
    op.create_index("ix_access_requests_requester", "access_requests", ["requester_id"])
    op.create_table(
        "delegations",
        sa.Column("id", ID, primary_key=True),
        _principal("subject_id"),
        _principal("delegate_id"),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        _principal("revoked_by", nullable=True, cascade=False),
    )
    op.create_index("ix_delegations_subject", "delegations", ["subject_id"])
    op.create_index("ix_delegations_delegate", "delegations", ["delegate_id"])
    op.create_table(
        "break_glass",
        sa.Column("id", ID, primary_key=True),
        _principal("subject_id"),
        _principal("clinic_id"),
        sa.Column("reason_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("declared_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_break_glass_subject_clinic", "break_glass", ["subject_id", "clinic_id"])
    op.create_table(
        "events",
        sa.Column("ledger_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", ID, nullable=False),
        sa.Column("subject_id", ID, nullable=True),
        sa.Column("data", sa.String(4000), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_events_subject", "events", ["subject_id", "ledger_index"])
    op.create_index("ix_events_actor", "events", ["actor_id", "ledger_index"])
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO ledger_head (id, size) VALUES (1, 0)")
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_events_actor", "events"),
        ("ix_events_subject", "events"),
        ("ix_break_glass_subject_clinic", "break_glass"),
        ("ix_delegations_delegate", "delegations"),
        ("ix_delegations_subject", "delegations"),
        ("ix_access_requests_requester", "access_requests"),
        ("ix_access_requests_subject_status", "access_requests"),
        ("ix_grants_grantee", "grants"),
        ("ix_grants_subject_grantee", "grants"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("ledger_nodes", "ledger_head", "events", "break_glass", "delegations", "access_requests", "grants"):
        op.drop_table(table)
