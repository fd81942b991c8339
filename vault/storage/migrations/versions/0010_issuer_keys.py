"""Issuer-signed records: ``issuer_keys``, and the signature of a record version.

``issuer_keys`` holds the Ed25519 public keys of the principals that issue
documents (clinics, landlords, agencies), each registered with a proof of
possession; ``revoked_at`` ends a key. ``record_versions`` gains three
nullable columns, NULL for every version that exists (self-asserted): the
key that signed the version, when the issuer says it issued it, and the
signature sealed under the subject key (docs/attestations.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from vault.storage.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "issuer_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("principal_id", ID, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_issuer_keys_principal", "issuer_keys", ["principal_id", "created_at"])
    # Plain ALTER TABLE ... ADD COLUMN on both databases, never a batch copy of the table (dropping the old
    # record_versions on SQLite with foreign keys on would be a hazard): the columns are nullable, and
    # SQLite accepts a REFERENCES clause on an added column whose default is NULL.
    if op.get_bind().dialect.name == "sqlite":
        # Alembic would ask for a batch copy to add the reference; SQLite's own ADD COLUMN takes it.
        op.execute("ALTER TABLE record_versions ADD COLUMN issuer_key_id VARCHAR(40) REFERENCES issuer_keys (id)")
    else:
        op.add_column("record_versions", sa.Column("issuer_key_id", ID, nullable=True))
        op.create_foreign_key(
            "record_versions_issuer_key_id_fkey", "record_versions", "issuer_keys", ["issuer_key_id"], ["id"]
        )
    op.add_column("record_versions", sa.Column("issued_at", UTCDateTime(), nullable=True))
    op.add_column("record_versions", sa.Column("signature_sealed", sa.LargeBinary(), nullable=True))
    op.create_index("ix_record_versions_issuer_key_id", "record_versions", ["issuer_key_id"])


def downgrade() -> None:
    op.drop_index("ix_record_versions_issuer_key_id", table_name="record_versions")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("record_versions_issuer_key_id_fkey", "record_versions", type_="foreignkey")
    # SQLite 3.35+ drops the column with its own REFERENCES clause (no other column's constraint names it).
    for column in ("signature_sealed", "issued_at", "issuer_key_id"):
        op.drop_column("record_versions", column)
    op.drop_index("ix_issuer_keys_principal", table_name="issuer_keys")
    op.drop_table("issuer_keys")
