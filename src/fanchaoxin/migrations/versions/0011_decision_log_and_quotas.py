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
phase = "expand"


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
        sa.Column("policy_version", sa.String(length=50), nullable=True),
        sa.Column("feed_seq", sa.Integer(), nullable=True),
        sa.Column("node_record_id", sa.String(length=64), nullable=True),
        sa.Column("identifier_count", sa.Integer(), server_default="0", nullable=False),
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
    # Per-organisation quotas (orgs.budget): empty means the platform's default.
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("quota_plain_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quota_plain_per_day", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quota_evaluations_per_minute", sa.Integer(), nullable=True))
    op.create_table(
        "plain_usage",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("identifiers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_plain_usage_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("org_id", "day", name=op.f("pk_plain_usage")),
    )
    op.create_table(
        "security_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=200), nullable=True),
        sa.Column("clear_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_security_alerts_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alerts")),
    )
    op.create_index(op.f("ix_security_alerts_org_id"), "security_alerts", ["org_id"])


def downgrade() -> None:
    op.drop_table("security_alerts")
    op.drop_table("plain_usage")
    # In place (SQLite 3.35+ drops a column itself): rebuilding `organisations` as a batch would fail on
    # the rows of other tables that point at it.
    for column in ("quota_evaluations_per_minute", "quota_plain_per_day", "quota_plain_per_minute"):
        op.execute(f"ALTER TABLE organisations DROP COLUMN {column}")
    op.drop_table("decision_log_identifiers")
    op.drop_table("decision_log")
