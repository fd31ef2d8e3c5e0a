"""evidence addressed by the profile's digest (#18), helper H3

The content address of evidence files and case attachments (``evidence_blobs``' primary key, and the
columns of ``evidence`` and ``case_attachments`` that point at it) and the digest of a bulk upload's
file were named after one algorithm; under the crypto profile they hold the profile's digest
(64 hex characters under either profile), so the columns become ``digest``, and the constraints and
indexes named after them follow. No value changes here: re-addressing the files under another profile
is ``blacklist.evidence_digest.readdress_evidence``, run by the profile migration command.

SQLite renames the referenced column in place (native ``RENAME COLUMN``, which also rewrites the
other tables' foreign keys that name it): re-creating ``evidence_blobs`` as batch mode does would drop a
table that rows point at, with foreign keys on (the pragma cannot change inside the migration's
transaction). The two referencing tables are re-created by batch mode, since SQLite cannot rename a
constraint; no table points at them. PostgreSQL renames everything in place.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None
phase = "contract"  # renames the evidence address columns sha256 to digest: code before it reads the old name

OLD, NEW = "sha256", "digest"

# The tables that point at evidence_blobs, with the unique constraint whose name carries the column's
# (its name pattern and the columns before the address); case_attachments' is named after case_type.
REFERENCING: dict[str, tuple[str, list[str]] | None] = {
    "evidence": ("uq_evidence_entry_{}", ["entry_id"]),
    "case_attachments": None,
}


def _rename(old: str, new: str) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    # The referenced column first: under SQLite the children's foreign keys are rewritten with it, and
    # their re-created tables must find the new name in place.
    op.execute(f'ALTER TABLE evidence_blobs RENAME COLUMN "{old}" TO "{new}"')
    op.execute(f'ALTER TABLE upload_batches RENAME COLUMN "{old}" TO "{new}"')
    for table, unique in REFERENCING.items():
        fk_old, fk_new = f"fk_{table}_{old}_evidence_blobs", f"fk_{table}_{new}_evidence_blobs"
        ix_old, ix_new = f"ix_{table}_{old}", f"ix_{table}_{new}"
        uq_old, uq_new = (unique[0].format(old), unique[0].format(new)) if unique else ("", "")
        if not sqlite:
            op.execute(f'ALTER TABLE {table} RENAME COLUMN "{old}" TO "{new}"')
            op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {fk_old} TO {fk_new}")
            op.execute(f"ALTER INDEX {ix_old} RENAME TO {ix_new}")
            if unique:
                op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {uq_old} TO {uq_new}")
            continue
        with op.batch_alter_table(table, recreate="always") as b:
            b.drop_index(ix_old)
            b.drop_constraint(fk_old, type_="foreignkey")
            if unique:
                b.drop_constraint(uq_old, type_="unique")
            b.alter_column(
                old, new_column_name=new, existing_type=sa.String(length=64), existing_nullable=False
            )
        with op.batch_alter_table(table, recreate="always") as b:
            b.create_foreign_key(fk_new, "evidence_blobs", [new], [new])
            if unique:
                b.create_unique_constraint(uq_new, [*unique[1], new])
            b.create_index(ix_new, [new], unique=False)


def upgrade() -> None:
    _rename(OLD, NEW)


def downgrade() -> None:
    _rename(NEW, OLD)
