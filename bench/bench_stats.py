"""Statistics at scale: `stats.service` queries over `--entries` entries and one instruction each.

    .venv/bin/python -m bench.bench_stats --entries 1000000 [--backend postgresql|sqlite]

Entries (with their subjects) and instructions are seeded with bulk SQL, spread over 24 months with
mixed behaviours, severities, bases and statuses; then each query runs `--runs` times and the
median is printed. Uses a fresh PostgreSQL schema (dropped at the end) or a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, text

from bench.bench_registry import fresh_database, tenant
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.stats import service as stats
from fanchaoxin.subjects.models import Subject

BEHAVIOURS = ["order_brushing", "fake_review", "malicious_registration", "empty_parcel", "subsidy_brushing"]
MEASURES = [
    "deduct_credit_points",
    "downgrade_credit_level",
    "restrict_account_privileges",
    "label_search_risk",
]


def seed(db, org_id: uuid.UUID, n: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    chunk = 20_000
    with db.engine.begin() as conn:
        for start in range(0, n, chunk):
            subjects, entries, instructions = [], [], []
            for _ in range(min(chunk, n - start)):
                sid, eid = uuid.uuid4(), uuid.uuid4()
                at = t0 + timedelta(seconds=rng.randrange(0, 730 * 86400))
                kind = rng.choice(["unit", "individual", "website", "courier_staff"])
                subjects.append({"id": sid, "kind": kind, "name": "x", "name_key": "x", "created_at": at})
                status = rng.choices(["published", "disputed", "revoked", "expired", "repaired", "submitted"],
                                     [70, 3, 5, 12, 5, 5])[0]  # fmt: skip
                published = None if status == "submitted" else at + timedelta(days=7)
                ended = (
                    published + timedelta(days=90) if status in ("revoked", "expired", "repaired") else None
                )
                entries.append({
                    "id": eid, "subject_id": sid, "owner_org_id": org_id, "shared_with_all": status in ("published", "disputed"),
                    "status": status, "behaviours": rng.sample(BEHAVIOURS, rng.choice([1, 1, 2])), "role": "organizer",
                    "services": [], "severity": rng.choice(["minor", "general", "serious"]),
                    "basis": rng.choice(["enterprise_finding", "administrative_penalty", "judicial_decision"]),
                    "facts": "刷单", "submitted_at": at, "submitted_by": "bench", "published_at": published,
                    "ended_at": ended, "updated_at": at, "version": 1,
                })  # fmt: skip
                if published is not None:
                    acked = rng.random() < 0.8
                    outcome = (
                        rng.choice(["executed", "executed", "not_applicable", "failed", None])
                        if acked
                        else None
                    )
                    instructions.append({
                        "id": uuid.uuid4(), "entry_id": eid, "owner_org_id": org_id, "kind": "apply",
                        "measure": rng.choice(MEASURES), "department_measure": False, "params": {}, "reason": "published",
                        "status": outcome or ("acknowledged" if acked else "pending"), "issued_at": published,
                        "ack_due_on": (published + timedelta(days=5)).date(),
                        "acknowledged_at": published + timedelta(days=1) if acked else None, "outcome": outcome,
                        "version": 1,
                    })  # fmt: skip
            conn.execute(insert(Subject), subjects)
            conn.execute(insert(Entry), entries)
            conn.execute(insert(Instruction), instructions)
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    db, drop = fresh_database(args.backend)
    try:
        org_id, _ = tenant(db)
        t = time.perf_counter()
        seed(db, org_id, args.entries)
        print(f"[{args.backend}] seeded {args.entries:,} entries in {time.perf_counter() - t:.0f} s")
        year = (date(2026, 1, 1), date(2026, 12, 31))
        cases = {
            "entries_by behaviour (all)": lambda s: stats.entries_by(s, "behaviour"),
            "entries_by month (all)": lambda s: stats.entries_by(s, "month"),
            "entries_by subject_kind (all)": lambda s: stats.entries_by(s, "subject_kind"),
            "entries_by severity, one year published": lambda s: stats.entries_by(
                s, "severity", start=year[0], end=year[1], published_only=True
            ),
            "measures_by_enterprise (all)": lambda s: stats.measures_by_enterprise(s),
            "measures_by_code (all)": lambda s: stats.measures_by_code(s),
            "public_summary": lambda s: stats.public_summary(s, today=date(2026, 10, 31)),
            "monthly 2026-10": lambda s: stats.monthly(s, "2026-10", today=date(2026, 11, 15)),
        }
        for name, fn in cases.items():
            with db.session() as s:
                secs = timed(lambda fn=fn, s=s: fn(s), args.runs)
            print(f"[{args.backend}] {name}: {secs * 1000:,.0f} ms (median of {args.runs})")
    finally:
        drop()


if __name__ == "__main__":
    main()
