"""audit checkpoints and the data key ring under either crypto profile (#18), helper H1

* ``audit_checkpoints.public_key`` is widened from 64 to 128 characters: a checkpoint signed under the
  ``gm`` profile carries base64 of an SM2 point (65 bytes, 88 characters) where an Ed25519 key's (32
  bytes) was 44. The signature column (128) already holds a DER SM2 signature (at most 96 characters).

Nothing else changes in the schema: digests and MACs are 32 bytes under either profile, so the audit
chain, blind indexes and stored secret hashes keep their 64-character columns; the data key ring file
says its own profile (a file without it is ``international``). Existing rows stay as they are.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.alter_column(
            "public_key", type_=sa.String(128), existing_type=sa.String(64), existing_nullable=False
        )


def downgrade() -> None:
    # An SM2 checkpoint does not fit back: refuse rather than truncate a signed key
    bind = op.get_bind()
    longest = bind.execute(sa.text("SELECT MAX(LENGTH(public_key)) FROM audit_checkpoints")).scalar()
    if longest is not None and longest > 64:
        raise RuntimeError(
            "audit_checkpoints holds a checkpoint signed with an SM2 key (gm profile): it cannot be "
            "downgraded below 0024 without losing it"
        )
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.alter_column(
            "public_key", type_=sa.String(64), existing_type=sa.String(128), existing_nullable=False
        )
