"""the actions, audiences and feedback of each measure (#15)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    # In-place ADD COLUMN (no table rebuild on SQLite), all nullable: instructions issued before name
    # no actions.
    op.add_column("instructions", sa.Column("actions", sa.JSON(), nullable=True))
    op.add_column("instructions", sa.Column("audience", sa.String(16), nullable=True))
    op.add_column("instructions", sa.Column("confirmations", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("instructions", "confirmations")
    op.drop_column("instructions", "audience")
    op.drop_column("instructions", "actions")
