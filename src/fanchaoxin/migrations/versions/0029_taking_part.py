"""taking part: agreements, rulebooks, consultation (#22)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:

    op.create_table(
        "agreement_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text_zh", sa.Text(), nullable=False),
        sa.Column("summary_en", sa.Text(), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.Column("resign_by", sa.Date(), nullable=True),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_agreement_versions_version")),
    )
    with op.batch_alter_table("agreement_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agreement_versions_published_on"), ["published_on"], unique=False
        )

    op.create_table(
        "consultation_meetings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("minutes", sa.Text(), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_meetings")),
    )
    with op.batch_alter_table("consultation_meetings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_meetings_starts_at"), ["starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_meetings_status"), ["status"], unique=False)

    op.create_table(
        "agreement_signatures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("signatory", sa.String(length=200), nullable=False),
        sa.Column("signatory_title", sa.String(length=200), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_size", sa.Integer(), nullable=False),
        sa.Column("pdf_filename", sa.String(length=200), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisations.id"],
            name=op.f("fk_agreement_signatures_owner_org_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["agreement_versions.id"],
            name=op.f("fk_agreement_signatures_version_id_agreement_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_signatures")),
        sa.UniqueConstraint("owner_org_id", "version_id", name="uq_agreement_signatures_org_version"),
    )
    with op.batch_alter_table("agreement_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agreement_signatures_owner_org_id"), ["owner_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_agreement_signatures_version_id"), ["version_id"], unique=False)

    op.create_table(
        "consultation_agenda_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=True),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("raised_by", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("measure", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["consultation_meetings.id"],
            name=op.f("fk_consultation_agenda_items_meeting_id_consultation_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisations.id"],
            name=op.f("fk_consultation_agenda_items_owner_org_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_agenda_items")),
    )
    with op.batch_alter_table("consultation_agenda_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_agenda_items_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consultation_agenda_items_owner_org_id"), ["owner_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consultation_agenda_items_status"), ["status"], unique=False)

    op.create_table(
        "consultation_participants",
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("representative", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["consultation_meetings.id"],
            name=op.f("fk_consultation_participants_meeting_id_consultation_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_consultation_participants_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("meeting_id", "org_id", name=op.f("pk_consultation_participants")),
    )
    with op.batch_alter_table("consultation_participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_participants_org_id"), ["org_id"], unique=False)

    op.create_table(
        "measure_rules",
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("measure", sa.String(length=64), nullable=False),
        sa.Column("applicable", sa.Boolean(), nullable=False),
        sa.Column("clause", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_measure_rules_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("owner_org_id", "measure", name=op.f("pk_measure_rules")),
    )
    op.create_table(
        "participations",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(length=200), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_by", sa.String(length=200), nullable=True),
        sa.Column("suspension_reason", sa.String(length=1000), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawal_reason", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_participations_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_participations")),
    )
    with op.batch_alter_table("participations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_participations_status"), ["status"], unique=False)

    op.create_table(
        "consultation_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("agenda_item_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["agenda_item_id"],
            ["consultation_agenda_items.id"],
            name=op.f("fk_consultation_decisions_agenda_item_id_consultation_agenda_items"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["consultation_meetings.id"],
            name=op.f("fk_consultation_decisions_meeting_id_consultation_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_decisions")),
    )
    with op.batch_alter_table("consultation_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_decisions_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "consultation_action_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("owner_org_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("closing_note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["consultation_decisions.id"],
            name=op.f("fk_consultation_action_items_decision_id_consultation_decisions"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["consultation_meetings.id"],
            name=op.f("fk_consultation_action_items_meeting_id_consultation_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"],
            ["organisations.id"],
            name=op.f("fk_consultation_action_items_owner_org_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_action_items")),
    )
    with op.batch_alter_table("consultation_action_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_action_items_decision_id"), ["decision_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consultation_action_items_due_on"), ["due_on"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consultation_action_items_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consultation_action_items_owner_org_id"), ["owner_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consultation_action_items_status"), ["status"], unique=False)

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_email", sa.String(length=320), nullable=True))

    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consultation_decision_id", sa.Uuid(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_column("consultation_decision_id")

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("contact_email")

    with op.batch_alter_table("consultation_action_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_action_items_status"))
        batch_op.drop_index(batch_op.f("ix_consultation_action_items_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_consultation_action_items_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_consultation_action_items_due_on"))
        batch_op.drop_index(batch_op.f("ix_consultation_action_items_decision_id"))

    op.drop_table("consultation_action_items")
    with op.batch_alter_table("consultation_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_decisions_meeting_id"))

    op.drop_table("consultation_decisions")
    with op.batch_alter_table("participations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participations_status"))

    op.drop_table("participations")
    op.drop_table("measure_rules")
    with op.batch_alter_table("consultation_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_participants_org_id"))

    op.drop_table("consultation_participants")
    with op.batch_alter_table("consultation_agenda_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_agenda_items_status"))
        batch_op.drop_index(batch_op.f("ix_consultation_agenda_items_owner_org_id"))
        batch_op.drop_index(batch_op.f("ix_consultation_agenda_items_meeting_id"))

    op.drop_table("consultation_agenda_items")
    with op.batch_alter_table("agreement_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_signatures_version_id"))
        batch_op.drop_index(batch_op.f("ix_agreement_signatures_owner_org_id"))

    op.drop_table("agreement_signatures")
    with op.batch_alter_table("consultation_meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_meetings_status"))
        batch_op.drop_index(batch_op.f("ix_consultation_meetings_starts_at"))

    op.drop_table("consultation_meetings")
    with op.batch_alter_table("agreement_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_versions_published_on"))

    op.drop_table("agreement_versions")
