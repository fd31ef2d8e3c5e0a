"""blacklist registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    op.create_table(
        "evidence_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_evidence_blobs")),
    )
    op.create_table(
        "feed_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_head")),
    )
    # The single row every feed append locks and advances (now sharing/changes.py).
    op.execute("INSERT INTO feed_head (id, seq) VALUES (1, 0)")
    op.create_table(
        "subjects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposals_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["subjects.id"], name=op.f("fk_subjects_merged_into_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subjects_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_subjects_merged_into_id"), ["merged_into_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_subjects_name_key"), ["name_key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_subjects_proposals_checked_at"), ["proposals_checked_at"], unique=False
        )

    op.create_table(
        "entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("shared_with_all", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("behaviours", sa.JSON(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("document_number", sa.String(length=100), nullable=True),
        sa.Column("issuing_authority", sa.String(length=200), nullable=True),
        sa.Column("document_date", sa.Date(), nullable=True),
        sa.Column("occurred_from", sa.Date(), nullable=True),
        sa.Column("occurred_to", sa.Date(), nullable=True),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("parent_entry_id", sa.Uuid(), nullable=True),
        sa.Column("liable_role", sa.String(length=32), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("notice_started_on", sa.Date(), nullable=True),
        sa.Column("notice_ends_on", sa.Date(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("min_end_on", sa.Date(), nullable=True),
        sa.Column("max_end_on", sa.Date(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=2000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_entries_owner_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["parent_entry_id"], ["entries.id"], name=op.f("fk_entries_parent_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_entries_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entries_basis"), ["basis"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_max_end_on"), ["max_end_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_owner_org_id"), ["owner_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_parent_entry_id"), ["parent_entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_severity"), ["severity"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_shared_with_all"), ["shared_with_all"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisations.id"],
            name=op.f("fk_idempotency_records_owner_org_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("owner_org_id", "key", name="uq_idempotency_records_owner_key"),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_owner_org_id"), ["owner_org_id"], unique=False
        )

    op.create_table(
        "liable_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["subjects.id"], name=op.f("fk_liable_links_person_id_subjects")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["subjects.id"], name=op.f("fk_liable_links_unit_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_liable_links")),
        sa.UniqueConstraint("entry_id", "person_id", "role", name="uq_liable_links_entry_person_role"),
    )
    with op.batch_alter_table("liable_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_liable_links_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_liable_links_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_liable_links_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "merge_proposals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("candidate_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["subjects.id"], name=op.f("fk_merge_proposals_candidate_id_subjects")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_merge_proposals_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_proposals")),
    )
    with op.batch_alter_table("merge_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merge_proposals_candidate_id"), ["candidate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_merge_proposals_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_merge_proposals_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "subject_identifiers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_subject_identifiers_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_identifiers")),
        sa.UniqueConstraint("type", "value", name="uq_subject_identifiers_type_value"),
    )
    with op.batch_alter_table("subject_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_identifiers_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "subject_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=False),
        sa.Column("merged_id", sa.Uuid(), nullable=False),
        sa.Column("moved_identifier_ids", sa.JSON(), nullable=False),
        sa.Column("moved_entry_ids", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["subjects.id"], name=op.f("fk_subject_merges_merged_id_subjects")
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["subjects.id"], name=op.f("fk_subject_merges_survivor_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_merges")),
    )
    with op.batch_alter_table("subject_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_merges_merged_id"), ["merged_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_subject_merges_survivor_id"), ["survivor_id"], unique=False)

    op.create_table(
        "upload_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected_rows", sa.Integer(), nullable=False),
        sa.Column("all_or_nothing", sa.Boolean(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_upload_batches_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_batches")),
    )
    with op.batch_alter_table("upload_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upload_batches_owner_org_id"), ["owner_org_id"], unique=False)

    op.create_table(
        "entry_transitions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_org_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_entry_transitions_entry_id_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_transitions")),
    )
    with op.batch_alter_table("entry_transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entry_transitions_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "evidence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], name=op.f("fk_evidence_entry_id_entries")),
        sa.ForeignKeyConstraint(
            ["sha256"], ["evidence_blobs.sha256"], name=op.f("fk_evidence_sha256_evidence_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
        sa.UniqueConstraint("entry_id", "sha256", name="uq_evidence_entry_sha256"),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_sha256"), ["sha256"], unique=False)

    op.create_table(
        "feed_events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], name=op.f("fk_feed_events_entry_id_entries")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_feed_events")),
    )
    with op.batch_alter_table("feed_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_events_entry_id"), ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feed_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_events_entry_id"))

    op.drop_table("feed_events")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_sha256"))
        batch_op.drop_index(batch_op.f("ix_evidence_entry_id"))

    op.drop_table("evidence")
    with op.batch_alter_table("entry_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entry_transitions_entry_id"))

    op.drop_table("entry_transitions")
    with op.batch_alter_table("upload_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_batches_owner_org_id"))

    op.drop_table("upload_batches")
    with op.batch_alter_table("subject_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_merges_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_subject_merges_merged_id"))

    op.drop_table("subject_merges")
    with op.batch_alter_table("subject_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_identifiers_subject_id"))

    op.drop_table("subject_identifiers")
    with op.batch_alter_table("merge_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merge_proposals_subject_id"))
        batch_op.drop_index(batch_op.f("ix_merge_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_merge_proposals_candidate_id"))

    op.drop_table("merge_proposals")
    with op.batch_alter_table("liable_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_liable_links_unit_id"))
        batch_op.drop_index(batch_op.f("ix_liable_links_person_id"))
        batch_op.drop_index(batch_op.f("ix_liable_links_entry_id"))

    op.drop_table("liable_links")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_owner_org_id"))

    op.drop_table("idempotency_records")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_subject_id"))
        batch_op.drop_index(batch_op.f("ix_entries_status"))
        batch_op.drop_index(batch_op.f("ix_entries_shared_with_all"))
        batch_op.drop_index(batch_op.f("ix_entries_severity"))
        batch_op.drop_index(batch_op.f("ix_entries_parent_entry_id"))
        batch_op.drop_index(batch_op.f("ix_entries_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_entries_max_end_on"))
        batch_op.drop_index(batch_op.f("ix_entries_batch_id"))
        batch_op.drop_index(batch_op.f("ix_entries_basis"))

    op.drop_table("entries")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_proposals_checked_at"))
        batch_op.drop_index(batch_op.f("ix_subjects_name_key"))
        batch_op.drop_index(batch_op.f("ix_subjects_merged_into_id"))
        batch_op.drop_index(batch_op.f("ix_subjects_kind"))

    op.drop_table("subjects")
    op.drop_table("feed_head")
    op.drop_table("evidence_blobs")
