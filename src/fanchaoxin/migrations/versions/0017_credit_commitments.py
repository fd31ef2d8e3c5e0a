"""credit commitments (信用承诺) and their breaches (#15)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None
phase = "expand"

_INDEXED = ("subject_id", "made_on", "term_ends_on", "status", "breached_by_entry_id")


def upgrade() -> None:
    op.create_table(
        "credit_commitments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("repair_application_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),  # sealed (core.vault)
        sa.Column("made_on", sa.Date(), nullable=False),
        sa.Column("term_ends_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("breached_by_entry_id", sa.Uuid(), nullable=True),
        sa.Column("breach_flagged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fulfilled_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_credit_commitments_subject_id_subjects")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_credit_commitments_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["repair_application_id"],
            ["repair_applications.id"],
            name=op.f("fk_credit_commitments_repair_application_id_repair_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["breached_by_entry_id"],
            ["entries.id"],
            name=op.f("fk_credit_commitments_breached_by_entry_id_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_commitments")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_credit_commitments_entry_id")),
        sa.UniqueConstraint(
            "repair_application_id", name=op.f("uq_credit_commitments_repair_application_id")
        ),
    )
    for column in _INDEXED:
        op.create_index(op.f(f"ix_credit_commitments_{column}"), "credit_commitments", [column], unique=False)


def downgrade() -> None:
    for column in reversed(_INDEXED):
        op.drop_index(op.f(f"ix_credit_commitments_{column}"), table_name="credit_commitments")
    op.drop_table("credit_commitments")
