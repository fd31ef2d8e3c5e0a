"""sharing (signed feed, blinded evaluation quotas, webhooks outbox)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
phase = "expand"

_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sharing_identifier_tags",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "type", "value", name=op.f("pk_sharing_identifier_tags")),
    )
    op.create_table(
        "sharing_quotas",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_sharing_quotas_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_sharing_quotas")),
    )
    op.create_table(
        "sharing_snapshots",
        sa.Column("seq", _BigInt, autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", _BigInt, nullable=False),
        sa.Column("key_ids", sa.JSON(), nullable=False),
        sa.Column("signing_key_id", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sharing_snapshots")),
    )
    op.create_table(
        "sharing_webhooks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisations.id"],
            name=op.f("fk_sharing_webhooks_owner_org_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_webhooks")),
    )
    with op.batch_alter_table("sharing_webhooks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sharing_webhooks_active"), ["active"], unique=False)
        batch_op.create_index(batch_op.f("ix_sharing_webhooks_owner_org_id"), ["owner_org_id"], unique=False)

    op.create_table(
        "sharing_outbox",
        sa.Column("id", _BigInt, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("seq", _BigInt, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["sharing_webhooks.id"],
            name=op.f("fk_sharing_outbox_webhook_id_sharing_webhooks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_outbox")),
        sa.UniqueConstraint("webhook_id", "seq", name="uq_sharing_outbox_webhook_id"),
    )
    with op.batch_alter_table("sharing_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sharing_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sharing_outbox_seq"), ["seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_sharing_outbox_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_sharing_outbox_webhook_id"), ["webhook_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sharing_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sharing_outbox_webhook_id"))
        batch_op.drop_index(batch_op.f("ix_sharing_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_sharing_outbox_seq"))
        batch_op.drop_index(batch_op.f("ix_sharing_outbox_next_attempt_at"))
    op.drop_table("sharing_outbox")
    with op.batch_alter_table("sharing_webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sharing_webhooks_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_sharing_webhooks_active"))
    op.drop_table("sharing_webhooks")
    op.drop_table("sharing_snapshots")
    op.drop_table("sharing_quotas")
    op.drop_table("sharing_identifier_tags")
