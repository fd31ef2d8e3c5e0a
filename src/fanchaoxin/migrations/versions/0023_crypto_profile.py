"""the crypto profile (密码配置) recorded in the database (#18)

An empty database records FCX_CRYPTO_PROFILE as it is created; a database that already holds audit
events ran under the international algorithms until now, and records that.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from fanchaoxin.core.settings import get_settings

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    table = op.create_table(
        "crypto_profile_periods",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("since_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("since_at", sa.DateTime(timezone=True), nullable=False),
    )
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one()
    name = "international" if held else get_settings().crypto_profile
    op.bulk_insert(table, [{"profile": name, "since_seq": 1, "since_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("crypto_profile_periods")
