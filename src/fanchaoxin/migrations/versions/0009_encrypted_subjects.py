"""encrypted subjects (privacy, #14): identifiers, names, submitted subjects, proposed identifiers,
evidence files and their names encrypted at rest; look-ups through blind indexes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Upgrade seals every existing plain value with the data key ring (``core.vault``; the ring is created at
the default path if there is none yet, since nothing is encrypted before this revision), computes the
blind indexes (``subject_identifiers.value_index``, ``proposed_identifiers.value_index``, a natural
person's ``subjects.name_key``), moves the identifiers' unique key to ``(type, value_index)`` and
re-keys the tag cache by blind index. Downgrade decrypts everything back (it needs the same key ring)
and restores the plain columns and keys.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op

from fanchaoxin.core import vault
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.subjects.names import name_key as fold_name

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
phase = "contract"  # seals personal columns in place, moves a unique key: code before it reads plain values

_CHUNK = 5000

subjects = sa.table(
    "subjects", sa.column("id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("name", sa.Text()),
    sa.column("name_key", sa.String()),
)  # fmt: skip
identifiers = sa.table(
    "subject_identifiers", sa.column("id", sa.Uuid()), sa.column("type", sa.String()),
    sa.column("value", sa.Text()), sa.column("value_index", sa.String()),
)  # fmt: skip
proposed = sa.table(
    "proposed_identifiers", sa.column("id", sa.Uuid()), sa.column("type", sa.String()),
    sa.column("value", sa.Text()), sa.column("value_index", sa.String()),
)  # fmt: skip
entries = sa.table("entries", sa.column("id", sa.Uuid()), sa.column("submitted_subject", sa.Text()))
evidence = sa.table("evidence", sa.column("id", sa.Uuid()), sa.column("filename", sa.Text()))
blobs = sa.table("evidence_blobs", sa.column("sha256", sa.String()), sa.column("data", sa.LargeBinary()))


def _personal(kind: str) -> bool:
    spec = catalogues().subject_kinds.get(kind)
    return spec is None or spec.personal  # an unknown kind is treated as a person: never left plain


def _rewrite(
    table: sa.TableClause, key: str, cols: list[str], change: Callable[[Any], dict[str, Any] | None]
) -> None:
    """Read every row's ``cols`` and write back what ``change`` returns for it (None: leave it)."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(*(table.c[c] for c in [key, *cols]))).all()
    updates = [u for u in (change(r) for r in rows) if u is not None]
    if not updates:
        return
    stmt = (
        table.update()
        .where(table.c[key] == sa.bindparam("_key"))
        .values({c: sa.bindparam(c) for c in updates[0] if c != "_key"})
    )
    for i in range(0, len(updates), _CHUNK):
        bind.execute(stmt, updates[i : i + _CHUNK])


def _has_rows(tables: Iterable[str]) -> bool:
    bind = op.get_bind()
    return any(bind.execute(sa.text(f"SELECT 1 FROM {t} LIMIT 1")).first() for t in tables)


def _retype(table: str, column: str, new: Any, old: Any, *, nullable: bool, using: str) -> None:
    """Change a column's type. SQLite: batch mode would re-create the table, and `subjects` and
    `entries` are what other tables' foreign keys point at (dropping them fails with rows in place):
    a column is added, filled and renamed instead."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        with op.batch_alter_table(table) as b:
            b.alter_column(
                column, type_=new, existing_type=old, existing_nullable=nullable, postgresql_using=using
            )
        return
    ddl = new.compile(dialect=bind.dialect) + ("" if nullable else " NOT NULL DEFAULT ''")
    op.execute(f'ALTER TABLE {table} ADD COLUMN "{column}_retyped" {ddl}')
    op.execute(f'UPDATE {table} SET "{column}_retyped" = "{column}"')
    op.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    op.execute(f'ALTER TABLE {table} RENAME COLUMN "{column}_retyped" TO "{column}"')


def upgrade() -> None:
    _retype("subjects", "name", sa.Text(), sa.String(200), nullable=False, using="name")
    with op.batch_alter_table("subject_identifiers") as b:
        b.add_column(sa.Column("value_index", sa.String(length=64), nullable=True))
        b.alter_column("value", type_=sa.Text(), existing_type=sa.String(200), existing_nullable=False)
    with op.batch_alter_table("proposed_identifiers") as b:
        b.add_column(sa.Column("value_index", sa.String(length=64), nullable=True))
        b.alter_column("value", type_=sa.Text(), existing_type=sa.String(200), existing_nullable=False)
    _retype(
        "entries", "submitted_subject", sa.Text(), sa.JSON(), nullable=True, using="submitted_subject::text"
    )

    _retype("evidence", "filename", sa.Text(), sa.String(255), nullable=False, using="filename")

    tables = [
        "subjects",
        "subject_identifiers",
        "proposed_identifiers",
        "entries",
        "evidence",
        "evidence_blobs",
    ]
    tags: list[Any] = []
    if _has_rows([*tables, "sharing_identifier_tags"]):
        vault.ensure_ring()
        _rewrite(
            subjects,
            "id",
            ["kind", "name", "name_key"],
            lambda r: (
                None
                if vault.key_id_of(r.name)
                else {
                    "_key": r.id,
                    "name": vault.encrypt(r.name, "subjects.name"),
                    "name_key": vault.blind("name", r.name_key) if _personal(r.kind) else r.name_key,
                }
            ),
        )
        for table in (identifiers, proposed):
            context = f"{table.name}.value"
            _rewrite(
                table,
                "id",
                ["type", "value"],
                lambda r, context=context: (
                    None
                    if vault.key_id_of(r.value)
                    else {
                        "_key": r.id,
                        "value": vault.encrypt(r.value, context),
                        "value_index": vault.identifier_index(r.type, r.value),
                    }
                ),
            )
        _rewrite(
            entries,
            "id",
            ["submitted_subject"],
            lambda r: (
                None
                if r.submitted_subject is None or vault.key_id_of(r.submitted_subject)
                else {
                    "_key": r.id,
                    "submitted_subject": vault.encrypt(
                        json.dumps(json.loads(r.submitted_subject), ensure_ascii=False, sort_keys=True),
                        "entries.submitted_subject",
                    ),
                }
            ),
        )
        _rewrite(
            blobs,
            "sha256",
            ["data"],
            lambda r: (
                None
                if vault.blob_key_id(bytes(r.data))
                else {"_key": r.sha256, "data": vault.encrypt_bytes(bytes(r.data), "evidence_blobs.data")}
            ),
        )
        _rewrite(
            evidence,
            "id",
            ["filename"],
            lambda r: (
                None
                if vault.key_id_of(r.filename)
                else {"_key": r.id, "filename": vault.encrypt(r.filename, "evidence.filename")}
            ),
        )
        tags = [
            {"key_id": k, "type": t, "value_index": vault.identifier_index(t, v), "tag": g}
            for k, t, v, g in op.get_bind().execute(
                sa.text("SELECT key_id, type, value, tag FROM sharing_identifier_tags")
            )
        ]

    with op.batch_alter_table("subject_identifiers") as b:
        b.alter_column("value_index", existing_type=sa.String(64), nullable=False)
        b.drop_constraint("uq_subject_identifiers_type_value", type_="unique")
        b.create_unique_constraint("uq_subject_identifiers_type_value_index", ["type", "value_index"])
    with op.batch_alter_table("proposed_identifiers") as b:
        b.alter_column("value_index", existing_type=sa.String(64), nullable=False)

    # The tag cache changes its primary key: made anew, its rows re-keyed by blind index.
    op.drop_table("sharing_identifier_tags")
    new_tags = op.create_table(
        "sharing_identifier_tags",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value_index", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "type", "value_index", name=op.f("pk_sharing_identifier_tags")),
    )
    for i in range(0, len(tags), _CHUNK):
        op.bulk_insert(new_tags, tags[i : i + _CHUNK])


def downgrade() -> None:
    """Decrypt everything back to the columns of 0008 (needs the key ring that sealed it)."""
    bind = op.get_bind()
    tags: list[dict[str, Any]] = []
    if _has_rows(
        ["subjects", "subject_identifiers", "proposed_identifiers", "entries", "evidence", "evidence_blobs"]
    ):
        vault.ring()

        def name_back(r: Any) -> dict[str, Any] | None:
            if not vault.key_id_of(r.name):
                return None
            name = vault.decrypt(r.name, "subjects.name")
            return {
                "_key": r.id,
                "name": name,
                "name_key": fold_name(name) if _personal(r.kind) else r.name_key,
            }

        _rewrite(subjects, "id", ["kind", "name", "name_key"], name_back)
        plain: dict[tuple[str, str], str] = {}
        for table in (identifiers, proposed):
            context = f"{table.name}.value"

            def value_back(
                r: Any, context: str = context, table: sa.TableClause = table
            ) -> dict[str, Any] | None:
                if not vault.key_id_of(r.value):
                    return None
                value = vault.decrypt(r.value, context)
                if table is identifiers:
                    plain[(r.type, r.value_index)] = value
                return {"_key": r.id, "value": value}

            _rewrite(table, "id", ["type", "value", "value_index"], value_back)
        _rewrite(
            entries,
            "id",
            ["submitted_subject"],
            lambda r: (
                None
                if r.submitted_subject is None or not vault.key_id_of(r.submitted_subject)
                else {
                    "_key": r.id,
                    "submitted_subject": vault.decrypt(r.submitted_subject, "entries.submitted_subject"),
                }
            ),
        )
        _rewrite(
            blobs,
            "sha256",
            ["data"],
            lambda r: (
                None
                if not vault.blob_key_id(bytes(r.data))
                else {"_key": r.sha256, "data": vault.decrypt_bytes(bytes(r.data), "evidence_blobs.data")}
            ),
        )
        _rewrite(
            evidence,
            "id",
            ["filename"],
            lambda r: (
                None
                if not vault.key_id_of(r.filename)
                else {"_key": r.id, "filename": vault.decrypt(r.filename, "evidence.filename")}
            ),
        )
        # Cached tags of identifiers no subject holds any more are dropped (a cache: recomputed on need).
        tags = [
            {"key_id": k, "type": t, "value": plain[(t, ix)], "tag": g}
            for k, t, ix, g in bind.execute(
                sa.text("SELECT key_id, type, value_index, tag FROM sharing_identifier_tags")
            )
            if (t, ix) in plain
        ]

    op.drop_table("sharing_identifier_tags")
    old_tags = op.create_table(
        "sharing_identifier_tags",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "type", "value", name=op.f("pk_sharing_identifier_tags")),
    )
    for i in range(0, len(tags), _CHUNK):
        op.bulk_insert(old_tags, tags[i : i + _CHUNK])
    _retype("evidence", "filename", sa.String(255), sa.Text(), nullable=False, using="filename")
    _retype(
        "entries", "submitted_subject", sa.JSON(), sa.Text(), nullable=True, using="submitted_subject::json"
    )
    with op.batch_alter_table("proposed_identifiers") as b:
        b.drop_column("value_index")
        b.alter_column("value", type_=sa.String(200), existing_type=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("subject_identifiers") as b:
        b.drop_constraint("uq_subject_identifiers_type_value_index", type_="unique")
        b.create_unique_constraint("uq_subject_identifiers_type_value", ["type", "value"])
        b.drop_column("value_index")
        b.alter_column("value", type_=sa.String(200), existing_type=sa.Text(), existing_nullable=False)
    _retype("subjects", "name", sa.String(200), sa.Text(), nullable=False, using="name")
