"""proposed identifiers: a submission's new identifiers for a known subject wait for a reviewer; what the
submitter sent and what resolution left to the reviewer are kept on the entry

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    op.create_table(
        "proposed_identifiers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("party", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_proposed_identifiers_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_proposed_identifiers_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposed_identifiers")),
    )
    with op.batch_alter_table("proposed_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposed_identifiers_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposed_identifiers_subject_id"), ["subject_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposed_identifiers_status"), ["status"], unique=False)
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitted_subject", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("resolution_conflicts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("resolution_conflicts")
        batch_op.drop_column("submitted_subject")
    with op.batch_alter_table("proposed_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposed_identifiers_status"))
        batch_op.drop_index(batch_op.f("ix_proposed_identifiers_subject_id"))
        batch_op.drop_index(batch_op.f("ix_proposed_identifiers_entry_id"))
    op.drop_table("proposed_identifiers")
