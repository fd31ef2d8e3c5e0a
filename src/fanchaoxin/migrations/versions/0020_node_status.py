"""node status reports (#16)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None
phase = "expand"

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "node_status",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("node_version", sa.String(length=64), nullable=False),
        sa.Column("node_key_id", sa.String(length=64), nullable=True),
        sa.Column("feed_seq", _BIGINT, nullable=False),
        sa.Column("feed_age_seconds", sa.Float(), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("enrolled", _BIGINT, nullable=False),
        sa.Column("live_tags", _BIGINT, nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("silent_since", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_node_status_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_status")),
        sa.UniqueConstraint("org_id", "node_id", name=op.f("uq_node_status_org_id")),
    )
    op.create_index(op.f("ix_node_status_org_id"), "node_status", ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_node_status_org_id"), table_name="node_status")
    op.drop_table("node_status")
