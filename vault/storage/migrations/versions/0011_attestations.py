"""Attestations: the signed answers the vault issued, sealed for the resident's accounting.

One ``attestations`` row per credential issued (vault/attestations): its
UUID, the resident, the requester, the grant, the predicate and purpose,
the pairwise pseudonym with the master key version it was derived from,
when it was issued and until when it is valid, and the signed credential
sealed under the resident's subject key (text kind
``attestation-credential``). Erasure deletes the rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "attestations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("subject_id", ID, sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requester_id", ID, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("grant_id", ID, nullable=True),
        sa.Column("predicate", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("pseudonym", sa.String(80), nullable=False),
        sa.Column("pseudonym_key_version", sa.Integer(), nullable=False),
        sa.Column("credential_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_attestations_subject_requester", "attestations", ["subject_id", "requester_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_attestations_subject_requester", table_name="attestations")
    op.drop_table("attestations")
