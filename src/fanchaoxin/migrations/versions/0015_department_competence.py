"""department kinds and competence, the basic list of measures (#15)

A department's kind (department_kinds.yaml) says what it acts on and which memoranda measures it is
instructed. Existing departments have none until the platform gives them one (`fcx org set-kind`);
until then they receive nothing. The basic list of measures is catalogue data: no table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    # Nullable and added in place: organisations is referenced by most tables (no batch copy on SQLite).
    op.add_column("organisations", sa.Column("department_kind", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("organisations", "department_kind")
