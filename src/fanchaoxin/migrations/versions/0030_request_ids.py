"""the request that caused each change-feed event (#23: one request id from the platform to the node)

An expand step only: one nullable column, which the previous release neither reads nor writes.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    with op.batch_alter_table("feed_events") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed_events") as batch:
        batch.drop_column("request_id")
