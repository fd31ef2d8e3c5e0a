"""Decision benchmarks: `decide()` in process, and `POST /v1/decisions` on a real server.

    .venv/bin/python -m bench.bench_decide [--entries 1000000] [--http-seconds 20] [--workers 2]

1. decide() in process: a DecisionIndex of `--entries` entries in force, built directly with
   `index_entry` + `DecisionIndex.put` (units by USCC, persons by resident ID, platform and social
   accounts, websites, apps, some with a phone too; liable persons of units; a few subjects listed twice;
   measures graded by the default policy; 5% disputed; 2% past their maximum period). `--decisions`
   decisions over a realistic mix of scenes, `--hit-rate` of them about listed subjects, timed on one
   core: decisions/s as the median of `--runs` runs (mixed, hits only, misses only, with to_dict()),
   the build time (garbage collector on, as in the server) and the RSS the index costs. It runs in a
   process of its own, so that its memory is given back before part 2.
2. POST /v1/decisions: the same kind of entries COPYed into a fresh PostgreSQL schema with `measures`
   and `policy_version` as publication sets them; uvicorn `--workers N` (a comma list runs each count in
   turn) on `--app` (default `fanchaoxin.app:create_app`), an enterprise_node key. The first decision
   builds the index in its worker (timed, as is the time until every worker is warm). Then a closed-loop
   keep-alive load generator in another process (wrk if installed, `apt-get install wrk`; else a Python
   asyncio one) sends single-subject requests with 1-2 identifiers at each `--concurrency` for
   `--http-seconds`: req/s, p50/p95/p99/max latency, and CPU per request of uvicorn, of its PostgreSQL
   backends and of the load generator (on a shared machine compare CPU/request, and read the load
   average printed with each level). Requests that never complete are in no percentile, so seconds
   without any response are reported as STALLED, and the 500s the server logged are counted.

Quick run: `--entries 50000 --decisions 50000 --http-seconds 5 --concurrency 8,16`; `--skip-http` and
`--skip-decide` run one half. The schema and the server processes are removed at the end, even on error
or SIGTERM. A default run (1,000,000 entries, 2 workers) took 6.5 minutes on 2 cores: about 2 for part 1,
1.5 to COPY the entries, 1-2 for the workers' index builds and 1.2 for the load levels.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.bench_registry import db_url, fresh_database, tenant
from bench.bench_uploads import machine, make_phone, make_resident_id, make_uscc
from bench.loadgen import python_run, stalls
from fanchaoxin.core import vault
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import Database
from fanchaoxin.core.identifiers import normalise
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs import service as orgs
from fanchaoxin.sanctions.decide import DecisionIndex, decide, index_entry
from fanchaoxin.sanctions.policy import default_policy, grade, measure_catalogue

# --- synthetic entries in force ------------------------------------------------------------------------

KINDS = {
    "unit": 45,
    "individual": 30,
    "platform_account": 8,
    "courier_staff": 4,
    "social_account": 4,
    "courier_company": 3,
    "website": 3,
    "app": 3,
}
SEVERITIES = {"minor": 25, "general": 55, "serious": 20}
MAX_MONTHS = {"minor": 3, "general": 12, "serious": 36}
MIN_MONTHS = {"minor": 0, "general": 3, "serious": 12}
ROLES = {"organizer": 50, "participant": 40, "facilitator": 10}
BEHAVIOURS = [
    "order_brushing",
    "fake_review",
    "review_deletion",
    "malicious_registration",
    "subsidy_brushing",
    "personal_data_trade",
    "empty_parcel",
]
LIABLE_ROLES = ["legal_representative", "principal", "directly_responsible"]
# Where enterprises ask: sign-ups, listings and search dominate; finance, couriers and ads are rarer.
SCENES = {
    "account_registration": 15,
    "listing_publication": 15,
    "promotion_signup": 10,
    "credit_scoring": 5,
    "internet_finance": 5,
    "search_ranking": 15,
    "search_result": 15,
    "logistics_selection": 5,
    "courier_hiring": 3,
    "social_account": 3,
    "ad_placement": 4,
    "account_review": 5,
}
PERSONAL = {"individual", "courier_staff"}


@dataclass(slots=True)
class Synth:
    """One synthetic entry in force, with its subject (shared when a subject is listed twice)."""

    entry_id: uuid.UUID
    subject_id: uuid.UUID
    new_subject: bool
    kind: str
    name: str
    idents: list[tuple[str, str, str]]  # (type, canonical value, value as a caller would send it)
    severity: str
    behaviours: list[str]
    role: str
    liable_role: str | None
    parent_entry_id: uuid.UUID | None
    status: str
    published_at: datetime
    min_end_on: date
    max_end_on: date
    measures: list[dict[str, Any]]
    measures_json: str

    @property
    def keys(self) -> list[str]:
        return [f"{t}:{v}" for t, v, _ in self.idents]


class Generator:
    """Deterministic entries with unique identifiers; remembers every key (for misses) and a sample."""

    def __init__(self, seed: int, today: date, sample_every: int = 10) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.seen: set[str] = set()
        self.sample: list[Synth] = []  # subjects to ask about (hits)
        self.sample_every = sample_every
        self._graded: dict[tuple[Any, ...], tuple[list[dict[str, Any]], str]] = {}
        self._counter = 0
        self._kinds, self._kind_w = list(KINDS), list(KINDS.values())
        self._sev, self._sev_w = list(SEVERITIES), list(SEVERITIES.values())
        self._roles, self._role_w = list(ROLES), list(ROLES.values())

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _unique(self, make: Any) -> str:
        v = make(self.rng)
        while v in self.seen:
            v = make(self.rng)
        self.seen.add(v)
        return v

    def _ident(self, type_: str) -> tuple[str, str, str]:
        rng = self.rng
        if type_ == "uscc":
            v = self._unique(make_uscc)
            return type_, v, v
        if type_ == "resident_id":
            v = self._unique(make_resident_id)
            return type_, v, v
        if type_ == "phone":
            raw = self._unique(make_phone)
            return type_, "+86" + raw, raw  # callers send the national form; the key is E.164
        self._counter += 1
        n = self._counter
        v = {
            "platform_account": f"taobao:u{n:08d}",
            "social_account": f"weibo:s{n:08d}",
            "domain": f"shop{n}.example.cn",
            "app": f"com.shop{n}.app",
        }[type_]
        if rng.random() < 0.5 and type_ == "platform_account":
            v = f"jd:u{n:08d}"
        return type_, v, v

    def miss_ident(self) -> tuple[str, str, str]:
        """An identifier of nobody listed (not remembered as seen: it is asked about, not stored)."""
        rng = self.rng
        r = rng.random()
        make = make_uscc if r < 0.55 else make_resident_id if r < 0.85 else make_phone
        v = make(rng)
        while v in self.seen or "+86" + v in self.seen:
            v = make(rng)
        if make is make_phone:
            return "phone", "+86" + v, v
        return ("uscc" if make is make_uscc else "resident_id"), v, v

    def _measures(self, severity: str, behaviours: list[str], kind: str, role: str, liable: bool):  # type: ignore[no-untyped-def]
        key = (severity, tuple(behaviours), kind, role, liable)
        got = self._graded.get(key)
        if got is None:
            graded = grade(
                default_policy(), severity=severity, behaviours=behaviours, subject_kind=kind, role=role,
                liable=liable,
            )  # fmt: skip
            measures = [g.record() for g in graded]  # as publication stores them, actions included
            got = self._graded[key] = (measures, json.dumps(measures, ensure_ascii=False))
        return got

    def _entry(
        self,
        subject: tuple[uuid.UUID, bool, str, str, list[tuple[str, str, str]]],
        *,
        liable_role: str | None = None,
        parent: Synth | None = None,
    ) -> Synth:
        rng = self.rng
        subject_id, new, kind, name, idents = subject
        if parent is not None:
            severity, status, published_at = parent.severity, parent.status, parent.published_at
            behaviours, role = parent.behaviours, parent.role
        else:
            severity = rng.choices(self._sev, self._sev_w)[0]
            behaviours = rng.sample(BEHAVIOURS, rng.choice((1, 1, 2)))
            role = rng.choices(self._roles, self._role_w)[0]
            status = "disputed" if rng.random() < 0.05 else "published"
            days = MAX_MONTHS[severity] * 30
            # 2% are past their maximum period but not swept yet: they must count for nothing.
            ago = rng.randrange(days + 1, days + 60) if rng.random() < 0.02 else rng.randrange(days)
            published_at = datetime.combine(self.today - timedelta(days=ago), datetime.min.time(), UTC)
        measures, measures_json = self._measures(severity, behaviours, kind, role, liable_role is not None)
        published_on = published_at.date()
        return Synth(
            self.uuid(), subject_id, new, kind, name, idents, severity, behaviours, role, liable_role,
            parent.entry_id if parent else None, status, published_at,
            published_on + timedelta(days=MIN_MONTHS[severity] * 30),
            published_on + timedelta(days=MAX_MONTHS[severity] * 30), measures, measures_json,
        )  # fmt: skip

    def _subject(self, kind: str) -> tuple[uuid.UUID, bool, str, str, list[tuple[str, str, str]]]:
        rng = self.rng
        if kind in ("unit", "courier_company"):
            idents = [self._ident("uscc")]
            name = f"公司{idents[0][1]}"
            if rng.random() < 0.3:
                idents.append(self._ident("phone"))
        elif kind in PERSONAL:
            idents = [self._ident("resident_id")]
            name = f"个人{idents[0][1][-6:]}"
            if rng.random() < 0.4:
                idents.append(self._ident("phone"))
        else:
            type_ = {"platform_account": "platform_account", "social_account": "social_account"}.get(
                kind, "domain" if kind == "website" else "app"
            )
            idents = [self._ident(type_)]
            name = idents[0][1]
            if rng.random() < 0.3:
                idents.append(self._ident("phone"))
        return self.uuid(), True, kind, name, idents

    def entries(self, n: int) -> Iterator[Synth]:
        rng = self.rng
        made = 0
        recent: list[Synth] = []
        while made < n:
            if recent and rng.random() < 0.03:
                # A subject listed a second time (another finding): same subject, same identifiers.
                first = rng.choice(recent)
                e = self._entry((first.subject_id, False, first.kind, first.name, first.idents))
            else:
                kind = rng.choices(self._kinds, self._kind_w)[0]
                e = self._entry(self._subject(kind))
            made += 1
            recent.append(e)
            if len(recent) > 1000:
                recent.pop(0)
            if made % self.sample_every == 0:
                self.sample.append(e)
            yield e
            if e.kind == "unit" and e.parent_entry_id is None and made < n and rng.random() < 0.2:
                # The unit's legal representative (or another liable person) is punished with it.
                person = self._subject("individual")
                made += 1
                le = self._entry(person, liable_role=rng.choice(LIABLE_ROLES), parent=e)
                if made % self.sample_every == 0:
                    self.sample.append(le)
                yield le

    def request(self, hit_rate: float) -> tuple[str, list[tuple[str, str, str]]]:
        """One single-subject decision: a scene and 1-2 identifiers (type, canonical, raw)."""
        rng = self.rng
        scene = rng.choices(list(SCENES), list(SCENES.values()))[0]
        if rng.random() < hit_rate:
            e = rng.choice(self.sample)
            idents = list(e.idents)
            if len(idents) == 2 and rng.random() < 0.5:
                idents = [rng.choice(idents)]
            elif len(idents) == 1 and rng.random() < 0.3:
                idents.append(self.miss_ident())
            return scene, idents
        idents = [self.miss_ident()]
        if rng.random() < 0.4:
            idents.append(self.miss_ident())
        return scene, idents


def check_canonical(gen: Generator, entries: list[Synth]) -> None:
    """The generator's canonical values are what the API's normalise() makes of the raw ones."""
    for e in entries:
        for t, canonical, raw in e.idents:
            assert normalise(t, raw) == canonical, (t, raw, canonical)


# --- process memory -------------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def child_pids(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return sorted(out)


# --- 1. decide() in process -----------------------------------------------------------------------------


def bench_decide(entries: int, decisions: int, hit_rate: float, runs: int, seed: int) -> None:
    today = china_today()
    gen = Generator(seed, today)
    cat = measure_catalogue()
    # The synthetic entries are made first (bookkeeping, with the collector off) and frozen, so that the
    # timed build, with the collector on, pays for its own garbage collection only.
    t = time.perf_counter()
    gc.disable()
    made = list(gen.entries(entries))
    gc.enable()
    gc.collect()
    gc.freeze()
    made_s = time.perf_counter() - t
    check_canonical(gen, made[:2000])
    rss0 = rss_mb()
    index = DecisionIndex()
    t = time.perf_counter()
    for e in made:
        index.put(
            e.keys,
            index_entry(
                entry_id=str(e.entry_id), subject_kind=e.kind, severity=e.severity, behaviours=e.behaviours,
                disputed=e.status == "disputed", max_end_on=e.max_end_on, liable_role=e.liable_role,
                measures=e.measures, catalogue=cat,
            ),
        )  # fmt: skip
    build = time.perf_counter() - t
    gc.collect()
    rss1 = rss_mb()
    print(
        f"decide() index: {len(index):,} entries in force, {len(index.by_key):,} keys (entries made in "
        f"{made_s:.0f} s); index_entry + put {build:.1f} s ({len(index) / build:,.0f} entries/s, "
        f"garbage collector on); RSS +{rss1 - rss0:,.0f} MB for the index "
        f"(≈{(rss1 - rss0) * 1024 * 1024 / len(index):,.0f} B/entry), process {rss1:,.0f} MB"
    )
    queries = [gen.request(hit_rate) for _ in range(decisions)]
    batches = {
        "mixed": [([f"{t}:{v}" for t, v, _ in ids], scene) for scene, ids in queries],
    }
    hits = [q for q in batches["mixed"] if any(k in index.by_key for k in q[0])]
    misses = [q for q in batches["mixed"] if not any(k in index.by_key for k in q[0])]
    batches["hits only"] = hits
    batches["misses only"] = misses
    verdicts: dict[str, int] = {}
    for keys, scene in batches["mixed"]:
        v = decide(index, keys, scene, today=today).verdict
        verdicts[v] = verdicts.get(v, 0) + 1
    print(
        f"  {decisions:,} decisions, {len(hits) / decisions:.1%} ask about a listed subject; verdicts: "
        + ", ".join(f"{k} {n:,}" for k, n in sorted(verdicts.items()))
    )

    def run_once(batch: list[tuple[list[str], str]], with_dict: bool) -> float:
        t = time.perf_counter()
        if with_dict:
            for keys, scene in batch:
                decide(index, keys, scene, today=today).to_dict()
        else:
            for keys, scene in batch:
                decide(index, keys, scene, today=today)
        return time.perf_counter() - t

    rate = 0.0
    for name, batch in batches.items():
        if not batch:
            continue
        for with_dict in (False, True) if name == "mixed" else (False,):
            times = [run_once(batch, with_dict) for _ in range(runs)]
            med = statistics.median(times)
            if name == "mixed" and not with_dict:
                rate = len(batch) / med
            label = f"{name}{' + to_dict()' if with_dict else ''}"
            print(
                f"  decide() {label:<22} {len(batch) / med:>12,.0f} decisions/s "
                f"({med / len(batch) * 1e6:.2f} µs each; median of {runs}, "
                f"runs {', '.join(f'{len(batch) / t:,.0f}' for t in times)})"
            )
    print(
        f"  target ≥ 100,000 decisions/s on one core, {len(index):,} entries, mixed: "
        f"{'MET' if rate >= 100_000 else 'MISSED'} ({rate:,.0f}/s)"
    )
    gc.unfreeze()


# --- 2. POST /v1/decisions ------------------------------------------------------------------------------

SUBJECT_COLS = "id, kind, name, name_key, created_at, proposals_checked_at"
IDENT_COLS = "id, subject_id, type, value, value_index, created_at"
ENTRY_COLS = (
    "id, subject_id, owner_org_id, shared_with_all, status, behaviours, role, services, severity, basis, "
    "facts, parent_entry_id, liable_role, policy_version, measures, submitted_at, submitted_by, "
    "published_at, min_end_on, max_end_on, updated_at, version"
)


def seed_entries(db: Database, org_id: uuid.UUID, gen: Generator, n: int, chunk: int = 50_000) -> None:
    """Entries in force as publication leaves them (graded measures, policy version), by COPY."""
    now = datetime.now(UTC)
    version = default_policy().version
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")  # foreign keys: rows are made consistent
        it = gen.entries(n)
        done = False
        while not done:
            batch = []
            for e in it:
                batch.append(e)
                if len(batch) >= chunk:
                    break
            else:
                done = True
            with conn.cursor() as cur:
                with cur.copy(f"COPY subjects ({SUBJECT_COLS}) FROM STDIN") as cp:
                    for e in batch:
                        if e.new_subject:
                            cp.write_row((
                                e.subject_id, e.kind, vault.encrypt(e.name, "subjects.name"), e.name.lower(),
                                now, now,
                            ))  # fmt: skip
                with cur.copy(f"COPY subject_identifiers ({IDENT_COLS}) FROM STDIN") as cp:
                    for e in batch:
                        if e.new_subject:
                            for t, v, _ in e.idents:
                                # Sealed with its blind index, as the registry stores it (core.vault).
                                sealed = vault.encrypt(v, "subject_identifiers.value")
                                ix = vault.identifier_index(t, v)
                                cp.write_row((gen.uuid(), e.subject_id, t, sealed, ix, now))
                with cur.copy(f"COPY entries ({ENTRY_COLS}) FROM STDIN") as cp:
                    for e in batch:
                        cp.write_row((
                            e.entry_id, e.subject_id, org_id, True, e.status, json.dumps(e.behaviours), e.role,
                            "[]", e.severity, "enterprise_finding", "刷单", e.parent_entry_id, e.liable_role,
                            version, e.measures_json, e.published_at, "bench", e.published_at, e.min_end_on,
                            e.max_end_on, now, 1,
                        ))  # fmt: skip
            conn.commit()
        with conn.cursor() as cur:
            cur.execute("RESET session_replication_role")
            # Its own tables only: a database-wide ANALYZE deadlocks with other schemas being dropped.
            cur.execute("ANALYZE subjects, subject_identifiers, entries")
        conn.commit()
    finally:
        raw.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_body(scene: str, idents: list[tuple[str, str, str]]) -> str:
    return json.dumps(
        {"scene": scene, "identifiers": [{"type": t, "value": raw} for t, _, raw in idents]},
        separators=(",", ":"),
    )


WRK_SCRIPT = r"""
local bodies = dofile(%(bodies)s)
local headers = {["Content-Type"] = "application/json", ["X-API-Key"] = %(key)s}
local reqs = {}
local i = 0
non_allow, bad = 0, 0
per_second = {}  -- responses by wall-clock second: a stalled server shows as seconds with none
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for k, b in ipairs(bodies) do reqs[k] = wrk.format("POST", "/v1/decisions", headers, b) end
  i = math.random(#reqs)
end

function request()
  i = i %% #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  local now = os.time()
  per_second[now] = (per_second[now] or 0) + 1
  if status ~= 200 then
    bad = bad + 1
  elseif not string.find(body, '"verdict":%%s*"allow"') then
    non_allow = non_allow + 1
  end
end

function done(summary, latency, requests)
  local na, b = 0, 0
  local seconds = {}
  for _, t in ipairs(threads) do
    na = na + t:get("non_allow"); b = b + t:get("bad")
    for sec, n in pairs(t:get("per_second")) do seconds[sec] = (seconds[sec] or 0) + n end
  end
  local pairs_out = {}
  for sec, n in pairs(seconds) do table.insert(pairs_out, string.format("[%%d,%%d]", sec, n)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p95_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"mean_us":%%f,"non_allow":%%d,"bad":%%d,"errors":%%d,"per_second":[%%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, na, b,
    e.connect + e.read + e.write + e.status + e.timeout, table.concat(pairs_out, ",")))
end
"""


def wrk_run(
    port: int, key: str, bodies_lua: str, tmp: str, connections: int, seconds: float
) -> dict[str, Any]:
    script = Path(tmp) / "decisions.lua"
    script.write_text(WRK_SCRIPT % {"bodies": json.dumps(bodies_lua), "key": json.dumps(key)})
    started = time.time()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0:
        line = None
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("WRKJSON ") :])
    return {
        "requests": r["requests"], "seconds": r["duration_us"] / 1e6, "p50": r["p50_us"] / 1000,
        "p95": r["p95_us"] / 1000, "p99": r["p99_us"] / 1000, "max": r["max_us"] / 1000,
        "non_allow": r["non_allow"], "bad": r["bad"] + r["errors"],
        "stalls": stalls(dict(r["per_second"]), started, seconds),
    }  # fmt: skip


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path  # uvicorn's output (the app logs every 500 there, with its traceback)

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def errors_since(self, offset: int) -> tuple[int, bool]:
        """Requests answered 500 since `offset` (the app logs each), and whether the pool ran dry."""
        with self.log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return text.count("unexpected error on"), "QueuePool limit" in text

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # uvicorn and the workers it started
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def worker_pids(self) -> list[int]:
        kids = child_pids(self.proc.pid)
        # uvicorn --workers N>1 supervises spawned workers (plus a resource tracker); 1 serves itself.
        workers = [p for p in kids if "uvicorn" not in _cmdline(p) or "spawn_main" in _cmdline(p)]
        workers = [p for p in workers if "resource_tracker" not in _cmdline(p)]
        return workers or [self.proc.pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


APP_NAME = "fcx_bench_decide"  # the server's PostgreSQL application_name, to find its backends


def start_server(db: Database, workers: int, app: str, healthcheck: int, tmp: str) -> Server:
    port = free_port()
    log = Path(tmp) / f"uvicorn-{port}.log"
    url = f"{db_url(db)}&application_name={APP_NAME}"
    env = {**os.environ, "FCX_DATABASE_URL": url, "FCX_JOBS_INTERVAL_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--timeout-worker-healthcheck", str(healthcheck)],
        env=env, start_new_session=True, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Server(proc, port, log)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"uvicorn did not start:\n{server.log_tail()}")
        time.sleep(0.2)


def warm_up(server: Server, key: str, workers: int, hit: str, miss: str) -> None:
    """Time the first decision (it builds the index), and make sure every worker has built its own.

    The other workers are sent requests a second after the first one, as at a deployment under traffic,
    so their builds overlap. At most 6 requests per worker wait at once: 15 or more waiting on a cold
    worker would hold all of its pool's connections and leave none for the build.
    """
    url = f"http://127.0.0.1:{server.port}/v1/decisions"
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def post(body: str) -> tuple[float, httpx.Response | None]:
        t = time.perf_counter()
        try:
            with httpx.Client(timeout=1800) as c:
                r = c.post(url, content=body, headers=headers)
        except httpx.TransportError:
            r = None  # the worker went away (uvicorn restarts a worker that misses its health check)
        return time.perf_counter() - t, r

    def first_decision() -> tuple[float, httpx.Response | None]:
        # An app that warms its index in the background answers 503 until it is ready: ask again.
        t = time.perf_counter()
        while True:
            _, r = post(hit)
            if r is None or r.status_code != 503 or time.perf_counter() - t > 1800:
                return time.perf_counter() - t, r
            time.sleep(0.2)

    before = set(server.worker_pids())
    t0 = time.perf_counter()
    dropped = 0
    with ThreadPoolExecutor(1 + 6 * workers) as pool:
        first_f = pool.submit(first_decision)
        if workers > 1:
            time.sleep(1)
        while True:
            round_ = list(pool.map(post, [miss] * (6 * workers)))
            dropped += sum(r is None for _, r in round_)
            bad = [r.text for _, r in round_ if r is not None and r.status_code not in (200, 503)]
            assert not bad, bad[0]
            ready = all(r is not None and r.status_code == 200 for _, r in round_)
            if ready and max(t for t, _ in round_) < 0.5:
                break
            if time.perf_counter() - t0 > 1800:
                raise RuntimeError("the workers were not warm after 30 minutes")
            if not ready:
                time.sleep(0.5)
        first, r = first_f.result()
    warm = time.perf_counter() - t0
    after = set(server.worker_pids())
    if r is None:
        print(f"  the first decision failed after {first:.1f} s: the server closed the connection")
        _, r = post(hit)
        assert r is not None
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["verdict"] != "allow" and out["entry_ids"], out
    hit_size = len(r.content)
    _, r = post(miss)
    assert r is not None and r.status_code == 200 and r.json()["verdict"] == "allow", r
    rss = [rss_mb(p) for p in server.worker_pids()]
    print(
        f"  first decision {first:.1f} s (it builds the index); all {workers} worker(s) warm after "
        f"{warm:.1f} s; worker RSS " + ", ".join(f"{m:,.0f} MB" for m in rss)
    )
    if before != after or dropped:
        print(
            f"  WARNING: {len(before - after)} worker(s) replaced and {dropped} connection(s) dropped while "
            "warming up (uvicorn kills a worker that misses its health check for --healthcheck-timeout)"
        )
    print(
        f"  check: a listed subject gets {out['verdict']} with {len(out['measures'])} measure(s) "
        f"({hit_size} B); an unknown one gets allow ({len(r.content)} B)"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PgSampler(threading.Thread):
    """The server's PostgreSQL backends (by application_name), sampled 4 times a second during a run:
    how many distinct ones were seen (connections opened and closed show as many) and the CPU time of
    each between its first and last sighting (a backend that lives less than a sample is missed)."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def run(self) -> None:
        with self.db.engine.connect() as conn:
            while not self.stop.is_set():
                pids = conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"), {"a": APP_NAME}
                ).scalars()
                conn.rollback()
                for pid in pids:
                    cpu = cpu_seconds(pid)
                    self.first.setdefault(pid, cpu)
                    self.last[pid] = cpu
                self.stop.wait(0.25)

    def result(self) -> tuple[int, float]:
        self.stop.set()
        self.join()
        return len(self.first), sum(self.last[p] - self.first[p] for p in self.first)


def bench_http(
    entries: int,
    seconds: float,
    workers_list: list[int],
    concurrency: list[int],
    hit_rate: float,
    seed: int,
    loadgen: str,
    app: str,
    healthcheck: int,
) -> None:
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    db, drop = fresh_database("postgresql")
    tmp = tempfile.mkdtemp(prefix="fcx_bench_decide_")
    if "FCX_DATA_KEY_FILE" not in os.environ:
        # A data key ring of this run's own, for the rows it seals and the server it starts (inherited).
        os.environ["FCX_DATA_KEY_FILE"] = str(Path(tmp) / "data.json")
        get_settings.cache_clear()
        vault.write_ring(vault.new_ring(Path(os.environ["FCX_DATA_KEY_FILE"])), exclusive=True)
    server: Server | None = None
    try:
        org_id, _ = tenant(db)
        with db.session() as s:
            reader = orgs.create_organisation(
                s, SYSTEM, kind=OrgKind.enterprise, name="查询方", business_types=[BusinessType.logistics],
                agreement_signed_on=date(2017, 1, 1),
            )  # fmt: skip
            key = orgs.create_key(s, SYSTEM, reader, Role.enterprise_node).secret
            # The load is one enterprise checking its traffic: far above the default plain-identifier
            # quotas (orgs.budget), which would answer 429 after the first 600 identifiers.
            budgets.set_quotas(
                s, SYSTEM, reader, {"quota_plain_per_minute": 10**9, "quota_plain_per_day": 2 * 10**9}
            )
        gen = Generator(seed + 1, china_today())
        t0 = time.perf_counter()
        gc.disable()  # the generator's bookkeeping; the server's processes are not affected
        try:
            seed_entries(db, org_id, gen, entries)
        finally:
            gc.enable()
        print(
            f"POST /v1/decisions: seeded {entries:,} entries in force (graded measures) by COPY in "
            f"{time.perf_counter() - t0:.0f} s (schema {db.schema})"
        )
        requests = [gen.request(hit_rate) for _ in range(20_000)]
        bodies = [request_body(scene, ids) for scene, ids in requests]
        bodies_lua = str(Path(tmp) / "bodies.lua")
        Path(bodies_lua).write_text("return {\n" + "".join(f"[==[{b}]==],\n" for b in bodies) + "}\n")
        hit_body = request_body("account_registration", gen.sample[0].idents)
        miss_body = request_body("account_registration", [gen.miss_ident()])
        print(
            f"  load: {loadgen} (1 thread), closed loop, keep-alive, {len(bodies):,} distinct single-subject "
            f"bodies (1-2 identifiers, {hit_rate:.0%} for listed subjects, scenes mixed), {seconds:g} s a level"
        )

        def drive(port: int, c: int, secs: float) -> dict[str, Any]:
            if loadgen == "wrk":
                return wrk_run(port, key, bodies_lua, tmp, c, secs)
            return python_run(port, key, bodies, c, secs)

        for workers in workers_list:
            print(
                f" {app} on uvicorn --workers {workers} (uvloop, httptools, --log-level warning, "
                f"--timeout-worker-healthcheck {healthcheck}):"
            )
            server = start_server(db, workers, app, healthcheck, tmp)
            try:
                warm_up(server, key, workers, hit_body, miss_body)
            except Exception:
                print(f"  warm-up failed; the server's last lines:\n{server.log_tail()}")
                raise
            drive(server.port, min(concurrency), min(5.0, seconds))  # the thread pool, connections, caches
            pids = server.worker_pids()
            for c in sorted(concurrency):
                load = os.getloadavg()[0]
                sampler = PgSampler(db)
                sampler.start()
                mark = server.log_size()
                w0 = sum(cpu_seconds(p) for p in pids)
                g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = drive(server.port, c, seconds)
                g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                w1 = sum(cpu_seconds(p) for p in pids)
                backends, pg_cpu = sampler.result()
                if set(server.worker_pids()) != set(pids):
                    print(
                        "  WARNING: a worker was replaced during this level (missed uvicorn's health check)"
                    )
                    pids = server.worker_pids()
                n = max(r["requests"], 1)
                rps = r["requests"] / r["seconds"]
                stalled, longest = r["stalls"]
                ok = rps >= 1500 and r["p99"] < 20 and r["requests"] > 0 and not stalled
                print(
                    f"  {c:>3} connections: {rps:>6,.0f} req/s  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
                    f"p99 {r['p99']:6.1f} ms  max {r['max']:7.1f} ms  {r['bad']} errors  "
                    f"[target ≥1,500 req/s, p99 <20 ms: {'MET' if ok else 'MISSED'}]"
                )
                if stalled:
                    print(
                        f"       STALLED: no response at all in {stalled} of the run's whole seconds "
                        f"(longest {longest} s); requests stuck that long are in no percentile above"
                    )
                failed, pool_dry = server.errors_since(mark)
                if failed:
                    print(
                        f"       the server answered {failed} request(s) with 500 during this level"
                        + (" (QueuePool limit reached: no connection within 30 s)" if pool_dry else "")
                        + "; a request stuck at the end of a level fails in the next one"
                    )
                loadgen_cpu = g1.ru_utime + g1.ru_stime - g0.ru_utime - g0.ru_stime
                cpu = (
                    f"CPU per request: uvicorn {(w1 - w0) / n * 1000:.2f} ms, PostgreSQL {pg_cpu / n * 1000:.2f} "
                    f"ms ({backends} backends seen), load generator {loadgen_cpu / n * 1000:.2f} ms"
                    if r["requests"]
                    else f"CPU: uvicorn {w1 - w0:.1f} s, PostgreSQL {pg_cpu:.1f} s ({backends} backends seen)"
                )
                print(
                    f"       {r['requests']:,} requests, {r['non_allow'] / n:.1%} not allow; {cpu}; "
                    f"load average {load:.1f} at start"
                )
            rss = [rss_mb(p) for p in pids]
            print("  worker RSS after load: " + ", ".join(f"{m:,.0f} MB" for m in rss))
            mark = server.log_size()
            server.stop()
            failed, pool_dry = server.errors_since(mark)
            if failed:
                print(
                    f"  and {failed} request(s) still stuck at the end failed with 500 as the server stopped"
                )
            server = None
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in force (both parts)")
    ap.add_argument("--decisions", type=int, default=200_000, help="decisions per timed run (part 1)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hit-rate", type=float, default=0.10)
    ap.add_argument("--http-seconds", type=float, default=20)
    ap.add_argument("--workers", default="2", help="uvicorn worker counts to run in turn, e.g. 2 or 2,1")
    ap.add_argument("--concurrency", default="8,16,32", help="connections, e.g. 8,16,32")
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument(
        "--app", default="fanchaoxin.app:create_app", help="uvicorn app factory (to measure a variant)"
    )
    ap.add_argument(
        "--healthcheck-timeout",
        type=int,
        default=5,
        help="uvicorn --timeout-worker-healthcheck (its default, 5 s); a worker that misses it is killed, "
        "which happened in a loop while the ORM-built index paused the collector for up to 7 s",
    )
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--skip-decide", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    # A SIGTERM (or a CI timeout) unwinds through the finally blocks: schema dropped, servers stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(machine(), f"; load average {os.getloadavg()[0]:.1f}", sep="")
    if not args.skip_decide:
        decide_args = (args.entries, args.decisions, args.hit_rate, args.runs, args.seed)
        if args.skip_http:
            bench_decide(*decide_args)
        else:
            # In a process of its own, so that its gigabytes are given back before the servers start.
            child = multiprocessing.get_context("spawn").Process(target=bench_decide, args=decide_args)
            child.start()
            try:
                child.join()
            finally:
                if child.is_alive():
                    child.terminate()
                    child.join()
            if child.exitcode != 0:
                raise SystemExit(f"the decide() benchmark failed (exit code {child.exitcode})")
    if not args.skip_http:
        bench_http(
            args.entries, args.http_seconds, [int(w) for w in args.workers.split(",")],
            [int(c) for c in args.concurrency.split(",")], args.hit_rate, args.seed, args.loadgen, args.app,
            args.healthcheck_timeout,
        )  # fmt: skip


if __name__ == "__main__":
    main()
