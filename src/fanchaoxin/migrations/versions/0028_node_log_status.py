"""the node's check of the transparency log in its status report (#19)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    with op.batch_alter_table("node_status") as batch:
        batch.add_column(sa.Column("log", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_status") as batch:
        batch.drop_column("log")
