"""feed, manifest and node keys under either crypto profile (#18), helper H2

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
