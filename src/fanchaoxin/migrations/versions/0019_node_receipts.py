"""node keys and signed execution receipts (#16)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    # The enterprises' node keys: Ed25519 public keys named by their fingerprint (orgs.node_keys).
    op.create_table(
        "node_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("enrolled_by", sa.String(length=200), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoked_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_node_keys_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_node_keys")),
    )
    op.create_index(op.f("ix_node_keys_owner_org_id"), "node_keys", ["owner_org_id"], unique=False)
    # The verified receipt on the instruction it confirms: in-place ADD COLUMN (no table rebuild on
    # SQLite: other tables reference instructions), nullable — reports before #16 carry none.
    op.add_column("instructions", sa.Column("receipt", sa.JSON(), nullable=True))
    op.add_column("instructions", sa.Column("receipt_key_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("instructions", "receipt_key_id")
    op.drop_column("instructions", "receipt")
    op.drop_index(op.f("ix_node_keys_owner_org_id"), table_name="node_keys")
    op.drop_table("node_keys")
