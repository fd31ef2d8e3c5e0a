"""audit checkpoints and the data key ring under either crypto profile (#18), helper H1

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
