"""feed, manifest and node keys under either crypto profile (#18), helper H2

* ``sharing_snapshots.sha256`` becomes ``digest``: the snapshot file's digest under the profile it was
  built under (SHA-256 or SM3, 64 hex characters either way). No value changes: a snapshot built under
  another profile no longer matches and is rebuilt with the new signing key.
* ``node_keys.public_key`` is widened from 64 to 128 characters: base64 of an SM2 point (65 bytes) is 88
  characters where an Ed25519 key's (32 bytes) was 44.

Both tables are rebuilt by batch mode on SQLite; no table points at either.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None
phase = "contract"  # renames sharing_snapshots.sha256 to digest: code before it reads the old name


def upgrade() -> None:
    with op.batch_alter_table("sharing_snapshots") as batch:
        batch.alter_column(
            "sha256", new_column_name="digest", existing_type=sa.String(64), existing_nullable=False
        )
    with op.batch_alter_table("node_keys") as batch:
        batch.alter_column(
            "public_key", type_=sa.String(128), existing_type=sa.String(64), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("node_keys") as batch:
        batch.alter_column(
            "public_key", type_=sa.String(64), existing_type=sa.String(128), existing_nullable=False
        )
    with op.batch_alter_table("sharing_snapshots") as batch:
        batch.alter_column(
            "digest", new_column_name="sha256", existing_type=sa.String(64), existing_nullable=False
        )
