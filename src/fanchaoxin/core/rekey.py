"""Data key rotation (数据密钥轮换): add a key, make it active, re-encrypt the rows, retire the old key.

``fcx keys rotate-data`` writes the new ring first: every worker re-reads the file when it changes
(``vault.ring()``), so from then on new values are sealed under the new key while values under the old
one still open. The re-encryption then walks every encrypted column of ``Base.metadata`` in batches,
each its own short transaction, so a serving platform keeps working beside it. A row is rewritten only
if it still holds the value that was read (compare and set): a change made by a request meanwhile is
never overwritten with an older one, and it was sealed under the new key anyway.

A retired key is removed from the ring only when no row needs it (``retire``); otherwise the rows are
named, so that an operator never loses data by retiring too early.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, bindparam, literal, select, tuple_
from sqlalchemy.sql.expression import ColumnClause

from fanchaoxin.core import vault
from fanchaoxin.core.vault import DataKeyError, DataKeyRing, RowRef

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
    keys = {**current.keys, new_id: vault.new_ring(current.path).keys["d1"]}
    ring = DataKeyRing(current.path, new_id, keys, current.index_key)
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
    vault.write_ring(DataKeyRing(current.path, current.active, keys, current.index_key), exclusive=False)
    vault.forget()
    return vault.ring()


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows per key id across the database (``None`` keyed as ``plain``)."""
    out: dict[str, int] = {}
    for use in vault.key_usage(engine):
        k = use.key_id or "plain"
        out[k] = out.get(k, 0) + use.rows
    return out
