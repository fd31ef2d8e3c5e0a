"""decision log and quotas (privacy, #14)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=True),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("entry_ids", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("feed_seq", sa.Integer(), nullable=True),
        sa.Column("node_record_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_decision_log_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_log")),
        sa.UniqueConstraint("node_record_id", name=op.f("uq_decision_log_node_record_id")),
    )
    op.create_index(op.f("ix_decision_log_at"), "decision_log", ["at"])
    op.create_index(op.f("ix_decision_log_org_id"), "decision_log", ["org_id"])
    op.create_table(
        "decision_log_identifiers",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["decision_log.id"],
            name=op.f("fk_decision_log_identifiers_record_id_decision_log"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("record_id", "digest", name=op.f("pk_decision_log_identifiers")),
    )
    op.create_index(op.f("ix_decision_log_identifiers_digest"), "decision_log_identifiers", ["digest"])


def downgrade() -> None:
    op.drop_table("decision_log_identifiers")
    op.drop_table("decision_log")
