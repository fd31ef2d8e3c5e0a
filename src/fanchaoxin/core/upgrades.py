"""Upgrades without downtime (#23): expand, then contract.

During a rolling upgrade the previous release's workers keep serving on the new schema until the last
of them is replaced. So every migration says its phase (a module attribute `phase`):

* ``expand`` only adds: tables, nullable columns or columns with a server default, indexes, data. The
  previous release neither sees nor minds it.
* ``contract`` removes, renames or tightens. It may only touch what the previous release no longer uses,
  so it ships one release after the code stopped using the thing.

`changes(module)` reads what a migration's ``upgrade()`` would do without a database: it runs it against
alembic's `Operations` whose every operation is recorded instead of executed (once as PostgreSQL and
once as SQLite would see it, since migrations branch on the dialect). Recording rather than parsing the
source sees through helpers, loops and batch blocks, and gives alembic's own operation objects, with
their columns and types. A migration that reads the database while it runs cannot be recorded this way;
it is named as such and needs a person's review (the rule's test refuses it after the last release).

`releases.yaml` (next to the migrations) lists the cut releases: version, commit and schema head.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import sqlalchemy as sa
import yaml
from alembic.operations import Operations, ops
from alembic.operations.base import BatchOperations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from alembic.util.langhelpers import ModuleClsProxy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fanchaoxin.core.db import MIGRATIONS_DIR

Phase = Literal["expand", "contract"]
PHASES: tuple[Phase, ...] = ("expand", "contract")
# What a change needs: "never" is not allowed after a release in either phase (the previous release's
# inserts would fail at once), "review" could not be understood and needs a person.
Need = Literal["expand", "contract", "never", "review"]

RELEASES_FILE = MIGRATIONS_DIR / "releases.yaml"


# --- releases -------------------------------------------------------------------------------------------


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="its version (fanchaoxin.__version__)")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the full git commit it was cut from")
    schema_head: str = Field(min_length=1, description="the migration revision at its head")

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))


class ReleasesError(ValueError):
    """releases.yaml is malformed: the message names the entry and the field."""


def load_releases(path: Path = RELEASES_FILE) -> list[Release]:
    """The cut releases, oldest first; a malformed file is refused, naming the entry and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ReleasesError(f"{path}: 无法读取 (cannot be read): {exc}") from exc
    rows = data.get("releases") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ReleasesError(f"{path}: 缺少 releases 列表 (a list under `releases` is expected)")
    releases: list[Release] = []
    for i, row in enumerate(rows, start=1):
        try:
            releases.append(Release.model_validate(row))
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ReleasesError(f"{path}: 第 {i} 个发布 (release {i}): {where}") from None
    for before, after in itertools.pairwise(releases):
        if after.key <= before.key:
            raise ReleasesError(
                f"{path}: 版本须递增 (versions must increase): {after.version} after {before.version}"
            )
    return releases


# --- the steps and their phases -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One migration: its revision, the first line of its description, its declared phase."""

    revision: str
    description: str
    phase: Phase


def step_of(script: Script) -> Step:
    phase = getattr(script.module, "phase", None)
    if phase not in PHASES:
        raise ValueError(f"migration {script.revision}: phase must be 'expand' or 'contract', not {phase!r}")
    description = (script.doc or "").strip().splitlines()[0] if script.doc else ""
    return Step(script.revision, description, phase)


def is_safe_for_running(
    step: Step, order: Mapping[str, int], current: str | None, releases: list[Release]
) -> bool:
    """Whether the API that runs on a database at `current` keeps working once `step` is applied.

    An expand step: always. A contract step: only when the database is already at least at the
    release before the one that ships the step (the test checks each contract step against exactly
    that release); for older code nothing was checked. An empty database has nothing running on it.
    """
    if step.phase == "expand" or current is None:
        return True
    position = order[step.revision]
    before = [r for r in releases if r.schema_head in order and order[r.schema_head] < position]
    if not before:
        return False
    return order.get(current, -1) >= order[before[-1].schema_head]


# --- recording what a migration does ------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One thing a migration does to the schema, and the phase it needs."""

    need: Need
    what: str  # e.g. "drop column"
    table: str | None = None
    column: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        place = ".".join(p for p in (self.table, self.column) if p)
        return " ".join(p for p in (self.what, place, self.detail and f"({self.detail})") if p)


class _BatchRecorder(BatchOperations):
    def __init__(self, parent: _Recorder, table_name: str, schema: str | None) -> None:
        self.migration_context = parent.migration_context
        self.impl = _BatchTarget(table_name, schema)  # type: ignore[assignment]
        self._parent = parent

    def invoke(self, operation: ops.MigrateOperation) -> Any:
        return self._parent.invoke(operation)


@dataclass
class _BatchTarget:
    """What alembic's batch operations read of their batch: the table and its schema."""

    table_name: str
    schema: str | None


class _Recorder(Operations):
    def __init__(self, context: MigrationContext) -> None:
        super().__init__(context)
        self.recorded: list[ops.MigrateOperation] = []

    def invoke(self, operation: ops.MigrateOperation) -> Any:
        self.recorded.append(operation)
        return None

    @contextmanager
    def batch_alter_table(  # type: ignore[override]
        self, table_name: str, schema: str | None = None, **_: Any
    ) -> Iterator[BatchOperations]:
        yield _BatchRecorder(self, table_name, schema)


# alembic's `op` module stands in for the Operations class it was made for (one registration per class,
# shared here): installed, the recorder answers every `op.…` call a migration makes.
ModuleClsProxy._setups[_Recorder] = ModuleClsProxy._setups[Operations]


class NotRecordable(RuntimeError):
    """The migration reads the database while it runs (or fails without one)."""


def record(module: ModuleType, dialect: str) -> list[ops.MigrateOperation]:
    """The operations `module.upgrade()` would run on `dialect`, none of them executed."""
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": io.StringIO()}
    )
    recorder = _Recorder(context)
    recorder._install_proxy()
    try:
        module.upgrade()
    except Exception as exc:
        raise NotRecordable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        recorder._remove_proxy()
    return recorder.recorded


def changes(module: ModuleType) -> list[Change]:
    """What the migration's upgrade() does, under PostgreSQL and SQLite, each change once."""
    found: dict[Change, None] = {}
    for dialect in ("postgresql", "sqlite"):
        try:
            recorded = record(module, dialect)
        except NotRecordable as exc:
            found[Change("review", "reads the database while it runs", detail=str(exc)[:200])] = None
            continue
        created = {o.table_name for o in recorded if isinstance(o, ops.CreateTableOp)}
        for operation in recorded:
            for change in _classify(operation, created):
                found[change] = None
    return list(found)


def needed_phase(found: list[Change]) -> Need:
    """The least a migration with these changes must declare ("never"/"review" when none will do)."""
    needs = {c.need for c in found}
    worst: tuple[Need, ...] = ("never", "review", "contract")
    return next((need for need in worst if need in needs), "expand")


def _classify(operation: ops.MigrateOperation, created: set[str]) -> Iterator[Change]:
    table = getattr(operation, "table_name", None)
    new_table = table in created  # a table made in the same migration is nobody's yet
    if isinstance(operation, ops.CreateTableOp):
        yield Change("expand", "create table", table)
    elif isinstance(operation, ops.BulkInsertOp):
        yield Change("expand", "insert rows", operation.table.name)
    elif isinstance(operation, ops.CreateIndexOp):
        concurrent = operation.kw.get("postgresql_concurrently", False)
        detail = "" if new_table or concurrent else "locks writes while it builds (not CONCURRENTLY)"
        yield Change("expand", "create index", table, detail=detail)
    elif isinstance(operation, ops.AddColumnOp):
        column = operation.column
        if new_table or column.nullable or column.server_default is not None:
            yield Change("expand", "add column", table, column.name)
        else:
            yield Change("never", "add NOT NULL column without a server default", table, column.name)
    elif isinstance(operation, ops.AlterColumnOp):
        yield from _classify_alter(operation, new_table)
    elif isinstance(operation, ops.DropColumnOp):
        yield Change("contract", "drop column", table, operation.column_name)
    elif isinstance(operation, ops.DropTableOp):
        yield Change("contract", "drop table", table)
    elif isinstance(operation, ops.RenameTableOp):
        yield Change("contract", "rename table", table, detail=f"to {operation.new_table_name}")
    elif isinstance(operation, ops.DropIndexOp):
        yield Change("contract", "drop index", table, detail=operation.index_name)
    elif isinstance(operation, ops.DropConstraintOp):
        yield Change("contract", "drop constraint", table, detail=str(operation.constraint_name))
    elif isinstance(operation, ops.AddConstraintOp):
        # A new constraint checks the rows the previous release writes; on a new table there are none.
        need: Need = "expand" if new_table else "contract"
        yield Change(need, "add constraint", table, detail=type(operation).__name__)
    elif isinstance(operation, ops.ExecuteSQLOp):
        yield from _classify_sql(str(operation.sqltext))
    else:
        yield Change("review", "unrecognised operation", table, detail=type(operation).__name__)


def _classify_alter(operation: ops.AlterColumnOp, new_table: bool) -> Iterator[Change]:
    table, column = operation.table_name, operation.column_name
    if new_table:
        yield Change("expand", "alter column", table, column)
        return
    if operation.modify_name is not None:
        yield Change("contract", "rename column", table, column, detail=f"to {operation.modify_name}")
    if operation.modify_nullable is False:
        yield Change("contract", "set NOT NULL", table, column)
    elif operation.modify_nullable is True:
        yield Change("expand", "drop NOT NULL", table, column)
    if operation.modify_type is not None:
        if _widens(operation.existing_type, operation.modify_type):
            yield Change("expand", "widen type", table, column, detail=str(operation.modify_type))
        else:
            yield Change("contract", "change type", table, column, detail=str(operation.modify_type))
    if operation.modify_server_default is not False:
        if operation.modify_server_default is None:
            yield Change("contract", "drop server default", table, column)
        else:
            yield Change("expand", "set server default", table, column)


def _widens(old: Any, new: Any) -> bool:
    """A longer string of the same kind: everything the previous release writes still fits."""
    if not isinstance(old, sa.String) or type(old) is not type(new):
        return False
    return new.length is None or (old.length is not None and new.length >= old.length)


_SQL_EXPAND = re.compile(
    r"^\s*(INSERT\b|UPDATE\b|CREATE\s+(UNIQUE\s+)?INDEX\b|CREATE\s+TABLE\b|"
    r"ALTER\s+TABLE\s+\S+\s+ADD\s+CONSTRAINT\s.*\bNOT\s+VALID\s*;?\s*$)",
    re.IGNORECASE | re.DOTALL,
)
_SQL_ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+(\S+)\s+ADD\s+COLUMN\s+(\S+)(.*)$", re.I | re.S)
_SQL_CONTRACT = re.compile(r"\b(DROP|RENAME|DELETE|TRUNCATE|SET\s+NOT\s+NULL|TYPE)\b", re.IGNORECASE)
_SQL_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+(\S+)\s+(DROP|RENAME)\s+COLUMN\s+(\S+)", re.I)
_SQL_TABLE = re.compile(r"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\S+)", re.I)


def _classify_sql(sql: str) -> Iterator[Change]:
    """Raw SQL, by its leading words; what is not understood goes to a person."""
    head = " ".join(sql.split())[:120]
    added = _SQL_ADD_COLUMN.match(sql)
    if added:
        table, column, rest = (p.strip('"') for p in added.groups())
        if re.search(r"\bNOT\s+NULL\b", rest, re.I) and not re.search(r"\bDEFAULT\b", rest, re.I):
            yield Change("never", "add NOT NULL column without a server default", table, column)
        else:
            yield Change("expand", "add column", table, column)
    elif _SQL_EXPAND.match(sql):
        yield Change("expand", "SQL", detail=head)
    elif column_change := _SQL_COLUMN.match(sql):
        table, verb, column = column_change.groups()
        what = "drop column" if verb.upper() == "DROP" else "rename column"
        yield Change("contract", what, table.strip('"'), column.strip('"'), detail=head)
    elif table_change := _SQL_TABLE.match(sql):
        yield Change("contract", "drop table", table_change.group(1).strip('"'), detail=head)
    elif _SQL_CONTRACT.search(sql):
        yield Change("contract", "SQL", detail=head)
    else:
        yield Change("review", "SQL not understood", detail=head)


# --- what the previous release uses ---------------------------------------------------------------------


# {table: {column: (nullable, written without being named: a default)}} of a release's ORM models.
Usage = dict[str, dict[str, tuple[bool, bool]]]


def usage_of(metadata: sa.MetaData) -> Usage:
    """The tables and columns a release's models read and write."""
    return {
        table.name: {
            c.name: (bool(c.nullable), c.default is not None or c.server_default is not None)
            for c in table.columns
        }
        for table in metadata.sorted_tables
    }


def violations(step: Step, found: list[Change], previous: Usage) -> list[str]:
    """Why `step`, as declared, would break the previous release's API (empty: it would not).

    The previous release's ORM models are what it reads and writes: a contract step may drop or rename
    only tables and columns they do not map, and tighten a column only if they always write it.
    """
    problems: list[str] = []
    for change in found:
        if change.need in ("never", "review"):
            problems.append(f"{change}: not allowed after a release in either phase")
        elif change.need == "contract" and step.phase == "expand":
            problems.append(f"{change}: removes or tightens, so the step must be a contract step")
        elif change.need == "contract":
            problems.extend(_used_by_previous(change, previous))
    return problems


def _used_by_previous(change: Change, previous: Usage) -> list[str]:
    if change.table is None:
        # Raw SQL that removes something: the tables it names cannot be known for sure.
        return [f"{change}: raw SQL in a contract step cannot be checked against the previous release"]
    columns = previous.get(change.table)
    if columns is None:
        return []
    if change.column is None:
        if change.what in ("drop index", "drop constraint"):
            return []  # the previous release keeps working, only slower or less strict
        return [f"{change}: the previous release still maps table {change.table}"]
    used = columns.get(change.column)
    if used is None:
        return []
    nullable, defaulted = used
    if change.what == "set NOT NULL" and (not nullable or defaulted):
        return []  # the previous release always writes it
    if change.what == "drop server default" and not nullable and not defaulted:
        return []
    return [f"{change}: the previous release still uses {change.table}.{change.column}"]


PHASE_WORDS = {"expand": "扩展 expand", "contract": "收缩 contract"}
