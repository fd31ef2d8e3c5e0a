"""What publishing one blacklist entry costs: SQL statements and wall time, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.bench_publish [--publications 50] [--enterprises 8] [--liable 2]
        [--departments 1] [--warmup 2] [--backends sqlite,postgresql]

Setup (not measured): a fresh database (a new SQLite file, or a new PostgreSQL schema dropped at the
end), the platform, `--enterprises` participating enterprises cycling through every business type
(so instructions fan out to each kind), `--departments` departments, and for each publication one
submitted entry: a unit with a valid USCC, serious severity, judicial basis, `--liable` liable persons
(each published with the unit as a linked entry), already taken to `under_review`.

Measured: only the publish step, `publish(session, actor, entry)` below, plus the flush of whatever
it left pending, with the entry loaded beforehand as the API's transition route does. Statements are
counted with a `before_cursor_execute` listener on the engine (one per cursor execution: an
executemany counts once, a multi-VALUES INSERT once per batch; the rows they send are counted apart)
and broken down by statement kind and table.
Time is the median over `--publications` publications, after `--warmup` unmeasured ones; COMMIT is
timed apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine.interfaces import ExecuteStyle

import fanchaoxin
from bench.bench_uploads import make_resident_id, make_uscc
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import service as orgs
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.workflows.entries import take_step

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LIABLE_ROLES = ["legal_representative", "principal", "directly_responsible"]

PUBLISH_VIA = "fanchaoxin.workflows.entries.take_step(session, actor, entry, Action.publish)"


def publish(session: Any, actor: Actor, entry: Entry) -> None:
    """The step measured: publication and all that follows it (instructions, feed, linked entries)."""
    take_step(session, actor, entry, Action.publish)


# --- the machine and the database ---------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, load average {load}, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}"
    )


def fresh_database(backend: str) -> tuple[Database, Callable[[], None]]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="fcx_bench_publish_")
        db = Database(f"sqlite:///{folder}/bench.db")

        def remove() -> None:
            db.dispose()
            shutil.rmtree(folder, ignore_errors=True)

        try:
            db.upgrade()
        except BaseException:
            remove()
            raise
        return db, remove
    if backend != "postgresql":
        raise SystemExit(f"unknown backend {backend!r} (sqlite, postgresql)")
    schema = f"fcx_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG, schema=schema)

    def drop() -> None:
        db.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    try:
        db.upgrade()
    except BaseException:
        drop()
        raise
    return db, drop


# --- counting statements ------------------------------------------------------------------------------

_NAME = r'"?(?:\w+"?\.)?"?(\w+)"?'
_KINDS = [
    ("INSERT INTO", re.compile(r"^\s*INSERT\s+INTO\s+" + _NAME, re.I)),
    ("UPDATE", re.compile(r"^\s*UPDATE\s+" + _NAME, re.I)),
    ("DELETE FROM", re.compile(r"^\s*DELETE\s+FROM\s+" + _NAME, re.I)),
    ("SELECT … FROM", re.compile(r"^\s*SELECT\b.*?\bFROM\s+" + _NAME, re.I | re.S)),
]


def statement_kind(sql: str) -> str:
    for kind, pattern in _KINDS:
        m = pattern.match(sql)
        if m:
            return f"{kind} {m.group(1)}"
    return " ".join(sql.split()[:3])


@dataclass
class Call:
    """One statement as SQLAlchemy executed it: its cursor executions and the rows it sent."""

    kind: str
    style: str  # execute | executemany | insertmanyvalues
    executions: int = 0
    rows: int = 0


@dataclass
class Counts:
    """What one publication executed."""

    calls: list[Call] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(c.executions for c in self.calls)

    def executions(self, kind: str) -> int:
        return sum(c.executions for c in self.calls if c.kind == kind)

    def by_kind(self) -> dict[str, tuple[int, int, Counter[str]]]:
        """kind → (cursor executions, rows, executions by style)."""
        out: dict[str, tuple[int, int, Counter[str]]] = {}
        for c in self.calls:
            e, r, styles = out.get(c.kind, (0, 0, Counter()))
            styles[c.style] += c.executions
            out[c.kind] = (e + c.executions, r + c.rows, styles)
        return out

    def single_row_inserts(self) -> tuple[int, int]:
        """INSERT cursor executions that send one row each, and all INSERT cursor executions."""
        inserts = [c for c in self.calls if c.kind.startswith("INSERT")]
        single = sum(c.executions for c in inserts if c.rows == c.executions)
        return single, sum(c.executions for c in inserts)


class StatementCounter:
    def __init__(self, db: Database) -> None:
        self.counts: Counts | None = None
        self._context: Any = None
        event.listen(db.engine, "before_cursor_execute", self._before)

    def _before(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if self.counts is None:
            return
        kind = statement_kind(statement)
        if getattr(context, "execute_style", None) == ExecuteStyle.INSERTMANYVALUES:
            # one multi-VALUES INSERT per batch (one per row where the batch is downgraded), its
            # parameters flattened: the rows are the context's, counted at its first batch
            if context is not self._context:
                self._context = context
                self.counts.calls.append(
                    Call(kind, "insertmanyvalues", rows=len(context.compiled_parameters))
                )
            self.counts.calls[-1].executions += 1
            return
        self._context = None
        rows = len(parameters) if executemany else 1
        self.counts.calls.append(Call(kind, "executemany" if executemany else "execute", 1, rows))


# --- setup --------------------------------------------------------------------------------------------


def participants(db: Database, enterprises: int, departments: int) -> tuple[Actor, uuid.UUID]:
    """The platform (whose reviewer publishes), enterprises of every business type, departments.

    Returns the reviewer and the organisation that submits the entries (a department, else the platform).
    """
    types = list(BusinessType)
    with db.session() as s:
        platform_org = orgs.create_organisation(s, SYSTEM, kind=OrgKind.platform, name="平台")
        orgs.create_key(s, SYSTEM, platform_org, Role.platform_reviewer)
        for i in range(enterprises):
            # one type each, then a second type for the enterprises past the sixth
            business = [types[i % len(types)]] + ([types[(i + 1) % len(types)]] if i >= len(types) else [])
            org = orgs.create_organisation(
                s,
                SYSTEM,
                kind=OrgKind.enterprise,
                name=f"基准企业{i + 1}",
                business_types=business,
                agreement_signed_on=date(2017, 1, 1),
            )
            orgs.create_key(s, SYSTEM, org, Role.enterprise_node)
        owner = platform_org.id
        for i in range(departments):
            dept = orgs.create_organisation(s, SYSTEM, kind=OrgKind.department, name=f"基准部门{i + 1}")
            owner = dept.id if i == 0 else owner
        return Actor("bench:reviewer", platform_org.id), owner


def entry_body(rng: random.Random, i: int, liable: int) -> dict[str, Any]:
    return {
        "subject": {
            "kind": "unit",
            "name": f"基准刷单网络科技有限公司{i}",
            "identifiers": [{"type": "uscc", "value": make_uscc(rng)}],
        },
        "behaviours": ["order_brushing", "fake_review"],
        "role": "organizer",
        "severity": "serious",
        "basis": "judicial_decision",
        "document_number": f"(2026)京0105刑初{1000 + i}号",
        "issuing_authority": "北京市朝阳区人民法院",
        "facts": "组织刷单 1,200 笔，虚假评价 900 条。",
        "liable_persons": [
            {
                "role": LIABLE_ROLES[k % len(LIABLE_ROLES)],
                "name": f"责任人{i}-{k}",
                "identifiers": [{"type": "resident_id", "value": make_resident_id(rng)}],
            }
            for k in range(liable)
        ],
    }


def submitted_entries(
    db: Database, reviewer: Actor, owner: uuid.UUID, n: int, liable: int, seed: int = 5
) -> list[uuid.UUID]:
    """`n` entries, each submitted and taken to under_review (committed), ready to publish."""
    rng = random.Random(seed)
    submitter = Actor("bench:submitter", owner)
    ids = []
    with db.session() as s:
        for i in range(n):
            e = registry.submit(s, submitter, owner, EntryIn.model_validate(entry_body(rng, i, liable)))
            take_step(s, reviewer, e, Action.start_review)
            ids.append(e.id)
    return ids


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    counts: list[Counts]
    publish_ms: list[float]
    cpu_ms: list[float]
    commit_ms: list[float]
    instructions_per_publication: float
    entries_per_publication: float


def run_backend(
    backend: str, publications: int, warmup: int, enterprises: int, departments: int, liable: int
) -> Result:
    db, drop = fresh_database(backend)
    try:
        actor, owner = participants(db, enterprises, departments)
        ids = submitted_entries(db, actor, owner, warmup + publications, liable)
        counter = StatementCounter(db)
        counts, publish_ms, cpu_ms, commit_ms = [], [], [], []
        for n, entry_id in enumerate(ids):
            with db.session() as s:
                entry = registry.get_entry_for_update(s, entry_id)  # as the API route loads it
                counter.counts = Counts()
                t0, c0 = time.perf_counter(), time.process_time()
                publish(s, actor, entry)
                s.flush()
                t1, c1 = time.perf_counter(), time.process_time()
                measured, counter.counts = counter.counts, None
                s.commit()
                t2 = time.perf_counter()
            if n >= warmup:
                counts.append(measured)
                publish_ms.append((t1 - t0) * 1000)
                cpu_ms.append((c1 - c0) * 1000)
                commit_ms.append((t2 - t1) * 1000)
        with db.session() as s:
            # every instruction and published entry comes from a publication (setup publishes none)
            n_instructions = s.scalar(select(func.count()).select_from(Instruction)) or 0
            n_published = (
                s.scalar(select(func.count()).select_from(Entry).where(Entry.status == "published")) or 0
            )
        total = warmup + publications
        return Result(
            backend,
            counts,
            publish_ms,
            cpu_ms,
            commit_ms,
            instructions_per_publication=n_instructions / total,
            entries_per_publication=n_published / total,
        )
    finally:
        drop()


def _med(values: list[int]) -> str:
    lo, hi, med = min(values), max(values), statistics.median(values)
    text_ = f"{med:g}"
    return text_ if lo == hi else f"{text_} ({lo}–{hi})"


def report(results: list[Result]) -> None:
    head = (
        f"{'backend':<11} {'statements/pub':>15} {'INSERT instructions':>20} {'instr. rows':>12} "
        f"{'1-row INSERTs':>14} {'entries':>8} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>7} {'commit ms':>10}"
    )
    print()
    print(head)
    print("-" * len(head))
    for r in results:
        totals = [c.total for c in r.counts]
        ins = [c.executions("INSERT INTO instructions") for c in r.counts]
        single = [c.single_row_inserts()[0] for c in r.counts]
        p90 = statistics.quantiles(r.publish_ms, n=10)[-1] if len(r.publish_ms) > 1 else r.publish_ms[0]
        print(
            f"{r.backend:<11} {_med(totals):>15} {_med(ins):>20} {r.instructions_per_publication:>12.1f} "
            f"{_med(single):>14} {r.entries_per_publication:>8.1f} {statistics.median(r.publish_ms):>10.2f} "
            f"{p90:>8.2f} {statistics.median(r.cpu_ms):>7.2f} {statistics.median(r.commit_ms):>10.2f}"
        )
    print(
        "statements/pub: cursor executions in the publish step, median (range if it varies); INSERT "
        "instructions: how many of them insert instructions; instr. rows: instruction rows written; "
        "1-row INSERTs: INSERT executions that send a single row; entries: entries published (the "
        "unit's and its liable persons'); ms: publish step (+ flush), wall time; CPU: this process's CPU time in it (median); commit: the "
        "COMMIT after it"
    )
    for r in results:
        print(f"\nby statement kind [{r.backend}], per publication (median): executions, rows sent, how")
        kinds: Counter[str] = Counter()
        for c in r.counts:
            kinds.update({k: v[0] for k, v in c.by_kind().items()})
        empty: tuple[int, int, Counter[str]] = (0, 0, Counter())
        for kind, _ in kinds.most_common():
            per = [c.by_kind().get(kind, empty) for c in r.counts]
            execs = statistics.median([p[0] for p in per])
            rows = statistics.median([p[1] for p in per])
            styles: Counter[str] = Counter()
            for p in per:
                styles.update(p[2])
            how = ", ".join(f"{style} {n / len(per):g}" for style, n in styles.most_common())
            print(f"  {execs:>5g} {rows:>6g}  {kind:<36} {how}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--publications", type=int, default=50, help="measured publications per backend")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured publications first")
    ap.add_argument("--enterprises", type=int, default=8, help="participating enterprises")
    ap.add_argument("--departments", type=int, default=1, help="departments (they get instructions too)")
    ap.add_argument("--liable", type=int, default=2, help="liable persons per entry (linked entries)")
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    args = ap.parse_args()
    print(machine())
    print(f"fanchaoxin from {fanchaoxin.__file__}")
    print(f"publish step: {PUBLISH_VIA}")
    print(
        f"{args.publications} publications (+{args.warmup} warm-up) per backend, {args.enterprises} "
        f"enterprises, {args.departments} department(s), {args.liable} liable persons per entry"
    )
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print(f"[{backend}] …", file=sys.stderr, flush=True)
        results.append(
            run_backend(
                backend, args.publications, args.warmup, args.enterprises, args.departments, args.liable
            )
        )
    report(results)


if __name__ == "__main__":
    main()
