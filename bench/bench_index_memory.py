"""Memory of the decision index per worker and per host, before (an index in each worker) and after (the
packed file shared by the host's workers), and decisions/s with p99 on a real server.

    .venv/bin/python -m bench.bench_index_memory [--entries 1000000] [--workers 1,2,4] [--modes memory,packed]

1. In process (`--skip-http` runs only this): the same synthetic entries as bench_decide (its
   Generator: units, persons, accounts, liable persons, graded measures, 5% disputed, 2% past their
   maximum period). `memory`: a DecisionIndex built in a fresh process as sanctions.index.build makes it (per-scene
   tables shared); `packed`: the file written by
   one process (time, peak RSS of the writer, file size) and mapped by another. For each: the RSS and
   PSS the index adds to its process (/proc/self/smaps_rollup), and decide() per second on one core
   over the same questions (10% about listed subjects), verdict counts compared between the two.
2. POST /v1/decisions (`--skip-inprocess` runs only this): the entries COPYed into a fresh PostgreSQL
   schema (one feed event on top, as a platform always has), then for each mode and worker count
   uvicorn `--workers N` on `fanchaoxin.app:create_app` with `FCX_DECISION_INDEX=<mode>`: after every
   worker has its index, each worker's RSS and PSS (anonymous and shared parts) and the host's total
   (the PSS of every server process: shared pages counted once); then `--seconds` of closed-loop load
   (bench.loadgen, another process) at `--concurrency`: req/s, p50, p99, errors. The load generator,
   PostgreSQL and the server share the machine: read the load average printed with each run.

The schema, the server processes and the index directory are removed at the end, even on error.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.bench_decide import (
    Generator,
    Server,
    child_pids,
    request_body,
    seed_entries,
    start_server,
    warm_up,
)
from bench.bench_registry import fresh_database
from bench.bench_uploads import machine
from bench.loadgen import python_run
from fanchaoxin.core import vault
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs import service as orgs
from fanchaoxin.sanctions.decide import DecisionIndex, IndexedEntry, decide, index_entry
from fanchaoxin.sanctions.packed import BaseRow, PackedBase, PackedIndex, write_base
from fanchaoxin.sanctions.policy import measure_catalogue

# --- process memory ---------------------------------------------------------------------------------------


def memory_of(pid: int | str = "self") -> dict[str, float]:
    """RSS and PSS in MB, PSS split into anonymous (the process's own) and file + shmem (shared)."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                out[name] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- 1. in process ----------------------------------------------------------------------------------------


def _generate(entries: int, seed: int, today: date) -> tuple[list[Any], list[tuple[list[str], str]]]:
    gen = Generator(seed, today)
    gc.disable()
    made = list(gen.entries(entries))
    gc.enable()
    questions = []
    for scene, ids in (gen.request(0.10) for _ in range(100_000)):
        questions.append(([f"{t}:{v}" for t, v, _ in ids], scene))
    return made, questions


def _rate(index: Any, questions: list[tuple[list[str], str]], today: date) -> tuple[float, Counter[str]]:
    verdicts: Counter[str] = Counter(decide(index, k, s, today=today).verdict for k, s in questions)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for keys, scene in questions:
            decide(index, keys, scene, today=today)
        times.append(time.perf_counter() - t)
    return len(questions) / statistics.median(times), verdicts


def in_memory(entries: int, seed: int, today: date, out: Any) -> None:
    made, questions = _generate(entries, seed, today)
    gc.collect()
    gc.freeze()
    before = memory_of()
    cat = measure_catalogue()
    t = time.perf_counter()
    index = DecisionIndex()
    # As sanctions.index.build makes it: one per-scene table per distinct (measures, disputed).
    shared: dict[tuple[str, bool], Any] = {}
    for e in made:
        disputed = e.status == "disputed"
        by_scene = shared.get((e.measures_json, disputed))
        if by_scene is None:
            by_scene = shared[(e.measures_json, disputed)] = index_entry(
                entry_id="", subject_kind="", severity="", behaviours=(), disputed=disputed,
                max_end_on=None, liable_role=None, measures=e.measures, catalogue=cat,
            ).by_scene  # fmt: skip
        index.put(
            e.keys,
            IndexedEntry(
                str(e.entry_id), e.kind, e.severity, tuple(e.behaviours), disputed, e.max_end_on,
                e.liable_role, by_scene,
            ),
        )  # fmt: skip
    built = time.perf_counter() - t
    gc.collect()
    after = memory_of()
    rate, verdicts = _rate(index, questions, today)
    out.send({"build_s": built, "before": before, "after": after, "rate": rate, "verdicts": verdicts})


def packed_write(entries: int, seed: int, today: date, path: str, questions_path: str, out: Any) -> None:
    made, questions = _generate(entries, seed, today)
    Path(questions_path).write_text(json.dumps(questions))
    rows = (
        BaseRow(str(e.entry_id), e.keys, e.kind, e.severity, e.behaviours, e.status == "disputed",
                e.max_end_on, e.liable_role, e.measures)
        for e in made
    )  # fmt: skip
    base_rss = memory_of()["Rss"]
    t = time.perf_counter()
    write_base(Path(path), rows, seq=1, fingerprint={"seq": 1})
    out.send({"write_s": time.perf_counter() - t, "peak_rss": peak_rss_mb(), "rss_before": base_rss})


def packed_map(path: str, questions_path: str, today: date, out: Any) -> None:
    questions = [(k, s) for k, s in json.loads(Path(questions_path).read_text())]
    gc.collect()
    before = memory_of()
    t = time.perf_counter()
    index = PackedIndex(PackedBase(Path(path)))
    mapped = time.perf_counter() - t
    after = memory_of()
    rate, verdicts = _rate(index, questions, today)
    out.send({"map_s": mapped, "before": before, "after": after, "rate": rate, "verdicts": verdicts})


def _child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=target, args=(*args, child))
    p.start()
    try:
        got = parent.recv()
    finally:
        p.join()
    if p.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit code {p.exitcode})")
    return got


def bench_in_process(entries: int, seed: int, modes: list[str]) -> None:
    today = china_today()
    print(f"1. In process, {entries:,} synthetic entries in force (bench_decide's generator):")
    verdicts: dict[str, Counter[str]] = {}
    if "memory" in modes:
        r = _child(in_memory, entries, seed, today)
        rss = r["after"]["Rss"] - r["before"]["Rss"]
        pss = r["after"]["Pss"] - r["before"]["Pss"]
        print(
            f"  memory: DecisionIndex built in {r['build_s']:.1f} s; +{rss:,.0f} MB RSS, +{pss:,.0f} MB PSS "
            f"(all of it the process's own); decide() {r['rate']:,.0f}/s on one core"
        )
        verdicts["memory"] = r["verdicts"]
    if "packed" in modes:
        tmp = tempfile.mkdtemp(prefix="fcx_bench_index_")
        try:
            path, qpath = str(Path(tmp) / "x.fcxidx"), str(Path(tmp) / "questions.json")
            w = _child(packed_write, entries, seed, today, path, qpath)
            size = Path(path).stat().st_size / 1024 / 1024
            print(
                f"  packed: file written in {w['write_s']:.1f} s, {size:,.0f} MB "
                f"({size * 1024 * 1024 / entries:,.0f} B/entry); the writer's peak RSS {w['peak_rss']:,.0f} MB "
                f"(of which {w['rss_before']:,.0f} MB the generator's entries before writing)"
            )
            m = _child(packed_map, path, qpath, today)
            rss = m["after"]["Rss"] - m["before"]["Rss"]
            anon = m["after"].get("Pss_Anon", 0) - m["before"].get("Pss_Anon", 0)
            print(
                f"  packed: mapped and checked in {m['map_s']:.2f} s; +{rss:,.0f} MB RSS, of which the process's "
                f"own (anonymous) +{anon:,.0f} MB, the rest the file's pages shared with every other worker; "
                f"decide() {m['rate']:,.0f}/s on one core"
            )
            verdicts["packed"] = m["verdicts"]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for mode, v in verdicts.items():
        print(f"  verdicts ({mode}): " + ", ".join(f"{k} {n:,}" for k, n in sorted(v.items())))
    if len(verdicts) == 2:
        assert verdicts["memory"] == verdicts["packed"], "the two indexes disagree"
        print("  check: the same verdicts from both")


# --- 2. POST /v1/decisions --------------------------------------------------------------------------------


def server_memory(server: Server) -> tuple[list[dict[str, float]], float]:
    workers = server.worker_pids()
    everyone = {server.proc.pid, *child_pids(server.proc.pid)}
    return [memory_of(p) for p in workers], sum(memory_of(p).get("Pss", 0.0) for p in everyone)


def add_feed_event(db: Any) -> None:
    """COPY leaves no change feed; a platform always has one (each publication is an event), and a packed
    file is tied to its database by the event at its position (sanctions.packed.fingerprint)."""
    with db.engine.begin() as c:
        eid = c.execute(text("SELECT id FROM entries LIMIT 1")).scalar_one()
        c.execute(
            text(
                "INSERT INTO feed_events (seq, at, event, entry_id, record) "
                "VALUES (1, now(), 'published', :e, '{}')"
            ),
            {"e": eid},
        )
        c.execute(text("UPDATE feed_head SET seq = 1 WHERE id = 1"))


def bench_http(
    entries: int, seed: int, modes: list[str], workers_list: list[int], seconds: float, concurrency: int
) -> list[dict[str, Any]]:
    db, drop = fresh_database("postgresql")
    tmp = tempfile.mkdtemp(prefix="fcx_bench_index_http_")
    index_dir = Path(tmp) / "index"
    if "FCX_DATA_KEY_FILE" not in os.environ:
        os.environ["FCX_DATA_KEY_FILE"] = str(Path(tmp) / "data.json")
        get_settings.cache_clear()
        vault.write_ring(vault.new_ring(Path(os.environ["FCX_DATA_KEY_FILE"])), exclusive=True)
    rows: list[dict[str, Any]] = []
    server: Server | None = None
    try:
        with db.session() as s:
            owner = orgs.create_organisation(
                s, SYSTEM, kind=OrgKind.enterprise, name="基准电商", business_types=[BusinessType.ecommerce],
                agreement_signed_on=date(2017, 1, 1),
            )  # fmt: skip
            reader = orgs.create_organisation(
                s, SYSTEM, kind=OrgKind.enterprise, name="查询方", business_types=[BusinessType.logistics],
                agreement_signed_on=date(2017, 1, 1),
            )  # fmt: skip
            key = orgs.create_key(s, SYSTEM, reader, Role.enterprise_node).secret
            budgets.set_quotas(
                s, SYSTEM, reader, {"quota_plain_per_minute": 10**9, "quota_plain_per_day": 2 * 10**9}
            )
            owner_id = owner.id
        gen = Generator(seed + 1, china_today())
        t0 = time.perf_counter()
        gc.disable()
        try:
            seed_entries(db, owner_id, gen, entries)
        finally:
            gc.enable()
        add_feed_event(db)
        print(
            f"2. POST /v1/decisions: seeded {entries:,} entries by COPY in {time.perf_counter() - t0:.0f} s"
        )
        bodies = [request_body(scene, ids) for scene, ids in (gen.request(0.10) for _ in range(20_000))]
        hit = request_body("account_registration", gen.sample[0].idents)
        miss = request_body("account_registration", [gen.miss_ident()])
        for mode in modes:
            for workers in workers_list:
                os.environ["FCX_DECISION_INDEX"] = mode
                os.environ["FCX_DECISION_INDEX_DIR"] = str(index_dir)
                print(f" FCX_DECISION_INDEX={mode}, uvicorn --workers {workers}:")
                server = start_server(db, workers, "fanchaoxin.app:create_app", 30, tmp)
                warm_up(server, key, workers, hit, miss)
                python_run(server.port, key, bodies, concurrency, 3)  # connections, caches
                per_worker, host = server_memory(server)
                load = os.getloadavg()[0]
                r = python_run(server.port, key, bodies, concurrency, seconds)
                rps = r["requests"] / r["seconds"]
                row = {
                    "mode": mode, "workers": workers,
                    "rss": statistics.median(m.get("Rss", 0) for m in per_worker),
                    "pss": statistics.median(m.get("Pss", 0) for m in per_worker),
                    "own": statistics.median(m.get("Pss_Anon", 0) for m in per_worker),
                    "host": host, "rps": rps, "p50": r["p50"], "p99": r["p99"], "bad": r["bad"], "load": load,
                }  # fmt: skip
                rows.append(row)
                print(
                    f"  per worker (median): RSS {row['rss']:,.0f} MB, PSS {row['pss']:,.0f} MB (own {row['own']:,.0f} MB); "
                    f"host (PSS of all server processes) {host:,.0f} MB; {rps:,.0f} req/s, p50 {r['p50']:.1f} ms, "
                    f"p99 {r['p99']:.1f} ms at {concurrency} connections, {r['bad']} errors; load average {load:.1f}"
                )
                server.stop()
                server = None
        if index_dir.exists():
            sizes = [p.stat().st_size for p in index_dir.glob("*.fcxidx")]
            if sizes:
                print(f"  the packed file: {sizes[0] / 1024 / 1024:,.0f} MB")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        drop()
    print("| index | workers | RSS per worker | PSS per worker (own) | host total | req/s | p99 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['workers']} | {r['rss']:,.0f} MB | {r['pss']:,.0f} MB ({r['own']:,.0f} MB) | "
            f"{r['host']:,.0f} MB | {r['rps']:,.0f} | {r['p99']:.1f} ms |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--modes", default="memory,packed", help="memory, packed or both (before, after)")
    ap.add_argument("--workers", default="1,2,4", help="uvicorn worker counts, e.g. 1,2,4")
    ap.add_argument("--seconds", type=float, default=10, help="seconds of load per run")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-inprocess", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    modes = [m for m in args.modes.split(",") if m]
    print(machine(), f"; load average {os.getloadavg()[0]:.1f}", sep="")
    if not args.skip_inprocess:
        bench_in_process(args.entries, args.seed, modes)
    if not args.skip_http:
        bench_http(
            args.entries, args.seed, modes, [int(w) for w in args.workers.split(",")], args.seconds,
            args.concurrency,
        )  # fmt: skip


if __name__ == "__main__":
    main()
