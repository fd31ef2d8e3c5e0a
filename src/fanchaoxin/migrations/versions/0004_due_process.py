"""due process

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    op.create_table(
        "case_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_type", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["evidence_blobs.sha256"], name=op.f("fk_case_attachments_sha256_evidence_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachments")),
        sa.UniqueConstraint("case_type", "case_id", "sha256", name="uq_case_attachments_case_type"),
    )
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_attachments_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_attachments_sha256"), ["sha256"], unique=False)

    op.create_table(
        "objections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tracking_number", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("open_entry_id", sa.Uuid(), nullable=True),
        sa.Column("owner_org_id", sa.Uuid(), nullable=True),
        sa.Column("addressed_to_org_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("identifier_type", sa.String(length=32), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("identity_verification", sa.Text(), nullable=True),
        sa.Column("identity_verified_by", sa.String(length=200), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("dispute_due_on", sa.Date(), nullable=False),
        sa.Column("disputed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forward_due_on", sa.Date(), nullable=False),
        sa.Column("decide_due_on", sa.Date(), nullable=False),
        sa.Column("forwarded_on", sa.Date(), nullable=True),
        sa.Column("forward_note", sa.Text(), nullable=True),
        sa.Column("answer_due_on", sa.Date(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("answer_outcome", sa.String(length=16), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("corrections", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["addressed_to_org_id"],
            ["organisations.id"],
            name=op.f("fk_objections_addressed_to_org_id_organisations"),
        ),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], name=op.f("fk_objections_entry_id_entries")),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_objections_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objections")),
        sa.UniqueConstraint("open_entry_id", name=op.f("uq_objections_open_entry_id")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_objections_tracking_number")),
    )
    with op.batch_alter_table("objections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_objections_addressed_to_org_id"), ["addressed_to_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_objections_decide_due_on"), ["decide_due_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_objections_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_objections_owner_org_id"), ["owner_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_objections_status"), ["status"], unique=False)

    op.create_table(
        "repair_applications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tracking_number", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("open_entry_id", sa.Uuid(), nullable=True),
        sa.Column("owner_org_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("identifier_type", sa.String(length=32), nullable=False),
        sa.Column("commitment_accepted", sa.Boolean(), nullable=False),
        sa.Column("commitment_text", sa.Text(), nullable=False),
        sa.Column("rectification", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("identity_verification", sa.Text(), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("decide_due_on", sa.Date(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_repair_applications_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisations.id"],
            name=op.f("fk_repair_applications_owner_org_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_applications")),
        sa.UniqueConstraint("open_entry_id", name=op.f("uq_repair_applications_open_entry_id")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_repair_applications_tracking_number")),
    )
    with op.batch_alter_table("repair_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repair_applications_decide_due_on"), ["decide_due_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_applications_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_repair_applications_owner_org_id"), ["owner_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_applications_status"), ["status"], unique=False)

    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tracking_number", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=True),
        sa.Column("addressed_to_org_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("behaviours", sa.JSON(), nullable=False),
        sa.Column("reported", sa.JSON(), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("routed_on", sa.Date(), nullable=True),
        sa.Column("routed_by", sa.String(length=200), nullable=True),
        sa.Column("triage_note", sa.Text(), nullable=True),
        sa.Column("handle_due_on", sa.Date(), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.Column("forwarded_to", sa.String(length=200), nullable=True),
        sa.Column("linked_entry_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["addressed_to_org_id"],
            ["organisations.id"],
            name=op.f("fk_reports_addressed_to_org_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["linked_entry_id"], ["entries.id"], name=op.f("fk_reports_linked_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_reports_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_reports_tracking_number")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reports_addressed_to_org_id"), ["addressed_to_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reports_handle_due_on"), ["handle_due_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_linked_entry_id"), ["linked_entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_owner_org_id"), ["owner_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_status"), ["status"], unique=False)

    op.create_table(
        "correction_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("objection_id", sa.Uuid(), nullable=True),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_on", sa.Date(), nullable=False),
        sa.Column("lifts_due_on", sa.Date(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_correction_notices_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["objection_id"], ["objections.id"], name=op.f("fk_correction_notices_objection_id_objections")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_notices")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_correction_notices_entry_id")),
    )
    with op.batch_alter_table("correction_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_correction_notices_objection_id"), ["objection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_correction_notices_revoked_on"), ["revoked_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("correction_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_correction_notices_revoked_on"))
        batch_op.drop_index(batch_op.f("ix_correction_notices_objection_id"))

    op.drop_table("correction_notices")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_status"))
        batch_op.drop_index(batch_op.f("ix_reports_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_reports_linked_entry_id"))
        batch_op.drop_index(batch_op.f("ix_reports_handle_due_on"))
        batch_op.drop_index(batch_op.f("ix_reports_addressed_to_org_id"))

    op.drop_table("reports")
    with op.batch_alter_table("repair_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_applications_status"))
        batch_op.drop_index(batch_op.f("ix_repair_applications_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_repair_applications_entry_id"))
        batch_op.drop_index(batch_op.f("ix_repair_applications_decide_due_on"))

    op.drop_table("repair_applications")
    with op.batch_alter_table("objections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_objections_status"))
        batch_op.drop_index(batch_op.f("ix_objections_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_objections_entry_id"))
        batch_op.drop_index(batch_op.f("ix_objections_decide_due_on"))
        batch_op.drop_index(batch_op.f("ix_objections_addressed_to_org_id"))

    op.drop_table("objections")
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_attachments_sha256"))
        batch_op.drop_index(batch_op.f("ix_case_attachments_case_id"))

    op.drop_table("case_attachments")
