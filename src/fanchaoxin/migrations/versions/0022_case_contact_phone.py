"""a mobile number beside the e-mail on public filings (#17)

The public forms (异议, 信用修复, 举报) ask for a mobile number as well as an e-mail address, as 信用中国's
forms do; it is personal data, stored encrypted (core.vault.Encrypted is Text underneath).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None
phase = "expand"

TABLES = ("objections", "repair_applications", "reports")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("contact_phone", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("contact_phone")
