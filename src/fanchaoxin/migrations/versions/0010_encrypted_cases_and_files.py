"""encrypted cases and files (privacy, #14)

The personal fields of due-process cases and the stored answers of idempotent requests are sealed
under the data key ring (core.vault): the columns become TEXT (a sealed value is longer than the plain
one, and JSON documents are sealed as text) and every existing value is encrypted in place.

SQLite changes a column's type by adding a new column, copying, dropping the old one and renaming
(native ALTER TABLE, SQLite >= 3.35), not by recreating the table as batch mode does: dropping and
re-creating ``objections`` would violate the foreign key of ``correction_notices`` (foreign keys are on,
and the pragma cannot be turned off inside the migration's transaction).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from fanchaoxin.core import vault

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
phase = "contract"  # retypes case fields to sealed TEXT in place: code before it reads plain values

# (table, column, type before, nullable, JSON document)
COLUMNS: list[tuple[str, str, sa.types.TypeEngine[Any], bool, bool]] = [
    ("objections", "contact_email", sa.String(length=254), False, False),
    ("objections", "identity_verification", sa.Text(), True, False),
    ("repair_applications", "contact_email", sa.String(length=254), False, False),
    ("repair_applications", "identity_verification", sa.Text(), True, False),
    ("reports", "reported", sa.JSON(), False, True),
    ("reports", "contact_email", sa.String(length=254), True, False),
    ("case_attachments", "filename", sa.String(length=255), False, False),
    ("correction_notices", "subject_name", sa.String(length=200), False, False),
    ("idempotency_records", "body", sa.JSON(), False, True),
]

BATCH = 1000


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _retype(table: str, col: str, new: sa.types.TypeEngine[Any], nullable: bool) -> None:
    if not _sqlite():
        ddl = new.compile(dialect=op.get_bind().dialect)
        op.alter_column(table, col, type_=new, postgresql_using=f'"{col}"::{ddl}')
        return
    ddl = new.compile(dialect=op.get_bind().dialect)
    tmp = f"{col}__retyped"
    not_null = "" if nullable else " NOT NULL DEFAULT ''"
    op.execute(f'ALTER TABLE "{table}" ADD COLUMN "{tmp}" {ddl}{not_null}')
    op.execute(f'UPDATE "{table}" SET "{tmp}" = "{col}"')
    op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{col}"')
    op.execute(f'ALTER TABLE "{table}" RENAME COLUMN "{tmp}" TO "{col}"')


def _rewrite(table: str, col: str, change: Any) -> None:
    """Apply ``change`` to every non-NULL value of a column (as text), in batches by primary key."""
    conn = op.get_bind()
    t = sa.table(table, sa.column("id"), sa.column(col, sa.Text()))
    last = None
    while True:
        stmt = sa.select(t.c.id, t.c[col]).where(t.c[col].is_not(None)).order_by(t.c.id).limit(BATCH)
        if last is not None:
            stmt = stmt.where(t.c.id > last)
        rows = conn.execute(stmt).all()
        if not rows:
            return
        updates = []
        for row_id, value in rows:
            new = change(value, f"{table}.{col}")
            if new != value:
                updates.append({"row_id": row_id, "value": new})
        if updates:
            conn.execute(
                t.update().where(t.c.id == sa.bindparam("row_id")).values({col: sa.bindparam("value")}),
                updates,
            )
        last = rows[-1][0]


def _seal(value: str, context: str, *, document: bool) -> str:
    if vault.key_id_of(value) is not None:
        return value  # sealed already (a migration run again after a failure)
    if document:
        value = json.dumps(json.loads(value), ensure_ascii=False, sort_keys=True)
    return vault.encrypt(value, context)


def _open(value: str, context: str, *, document: bool) -> str:
    if vault.key_id_of(value) is None:
        return value
    plain = vault.decrypt(value, context)
    return json.dumps(json.loads(plain), ensure_ascii=False) if document else plain


def upgrade() -> None:
    for table, col, before, nullable, document in COLUMNS:
        if not isinstance(before, sa.Text):
            _retype(table, col, sa.Text(), nullable)
        _rewrite(table, col, lambda v, ctx, d=document: _seal(v, ctx, document=d))


def downgrade() -> None:
    for table, col, before, nullable, document in reversed(COLUMNS):
        _rewrite(table, col, lambda v, ctx, d=document: _open(v, ctx, document=d))
        if not isinstance(before, sa.Text):
            _retype(table, col, before, nullable)
