"""Data key rotation (数据密钥轮换): add a key, make it active, re-encrypt the rows, retire the old key.

``fcx keys rotate-data`` writes the new ring first: every worker re-reads the file when it changes
(``vault.ring()``), so from then on new values are sealed under the new key while values under the old
one still open. The re-encryption then walks every encrypted column of ``Base.metadata`` in batches,
each its own short transaction, so a serving platform keeps working beside it. A row is rewritten only
if it still holds the value that was read (compare and set): a change made by a request meanwhile is
never overwritten with an older one, and it was sealed under the new key anyway.

A retired key is removed from the ring only when no row needs it (``retire``); otherwise the rows are
named, so that an operator never loses data by retiring too early.

A change of crypto profile (``fcx crypto migrate --to``, :func:`migrate_profile`) is no rotation: the
new profile's cipher cannot open the old values, so every sealed value is re-encrypted and every blind
index recomputed under a fresh ring of the new profile, all in one transaction with the platform
stopped, and the ring file is replaced only once that transaction has committed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    and_,
    bindparam,
    column,
    inspect,
    literal,
    select,
    table,
    tuple_,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

from fanchaoxin.core import audit, vault
from fanchaoxin.core.crypto import profile
from fanchaoxin.core.db import Base
from fanchaoxin.core.vault import BlindIndexOf, DataKeyError, DataKeyRing, RemappedIndex, RowRef

BATCH_ROWS = 1000


class KeyStillNeeded(DataKeyError):
    """A key cannot be retired: rows still need it (named, at most 10)."""

    def __init__(self, key_id: str, rows: list[RowRef], total: int) -> None:
        self.key_id, self.rows, self.total = key_id, rows, total
        named = "; ".join(str(r) for r in rows)
        super().__init__(
            f"data key {key_id!r} is still needed by {total} stored values ({named}"
            f"{' …' if total > len(rows) else ''}): run `fcx keys rotate-data` (or let it finish) first"
        )


def next_key_id(ring: DataKeyRing) -> str:
    """``d<n+1>`` after the highest ``d<n>`` of the ring (ids are never reused: a value names its key)."""
    numbers = [int(m.group(1)) for k in ring.keys if (m := re.fullmatch(r"d(\d+)", k))]
    return f"d{max(numbers, default=0) + 1}"


def add_key() -> DataKeyRing:
    """Add a fresh key to the ring file and make it active (workers pick it up from the file)."""
    current = vault.read_ring(vault.key_file())
    new_id = next_key_id(current)
    keys = {**current.keys, new_id: vault.new_key(current.profile)}
    ring = DataKeyRing(current.path, new_id, keys, current.index_key, current.profile)
    vault.write_ring(ring, exclusive=False)
    vault.forget()
    return vault.ring()


@dataclass
class Progress:
    """Where a re-encryption stands: rows rewritten so far of the rows found under other keys."""

    table: str
    column: str
    done: int
    total: int


def pending(engine: Engine, active: str) -> dict[tuple[str, str], int]:
    """Rows per encrypted column sealed under a key other than ``active`` (what a re-encryption has left)."""
    out: dict[tuple[str, str], int] = {}
    for use in vault.key_usage(engine):
        if use.key_id is not None and use.key_id != active:
            out[(use.table, use.column)] = out.get((use.table, use.column), 0) + use.rows
    return out


def reencrypt(
    engine: Engine,
    *,
    batch: int = BATCH_ROWS,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[tuple[str, str], int]:
    """Re-seal every value not under the active key, batch by batch; rows rewritten per column.

    Each batch reads up to ``batch`` rows by primary key (keyset order), opens each value through its
    column type and seals it again under the active key, and commits. A value that needs a key missing
    from the ring raises DataKeyError naming its row.
    """
    active = vault.ring().active
    todo = pending(engine, active)
    rewritten: dict[tuple[str, str], int] = {}
    for t, c in vault.encrypted_columns():
        total = todo.get((t.name, c.name), 0)
        if not total:
            continue
        done = 0
        last: tuple[Any, ...] | None = None
        while True:
            with engine.begin() as conn:
                bare, kid, col = vault.stored_key_id(conn, t, c)
                pks = [bare.c[pk.name] for pk in t.primary_key.columns]
                stmt = select(*pks, col).select_from(bare).where(kid.is_not(None), kid != literal(active))
                if last is not None:
                    stmt = stmt.where(_after(pks, last))
                rows = conn.execute(stmt.order_by(*pks).limit(batch)).all()
                if not rows:
                    break
                updates = []
                for row in rows:
                    *key, stored = row
                    updates.append(_reseal(t, c, key, stored, conn.dialect))
                _write(conn, t, bare, col, pks, updates)
                last = tuple(rows[-1][: len(pks)])
                done += len(rows)
            if on_progress is not None:
                on_progress(Progress(t.name, c.name, min(done, total), max(total, done)))
        rewritten[(t.name, c.name)] = done
    return rewritten


def _after(pks: list[Any], last: tuple[Any, ...]) -> ColumnElement[bool]:
    if len(pks) == 1:
        return pks[0] > literal(last[0])  # type: ignore[no-any-return]
    return tuple_(*pks) > tuple_(*(literal(v) for v in last))


def _reseal(t: Table, c: Any, key: list[Any], stored: Any, dialect: Any) -> dict[str, Any]:
    try:
        plain = c.type.process_result_value(stored, dialect)
    except DataKeyError as exc:
        raise DataKeyError(f"{RowRef(t.name, '/'.join(str(k) for k in key), c.name)}: {exc}") from None
    params = {f"pk_{i}": v for i, v in enumerate(key)}
    params["old"] = stored
    params["new"] = c.type.process_bind_param(plain, dialect)
    return params


def _write(
    conn: Any, t: Table, bare: Any, col: ColumnClause[Any], pks: list[Any], updates: list[dict[str, Any]]
) -> None:
    # Compare and set: a row a request changed since it was read keeps the newer value.
    cond = and_(*(pk == bindparam(f"pk_{i}") for i, pk in enumerate(pks)), col == bindparam("old"))
    conn.execute(bare.update().where(cond).values({col.name: bindparam("new")}), updates)


def retire(engine: Engine, key_id: str) -> DataKeyRing:
    """Remove ``key_id`` from the ring; refused while it is active or any row needs it (rows named)."""
    current = vault.read_ring(vault.key_file())
    if key_id not in current.keys:
        raise DataKeyError(f"data key {key_id!r} is not in {current.path} (keys: {', '.join(current.keys)})")
    if key_id == current.active:
        raise DataKeyError(
            f"data key {key_id!r} is the active key of {current.path}: rotate to a new key first"
        )
    total = sum(u.rows for u in vault.key_usage(engine) if u.key_id == key_id)
    if total:
        raise KeyStillNeeded(key_id, vault.rows_needing(engine, key_id, limit=10), total)
    keys = {k: v for k, v in current.keys.items() if k != key_id}
    vault.write_ring(
        DataKeyRing(current.path, current.active, keys, current.index_key, current.profile), exclusive=False
    )
    vault.forget()
    return vault.ring()


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows per key id across the database (``None`` keyed as ``plain``)."""
    out: dict[str, int] = {}
    for use in vault.key_usage(engine):
        k = use.key_id or "plain"
        out[k] = out.get(k, 0) + use.rows
    return out


# --- a change of crypto profile --------------------------------------------------------------------------


@dataclass
class MigrationResult:
    """What :func:`migrate_profile` rewrote, per (table, column), and where the rings are."""

    from_profile: str
    to_profile: str
    resealed: dict[tuple[str, str], int] = field(default_factory=dict)
    reindexed: dict[tuple[str, str], int] = field(default_factory=dict)
    remapped: dict[tuple[str, str], int] = field(default_factory=dict)
    audit_seq: int = 0  # the ``crypto.profile_changed`` event
    ring_path: Path | None = None
    backup_path: Path | None = None


def migrate_profile(
    session: Session,
    to: str,
    *,
    actor: audit.Actor,
    extra: Callable[[Session], None] | None = None,
    after_commit: Callable[[], None] | None = None,
    batch: int = BATCH_ROWS,
) -> MigrationResult:
    """Move the data at rest to the crypto profile ``to`` (密码配置迁移), in one transaction.

    Builds a fresh ring of ``to``; opens every sealed value of ``Base.metadata`` under the ring of
    ``FCX_DATA_KEY_FILE`` (whatever its profile) and seals it under the new one; recomputes every
    :class:`~fanchaoxin.core.vault.BlindIndexOf` column from its decrypted source and replaces, in every
    :class:`~fanchaoxin.core.vault.RemappedIndex` column, each old index it can map; switches the audit
    chain (:func:`audit.switch_profile`); runs ``extra`` (the other slices' steps) in the same
    transaction; commits. Only then is the new ring written to the ring path, the old one kept beside
    it as ``<name>.<old profile>.bak``, and ``after_commit`` run (the other slices' key files). Any
    failure before the commit rolls the whole transaction back and leaves the ring file as it was.
    Run it with the platform stopped; start it again under ``FCX_CRYPTO_PROFILE=<to>``.
    """
    target = profile(to).name
    path = vault.key_file()
    old = vault.read_ring(path)
    if old.profile == target:
        raise DataKeyError(f"data key file {path} is already a {target!r} ring: nothing to migrate")
    new = vault.new_ring(path, target)
    result = MigrationResult(old.profile, target)
    # The new ring is on disk before the commit: were the process to die between the commit and the
    # replacement of the ring file, the values sealed under it could still be opened (the error at the
    # next start names the rows; the operator moves this file into place).
    pending = vault.DataKeyRing(
        path.with_name(f"{path.name}.{target}.pending"), new.active, new.keys, new.index_key, new.profile
    )
    vault.write_ring(pending, exclusive=False)
    try:
        conn = session.connection()
        present = _present_columns(conn)
        remap: dict[str, dict[str, str]] = {}
        for t in _tables_to_rewrite(present):
            _rewrite_table(conn, t, present[t.name], old, new, batch, result, remap)
        for t, c, decl in vault.blind_index_columns():
            if isinstance(decl, RemappedIndex) and c.name in present.get(t.name, set()):
                result.remapped[(t.name, c.name)] = _remap(conn, t, c, remap.get(decl.domain, {}))
        result.audit_seq = audit.switch_profile(session, target, actor, current=old.profile)
        if extra is not None:
            extra(session)
        session.commit()
    except BaseException:
        session.rollback()
        pending.path.unlink(missing_ok=True)
        raise
    backup = path.with_name(f"{path.name}.{old.profile}.bak")
    shutil.copy2(path, backup)
    os.replace(pending.path, path)
    vault.forget()
    result.ring_path, result.backup_path = path, backup
    if after_commit is not None:
        after_commit()
    return result


def _present_columns(conn: Any) -> dict[str, set[str]]:
    insp = inspect(conn)
    return {name: {col["name"] for col in insp.get_columns(name)} for name in insp.get_table_names()}


def _tables_to_rewrite(present: dict[str, set[str]]) -> list[Table]:
    out = []
    for t in Base.metadata.sorted_tables:
        if t.name not in present:
            continue
        if any(
            isinstance(c.type, vault.ENCRYPTED_TYPES)
            or isinstance(c.info.get(vault.BLIND_INDEX), BlindIndexOf)
            for c in t.columns
        ):
            out.append(t)
    return out


def _rewrite_table(
    conn: Any,
    t: Table,
    have: set[str],
    old: DataKeyRing,
    new: DataKeyRing,
    batch: int,
    result: MigrationResult,
    remap: dict[str, dict[str, str]],
) -> None:
    """One pass over a table: open its sealed values under ``old``, recompute its blind indexes and seal
    again under ``new``; keyset pages of ``batch`` rows."""
    sealed: list[Any] = [c for c in t.columns if isinstance(c.type, vault.ENCRYPTED_TYPES) and c.name in have]
    indexes = [
        (c, c.info[vault.BLIND_INDEX])
        for c in t.columns
        if isinstance(c.info.get(vault.BLIND_INDEX), BlindIndexOf) and c.name in have
    ]
    pk_names = [pk.name for pk in t.primary_key.columns]
    names = list(
        dict.fromkeys(
            [*pk_names, *(c.name for c in sealed), *(c.name for c, _ in indexes)]
            + [s for _, d in indexes for s in d.source]
        )
    )
    bare = table(t.name, *(column(n) for n in names))
    pks = [bare.c[n] for n in pk_names]
    targets = [c.name for c in sealed] + [c.name for c, _ in indexes]
    if not targets:
        return
    dialect = conn.dialect
    last: tuple[Any, ...] | None = None
    while True:
        stmt = select(*(bare.c[n] for n in names))
        if last is not None:
            stmt = stmt.where(_after(pks, last))
        rows = conn.execute(stmt.order_by(*pks).limit(batch)).mappings().all()
        if not rows:
            break
        updates = []
        for row in rows:
            ref = RowRef(t.name, "/".join(str(row[n]) for n in pk_names), "")
            plain: dict[str, Any] = dict(row)
            with vault.pinned(old):
                for c in sealed:
                    if row[c.name] is not None:
                        try:
                            plain[c.name] = c.type.process_result_value(row[c.name], dialect)
                        except DataKeyError as exc:
                            raise DataKeyError(f"{RowRef(ref.table, ref.key, c.name)}: {exc}") from None
            params: dict[str, Any] = {f"pk_{i}": row[n] for i, n in enumerate(pk_names)}
            with vault.pinned(new):
                for c in sealed:
                    value = plain[c.name]
                    params[f"v_{c.name}"] = (
                        None if value is None else c.type.process_bind_param(value, dialect)
                    )
                    if value is not None:
                        result.resealed[(t.name, c.name)] = result.resealed.get((t.name, c.name), 0) + 1
                for c, decl in indexes:
                    current = row[c.name]
                    fresh: Any = None if current is None else decl.compute(plain)
                    params[f"v_{c.name}"] = fresh
                    if current is not None:
                        result.reindexed[(t.name, c.name)] = result.reindexed.get((t.name, c.name), 0) + 1
                        if fresh != current:
                            remap.setdefault(decl.domain, {})[current] = fresh
            updates.append(params)
        cond = and_(*(pk == bindparam(f"pk_{i}") for i, pk in enumerate(pks)))
        conn.execute(bare.update().where(cond).values({n: bindparam(f"v_{n}") for n in targets}), updates)
        last = tuple(rows[-1][n] for n in pk_names)


def _remap(conn: Any, t: Table, c: Any, mapping: dict[str, str]) -> int:
    """Replace each old index of ``c`` found in ``mapping`` by its new value; how many rows changed."""
    if not mapping:
        return 0
    bare_col: ColumnClause[Any] = column(c.name)
    bare = table(t.name, bare_col)
    found = 0
    olds = list(mapping)
    for i in range(0, len(olds), 500):
        chunk = olds[i : i + 500]
        hits = [v for (v,) in conn.execute(select(bare_col).select_from(bare).where(bare_col.in_(chunk)))]
        if hits:
            conn.execute(
                bare.update().where(bare_col == bindparam("old")).values({c.name: bindparam("new")}),
                [{"old": h, "new": mapping[h]} for h in dict.fromkeys(hits)],
            )
            found += len(hits)
    return found
