"""Dense blocks by D-Cube (Shin, Hooi, Kim, Faloutsos, WSDM 2017) — one SQL text, DuckDB or Spark (#21).

FRAUDAR (detect/fraudar.py) peels one node at a time, always the one of least weighted degree: a
sequential walk that needs the whole graph in one machine's memory. D-Cube was made for tensors that
fit on no single disk: it peels *all* the attribute values whose mass is at most the block's average
in one dimension at once, so a block takes a few dozen rounds, each a pass of group-bys and joins over
the edges. Here the tensor is the account × item graph of `fcx detect dense-blocks` (two modes; the
mass of a block = its distinct edges, a repeated edge counts once as in FRAUDAR), and every round is
SQL written once and run through fanchaoxin.detect.sql (`DuckSql` or `SparkSql`), so both engines
walk the same path and give the same blocks.

One block (Algorithm 2 of the paper, θ = 1), on the graph left by the earlier blocks:

1. B = that graph. Each round: the mass of every value (per account and per item, its edges in B),
   the number of values n_i of each side and the mass M of B (one group-by per side, one aggregate).
2. Pick a side: ``cardinality`` — the side with more values (ties: items, as the reference code);
   ``density`` — the side whose peeling gives the denser block.
3. Peel, on that side, every value of mass ≤ M / n_i (in integers: m · n_i ≤ M). The reference
   removes them one by one in ascending mass and measures the block after each; the block is
   measured here after each *distinct* mass — the same maximum, exactly: along a run of equal
   masses each of the three measures is monotone or has a single interior minimum (ρ_susp is
   convex in the run, ρ_geo quasi-convex, ρ_ari monotone), so the best prefix of the run is one of
   its ends, and the order within a run (arbitrary in the reference) never matters.
4. Remember the densest snapshot (strict improvement, the first best kept); repeat until B is empty.
   The block is the snapshot's edges: B of that round without the side's values up to that mass.
   Values left without an edge in B (their edges went with values of the other side) leave it at the
   next round — the reference keeps them counted in |B_n| until their own side is peeled; they only
   lower the density and are never part of a block here. The block's score is its measure computed
   on its own edges, accounts and items.

K blocks (Algorithm 1): after each block its edges are removed from the graph and the next block is
searched on what is left — as FRAUDAR's blocks are, so the two methods' outputs read the same.

Density measures (`measure`, for two modes; M mass, n_1, n_2 the sides' values, R the graph searched):

- ``ari`` (default), arithmetic average mass ρ_ari = M / ((n_1 + n_2) / 2): twice the average degree,
  i.e. FRAUDAR's g with every edge weighted 1 (FRAUDAR weights an edge 1 / log(deg(item) + 5), which
  is what makes it resist camouflage). With the ``cardinality`` policy D-Cube guarantees a block of at
  least 1/N = 1/2 of the densest block's ρ_ari (the paper's Theorem 3) — FRAUDAR's guarantee for g.
- ``geo``, geometric average mass M / sqrt(n_1 n_2); ``susp``, suspiciousness (the negative
  log-likelihood of the block under a uniform graph, the paper's ρ_susp).

ρ_ari and ρ_geo are compared as exact fractions of the integer counts the SQL returns (Python's
`Fraction`), ρ_susp in Python floats on the driver (its rational part exact, then rounded to 12
significant digits): both engines feed the same integers to the same Python, so their choices agree
to the bit. Sums and counts are integers throughout.

Spark (`detect_dense_blocks_spark`): the edges are read and checked by engines.spark_read_table and
made distinct (one shuffle). Each round is two Spark jobs: the masses counted by mass — every value's
mass (two aggregations, shuffling B's edges by account and by item), then how many values have each
mass (a few thousand rows at most: masses are distinct degrees, fewer than sqrt(2 M)), collected to
the driver, which picks the side and the cut; and the next B, the edges whose value on that side has a
mass above the cut (a window count partitioned by that side: one shuffle), checkpointed. Checkpointed,
not cached: each round's table is built from the last, and a cached view carries its whole lineage
into the next plan — planning alone ran out of memory at ten rounds. The driver holds only the
per-mass counts and, at the end, the blocks' ids and per-account evidence.

Guard. D-Cube's blocks go through the guard of detect/fraudar.py: the same edge-density lift, size
and share limits; its "no denser than the graph itself" check compares the block's average mass
ρ_ari with the whole graph's (whatever the measure searched with).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any

import duckdb

from fanchaoxin.detect import engines
from fanchaoxin.detect.fraudar import AccountEvidence, Block, DenseBlocks, Graph, Guard
from fanchaoxin.detect.io import InputError, connect, read_table
from fanchaoxin.detect.options import DEFAULT_TIMEZONE
from fanchaoxin.detect.sql import DuckSql, SparkSql, Sql, to_spark

__all__ = [
    "DENSITY_NAME",
    "MEASURES",
    "POLICIES",
    "Peeling",
    "density",
    "detect_dense_blocks_dcube",
    "detect_dense_blocks_spark",
    "find_blocks",
]

MEASURES = ("ari", "geo", "susp")
POLICIES = ("cardinality", "density")
DENSITY_NAME = "D-Cube average mass ρ_ari"  # the guard's density: the block's ρ_ari against the graph's
_P = "fcx_dcube_"  # the prefix of every table a run makes (never a user's table name)


@dataclass(frozen=True)
class Peeling:
    """How a block was found: the rounds of peeling and where the densest snapshot was."""

    rounds: int  # rounds of peeling (each one pass of group-bys over the block's edges)
    best_round: int  # the round whose snapshot is the block (0: the graph searched, before any peeling)


def density(measure: str, mass: int, n1: int, n2: int, whole: tuple[int, int, int]) -> float:
    """The block's density by `measure` (``ari``, ``geo``, ``susp``); `whole` = (mass, n1, n2) of the
    graph searched (ρ_susp only). -1 for a block without edges (the reference's value)."""
    if mass <= 0 or n1 <= 0 or n2 <= 0:
        return -1.0
    if measure == "ari":
        return 2 * mass / (n1 + n2)
    if measure == "geo":
        return mass / math.sqrt(n1 * n2)
    m_r, r1, r2 = whole
    p = (n1 * n2) / (r1 * r2)
    return mass * (math.log(mass / m_r) - 1) + m_r * p - mass * math.log(p)


def _key(measure: str, mass: int, n1: int, n2: int, whole: tuple[int, int, int]) -> Fraction | float:
    """A value ordered as the density: exact fractions for ρ_ari and ρ_geo (ρ_geo² = M² / (n1 n2))."""
    if mass <= 0 or n1 <= 0 or n2 <= 0:
        return -math.inf
    if measure == "ari":
        return Fraction(2 * mass, n1 + n2)
    if measure == "geo":
        return Fraction(mass * mass, n1 * n2)
    # ρ_susp = M log q - M + M_R p with q = M / (M_R p), p = n1 n2 / (R1 R2): the rational parts exact
    # (a block as dense as the graph scores exactly 0), then 12 significant digits, so that rounding
    # noise never passes for an improvement along a run where ρ_susp is linear
    m_r, r1, r2 = whole
    q = Fraction(mass * r1 * r2, m_r * n1 * n2)
    value = mass * math.log(q) + float(Fraction(m_r * n1 * n2, r1 * r2) - mass)
    return float(f"{value:.12g}")


@dataclass
class _Snapshot:
    key: Fraction | float
    round: int
    b: str  # the table of B's edges at the start of that round
    side: int | None = None  # None: B itself; else B without `side`'s values of mass ≤ `upto`
    upto: int = 0


_SIDE_COL = ("s", "d")


class _Run:
    """One D-Cube run over the input view ``{_P}in`` (s, d[, t]) through `sql`."""

    def __init__(self, sql: Sql, measure: str, policy: str) -> None:
        if measure not in MEASURES:
            raise ValueError(f"unknown density measure {measure!r}; one of {', '.join(MEASURES)}")
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
        self.sql, self.measure, self.policy = sql, measure, policy
        self.tables: dict[str, Any] = {}  # name → the Spark DataFrame behind it (None on DuckDB)

    def create(self, name: str, select: str) -> str:
        """``CREATE TEMP TABLE name AS select``. On Spark the table is checkpointed, not cached: each
        round's table is built from the last one, and a cached view would carry its whole lineage —
        every round's plan inside the next, doubling where a table is read twice — until planning
        alone runs out of memory (it did, at ten rounds). A checkpoint is computed at once and reads
        back as a plain scan. Reliable (`SparkContext.setCheckpointDir`, e.g. on HDFS: a lost
        executor's part is read back) when a checkpoint directory is set, else local (kept by the
        executors, on disk when memory is short)."""
        if self.sql.engine != "spark":
            self.sql.run(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}")
            self.tables[name] = None
            return name
        spark = self.sql.spark  # type: ignore[attr-defined]
        (stmt,) = to_spark(select)
        df = spark.sql(stmt.sql("spark"))
        df = df.checkpoint() if spark.sparkContext.getCheckpointDir() else df.localCheckpoint()
        self.drop(name)
        self.sql.table(name, df)
        self.tables[name] = df
        return name

    def drop(self, *names: str) -> None:
        for name in names:
            if name not in self.tables:
                continue
            df = self.tables.pop(name)
            if df is None:
                self.sql.run(f"DROP TABLE IF EXISTS {name}")
                continue
            df.sparkSession.catalog.dropTempView(name)
            # the checkpoint's blocks, now (else when the JVM's cleaner gets to them); an optimisation only
            with contextlib.suppress(Exception):
                df._jdf.queryExecution().analyzed().rdd().unpersist(False)

    def close(self) -> None:
        self.drop(*sorted(self.tables))

    def without(self, b: str, side: int, upto: int) -> str:
        """B's edges without `side`'s values of mass ≤ `upto` (a value's mass: its edges in B)."""
        col = _SIDE_COL[side]
        return (
            f"SELECT s, d FROM (SELECT s, d, count(*) OVER (PARTITION BY {col}) AS m FROM {b}) x "
            f"WHERE m > {upto}"
        )

    def one_block(self, number: int, graph: str, whole: tuple[int, int, int]) -> tuple[str, Peeling]:
        """The densest snapshot of D-Cube's peeling of `graph`, as a table of its edges."""
        measure = self.measure
        b, r = graph, 0
        best: _Snapshot | None = None
        while True:
            # each side's values counted by mass (masses are distinct degrees: few rows) — the driver
            # gets n_i, M and the peelable values from it; one job, no table
            rows = self.sql.rows(
                "SELECT dim, m, count(*) AS k FROM ("
                f"SELECT 0 AS dim, count(*) AS m FROM {b} GROUP BY s "
                f"UNION ALL SELECT 1 AS dim, count(*) AS m FROM {b} GROUP BY d) x GROUP BY dim, m"
            )
            hist: list[list[tuple[int, int]]] = [[], []]
            for dim, mm, k in sorted((int(x), int(y), int(z)) for x, y, z in rows):
                hist[dim].append((mm, k))
            n = [sum(k for _, k in h) for h in hist]
            mass = sum(mm * k for mm, k in hist[0])
            key = _key(measure, mass, n[0], n[1], whole)
            if best is None or key > best.key:
                if best is not None and best.b not in (graph, b):
                    self.drop(best.b)
                best = _Snapshot(key, r, b)

            def peelable(side: int, hist: list = hist, n: list = n, mass: int = mass) -> list:
                return [(mm, k) for mm, k in hist[side] if mm * n[side] <= mass]

            if self.policy == "cardinality":
                side = 1 if n[1] >= n[0] else 0
            else:  # the side whose peeling leaves the denser block; ties: items (the reference's >=)
                keys = []
                for d in (0, 1):
                    peel = peelable(d)
                    left, nd = mass - sum(mm * k for mm, k in peel), n[d] - sum(k for _, k in peel)
                    keys.append(_key(measure, left, *((nd, n[1]) if d == 0 else (n[0], nd)), whole))
                side = 1 if keys[1] >= keys[0] else 0
            peel = peelable(side)
            cum_k = cum_m = 0
            for mm, c in peel:  # a snapshot after each distinct mass (see the module docstring)
                cum_k, cum_m = cum_k + c, cum_m + mm * c
                left, nd = mass - cum_m, n[side] - cum_k
                key = _key(measure, left, *((nd, n[1]) if side == 0 else (n[0], nd)), whole)
                if key > best.key:
                    if best.b not in (graph, b):
                        self.drop(best.b)
                    best = _Snapshot(key, r, b, side, mm)
            r += 1
            if mass - cum_m == 0:
                break
            nxt = self.create(f"{_P}b{number}_{r}", self.without(b, side, peel[-1][0]))
            if b not in (graph, best.b):
                self.drop(b)
            b = nxt
        if best.side is None:
            block = self.create(f"{_P}k{number}", f"SELECT s, d FROM {best.b}")
        else:
            block = self.create(f"{_P}k{number}", self.without(best.b, best.side, best.upto))
        return block, Peeling(rounds=r, best_round=best.round)

    def release_block_tables(self, number: int, keep: set[str]) -> None:
        prefix = f"{_P}b{number}_"
        self.drop(*(t for t in sorted(self.tables) if t.startswith(prefix) and t not in keep))


def _fmt(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if isinstance(t, datetime) else str(t)


def find_blocks(
    sql: Sql,
    *,
    k: int = 1,
    measure: str = "ari",
    policy: str = "cardinality",
    guard: Guard | None = None,
    time: bool = False,
) -> tuple[DenseBlocks, list[Peeling]]:
    """Up to `k` D-Cube blocks of the edges in the view ``fcx_dcube_in`` (columns s, d and, with
    `time`, t: text ids and naive TIMESTAMPs) that `sql` reads; blocks carry the ids, sorted, and
    per-account evidence; with `time` each account's first and last time inside its block."""
    run = _Run(sql, measure, policy)
    try:
        return _find(run, k, guard, time)
    finally:
        run.close()


def _find(run: _Run, k: int, guard: Guard | None, time: bool) -> tuple[DenseBlocks, list[Peeling]]:
    sql, measure = run.sql, run.measure
    edges = run.create(f"{_P}e", f"SELECT DISTINCT s, d FROM {_P}in")
    deg = run.create(f"{_P}deg", f"SELECT s, count(*) AS n FROM {edges} GROUP BY s")
    (n_rows, n_edges, accounts, items), *_ = sql.rows(
        f"SELECT (SELECT count(*) FROM {_P}in), (SELECT sum(n) FROM {deg}), (SELECT count(*) FROM {deg}), "
        f"(SELECT count(DISTINCT d) FROM {edges})"
    )
    n_rows, n_edges, accounts, items = int(n_rows), int(n_edges or 0), int(accounts), int(items)
    graph = Graph(
        accounts=accounts,
        items=items,
        edges=n_edges,
        rows=n_rows,
        edge_density=n_edges / (accounts * items) if n_edges else math.nan,
        density=density("ari", n_edges, accounts, items, (0, 0, 0)) if n_edges else math.nan,
        density_name=DENSITY_NAME,
    )
    blocks: list[Block] = []
    paths: list[Peeling] = []
    block_tables: list[str] = []
    left, whole = edges, (n_edges, accounts, items)
    spent: str | None = None  # the graph the last block was searched in
    for number in range(1, k + 1):
        if number > 1:
            rest = sql.rows(f"SELECT count(*), count(DISTINCT s), count(DISTINCT d) FROM {left}")[0]
            whole = (int(rest[0]), int(rest[1]), int(rest[2]))
            if spent is not None:  # `left` is built (Spark: cached): what it came from may go
                run.drop(spent)
        if whole[0] == 0:
            break
        table, path = run.one_block(number, left, whole)
        # per account: its edges inside the block and in the whole graph; then the block's items
        ids = sql.rows(
            f"SELECT 0 AS side, x.s AS v, count(*) AS inside, min(g.n) AS total FROM {table} x "
            f"JOIN {deg} g ON x.s = g.s GROUP BY x.s "
            f"UNION ALL SELECT 1 AS side, d AS v, 0 AS inside, 0 AS total FROM {table} GROUP BY d "
            "ORDER BY side, v"
        )
        run.release_block_tables(number, keep={left})
        acc = [(v, e, t) for side, v, e, t in ids if side == 0]
        dst = [v for side, v, _, _ in ids if side == 1]
        src = [r[0] for r in acc]
        inside = sum(int(r[1]) for r in acc)
        score = density(measure, inside, len(src), len(dst), whole)
        ari = density("ari", inside, len(src), len(dst), whole)
        edge_density = inside / (len(src) * len(dst))
        block = Block(
            src,
            dst,
            score,
            inside,
            edge_density=edge_density,
            lift=edge_density / graph.edge_density,
            density_vs_graph=ari / graph.density,
            accounts=[AccountEvidence(a, int(e), int(t), int(e) / int(t)) for a, e, t in acc],
        )
        if guard is not None:  # the graph-relative check on the average mass, whatever the measure
            block.refused = guard.reasons(replace(block, score=ari), graph)
        blocks.append(block)
        paths.append(path)
        block_tables.append(table)
        if number < k:  # the next block is searched without this block's edges
            spent = left
            left = run.create(
                f"{_P}r{number}",
                f"SELECT x.s, x.d FROM {left} x ANTI JOIN {table} y ON x.s = y.s AND x.d = y.d",
            )
    if time and blocks:
        taken = run.create(
            f"{_P}taken",
            " UNION ALL ".join(f"SELECT s, d, {i} AS blk FROM {t}" for i, t in enumerate(block_tables, 1)),
        )
        rows = sql.rows(
            f"SELECT y.blk, x.s, min(x.t), max(x.t) FROM {_P}in x JOIN {taken} y ON x.s = y.s AND x.d = y.d "
            "GROUP BY y.blk, x.s ORDER BY y.blk, x.s"
        )
        spans: dict[int, dict[Any, tuple[str, str]]] = {}
        for blk, s, lo, hi in rows:
            spans.setdefault(int(blk), {})[s] = (_fmt(lo), _fmt(hi))
        for i, block in enumerate(blocks, 1):
            got = spans.get(i, {})
            for ev in block.accounts:
                ev.first_seen, ev.last_seen = got[ev.account]
            if got:
                block.first_seen = min(v[0] for v in got.values())
                block.last_seen = max(v[1] for v in got.values())
    return DenseBlocks(graph, blocks), paths


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(src: str, dst: str, time: str | None) -> tuple[list[str], dict[str, str]]:
    names = [src, dst] + ([time] if time is not None else [])
    if len(set(names)) < len(names):
        same = next(x for x in names if names.count(x) > 1)
        raise InputError(f"--src, --dst and --time must name different columns; {same!r} is given twice")
    types = {src: "VARCHAR", dst: "VARCHAR"} | ({time: "TIMESTAMP"} if time is not None else {})
    return names, types


def _input_view(sql: Sql, src: str, dst: str, time: str | None) -> None:
    """The one projection both engines read: s, d (text ids) and t (naive TIMESTAMP)."""
    cols = f"{_quote(src)} AS s, {_quote(dst)} AS d" + (f", {_quote(time)} AS t" if time else "")
    sql.run(f"CREATE OR REPLACE TEMP VIEW {_P}in AS SELECT {cols} FROM {_P}raw")


def detect_dense_blocks_dcube(
    path: str,
    src: str,
    dst: str,
    *,
    k: int = 1,
    time: str | None = None,
    guard: Guard | None = None,
    measure: str = "ari",
    policy: str = "cardinality",
    timezone: str = DEFAULT_TIMEZONE,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[DenseBlocks, list[Peeling]]:
    """D-Cube on DuckDB: read an edge list (CSV, Parquet, JSON Lines) and return `k` blocks, ids as read."""
    names, types = _columns(src, dst, time)
    con = con if con is not None else connect()
    rel = read_table(path, names, types=types, timezone=timezone, con=con)
    sql = DuckSql(con)
    sql.table(f"{_P}raw", rel)
    _input_view(sql, src, dst, time)
    try:
        return find_blocks(sql, k=k, measure=measure, policy=policy, guard=guard, time=time is not None)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {_P}in; DROP VIEW IF EXISTS {_P}raw")


def detect_dense_blocks_spark(
    spark: Any,
    source: str,
    src: str,
    dst: str,
    *,
    k: int = 1,
    time: str | None = None,
    guard: Guard | None = None,
    measure: str = "ari",
    policy: str = "cardinality",
    timezone: str = DEFAULT_TIMEZONE,
) -> tuple[DenseBlocks, list[Peeling]]:
    """D-Cube on Spark: the same SQL (detect/sql.py), the same blocks; `source` is any path Spark reads
    or ``table:NAME``; the input is checked (path, table, columns, values) before any work."""
    names, types = _columns(src, dst, time)
    df = engines.spark_read_table(spark, source, names, types=types, timezone=timezone, epoch_time=False)
    sql = SparkSql(spark)
    sql.table(f"{_P}raw", df)
    _input_view(sql, src, dst, time)
    try:
        return find_blocks(sql, k=k, measure=measure, policy=policy, guard=guard, time=time is not None)
    finally:
        sql.close()
        spark.catalog.dropTempView(f"{_P}in")
        spark.catalog.dropTempView(f"{_P}raw")
