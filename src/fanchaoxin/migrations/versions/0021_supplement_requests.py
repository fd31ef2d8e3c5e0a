"""requests for more material on objections and repair applications (补正, #17)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    op.create_table(
        "supplement_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_type", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("open_case_id", sa.Uuid(), nullable=True),
        sa.Column("tracking_number", sa.String(length=32), nullable=False),
        sa.Column("materials", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.Column("paused_working_days", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplement_requests")),
        sa.UniqueConstraint("open_case_id", name=op.f("uq_supplement_requests_open_case_id")),
    )
    op.create_index(op.f("ix_supplement_requests_case_id"), "supplement_requests", ["case_id"], unique=False)
    op.create_index(op.f("ix_supplement_requests_status"), "supplement_requests", ["status"], unique=False)
    op.create_index(
        op.f("ix_supplement_requests_tracking_number"),
        "supplement_requests",
        ["tracking_number"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_supplement_requests_tracking_number"), table_name="supplement_requests")
    op.drop_index(op.f("ix_supplement_requests_status"), table_name="supplement_requests")
    op.drop_index(op.f("ix_supplement_requests_case_id"), table_name="supplement_requests")
    op.drop_table("supplement_requests")
