"""indexes for statistics over a period (entries submitted/published/ended, instructions issued)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
phase = "expand"

INDEXES = (
    ("entries", "submitted_at"),
    ("entries", "published_at"),
    ("entries", "ended_at"),
    ("instructions", "issued_at"),
)


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    for table, column in INDEXES:
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
