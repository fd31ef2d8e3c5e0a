"""notices (告知书) and statements (陈述申辩) (#15)

The notice an entry's subject is given when its notice period opens, with how it was delivered, and
the statements the subject files before the period ends, each answered by the reviewer. The notice's
record (it names the subject) and a filer's e-mail are sealed (core.vault): TEXT columns.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("delivered_to", sa.String(length=300), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("delivery_note", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], name=op.f("fk_notices_entry_id_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_notices_entry_id")),
        sa.UniqueConstraint("number", name=op.f("uq_notices_number")),
    )
    op.create_index(op.f("ix_notices_delivery_status"), "notices", ["delivery_status"], unique=False)

    op.create_table(
        "statements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tracking_number", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("notice_id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("identifier_type", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.Text(), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("notice_ends_on", sa.Date(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], name=op.f("fk_statements_entry_id_entries")),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_statements_notice_id_notices")),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_statements_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_statements_tracking_number")),
    )
    op.create_index(op.f("ix_statements_entry_id"), "statements", ["entry_id"], unique=False)
    op.create_index(op.f("ix_statements_notice_id"), "statements", ["notice_id"], unique=False)
    op.create_index(op.f("ix_statements_owner_org_id"), "statements", ["owner_org_id"], unique=False)
    op.create_index(op.f("ix_statements_status"), "statements", ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("statements")
    op.drop_table("notices")
