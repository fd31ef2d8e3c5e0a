"""legality foundation: the subject's contact for the notice (告知) and what the 炒信 gained (#15)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    # In-place ADD COLUMN (no table rebuild on SQLite: other tables reference entries).
    op.add_column("entries", sa.Column("subject_contact", sa.Text(), nullable=True))
    op.add_column("entries", sa.Column("gains", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("entries", "gains")
    op.drop_column("entries", "subject_contact")
