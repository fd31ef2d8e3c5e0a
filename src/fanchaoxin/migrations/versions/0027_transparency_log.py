"""the transparency log: leaves, head, checkpoints, cosignatures, tiles (#19)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None
phase = "expand"

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tlog_leaves",
        sa.Column("idx", _BIGINT, nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("feed_seq", _BIGINT, nullable=True),
        sa.Column("audit_seq", _BIGINT, nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_tlog_leaves")),
        sa.UniqueConstraint("feed_seq", name=op.f("uq_tlog_leaves_feed_seq")),
    )
    op.create_index(op.f("ix_tlog_leaves_audit_seq"), "tlog_leaves", ["audit_seq"], unique=False)
    op.create_index(op.f("ix_tlog_leaves_entry_id"), "tlog_leaves", ["entry_id"], unique=False)
    op.create_table(
        "tlog_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", _BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tlog_head")),
    )
    op.execute("INSERT INTO tlog_head (id, size) VALUES (1, 0)")
    op.create_table(
        "tlog_checkpoints",
        sa.Column("id", _BIGINT, nullable=False, autoincrement=True),
        sa.Column("size", _BIGINT, nullable=False),
        sa.Column("root_hash", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("vkey", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tlog_checkpoints")),
    )
    op.create_index(op.f("ix_tlog_checkpoints_size"), "tlog_checkpoints", ["size"], unique=False)
    op.create_table(
        "tlog_cosignatures",
        sa.Column("id", _BIGINT, nullable=False, autoincrement=True),
        sa.Column("checkpoint_id", _BIGINT, nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("witness_key_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["tlog_checkpoints.id"],
            name=op.f("fk_tlog_cosignatures_checkpoint_id_tlog_checkpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_tlog_cosignatures_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tlog_cosignatures")),
        sa.UniqueConstraint("checkpoint_id", "witness_key_id", name="uq_tlog_cosignatures_key"),
    )
    op.create_index(
        op.f("ix_tlog_cosignatures_checkpoint_id"), "tlog_cosignatures", ["checkpoint_id"], unique=False
    )
    op.create_index(op.f("ix_tlog_cosignatures_org_id"), "tlog_cosignatures", ["org_id"], unique=False)
    op.create_table(
        "tlog_tiles",
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_tlog_tiles")),
    )


def downgrade() -> None:
    op.drop_table("tlog_tiles")
    op.drop_index(op.f("ix_tlog_cosignatures_org_id"), table_name="tlog_cosignatures")
    op.drop_index(op.f("ix_tlog_cosignatures_checkpoint_id"), table_name="tlog_cosignatures")
    op.drop_table("tlog_cosignatures")
    op.drop_index(op.f("ix_tlog_checkpoints_size"), table_name="tlog_checkpoints")
    op.drop_table("tlog_checkpoints")
    op.drop_table("tlog_head")
    op.drop_index(op.f("ix_tlog_leaves_entry_id"), table_name="tlog_leaves")
    op.drop_index(op.f("ix_tlog_leaves_audit_seq"), table_name="tlog_leaves")
    op.drop_table("tlog_leaves")
