"""Lockstep behaviour (同步刷单/刷评团伙): CopyCatch (Beutel et al., WWW 2013).

CopyCatch looks for a *temporally coherent near-biclique* in a user × item graph whose edges carry a
time: a set of users U and items P, and for every item p a centre time c_p, such that

* |U| ≥ m (``min_users``) and |P| ≥ n (``min_items``);
* every user in U acted on at least max(n, ⌈ρ·|P|⌉) items of P, each within ±Δt (``window``) of that
  item's centre time c_p.

Real users like or buy the same popular items, but at their own times; a group working from one
task list (a 刷单 / 刷评 job on a QQ or WeChat group) hits the same items *at the same times*. That
timing is what the detector keys on, so a single viral moment (a flash sale, a live-stream push) on one
item is not a group — the same users have to move together again and again.

Algorithm (the CopyCatch local search, run serially from many seeds):

1. **Prune** (exact, lossless): repeatedly drop items with fewer than m distinct users and users with
   fewer than n distinct items; neither can be part of any group.
2. **Seeds**: for every item, slide a window of width 2Δt over its action times and take the locally
   densest windows holding ≥ m distinct users. Each gives a seed (item p₀, centre c₀, users in the
   window). Seeds are tried from the densest down (at most ``max_seeds``).
3. **Alternate** until nothing changes (at most ``max_iter`` rounds), as in the paper:
   * *items and centres given the users*: for every item acted on by the current users, find the
     centre c maximising how many of them acted within ±Δt (an exact 1-D sliding-window maximum
     over sorted times); keep items reached by at least max(m, ⌈ρ·|U|⌉) of the users;
   * *users given the items and centres*: every user (not only the current ones — this is how the
     group grows past its seed) who acted on at least max(n, ⌈ρ·|P|⌉) of the items within ±Δt
     of their centres.
4. A converged (U, P, c) meeting both size constraints is a group. Its item/centre pairs are marked
   so later seeds inside it are skipped, and groups sharing more than half their users with a
   higher-scoring group are dropped.

The local search is a heuristic, like the paper's (their problem is NP-hard); it is exact in the
sense that every reported group satisfies the constraints above, which the evidence lets anyone
re-check. With ρ = 1 every user acted on every item of the group ("the same ≥ n items" in its
strictest sense); the default ρ = 0.5 tolerates members who skip some tasks, as real crews do.

Score: the number of (user, item) actions inside the group's windows — the quantity CopyCatch
maximises. It grows with both the group's size and its number of items.

Engines (#21): `detect_lockstep` runs one definition on DuckDB or Spark (fanchaoxin.detect.sql). The
row-proportional work is SQL run where the data is: the prune (`prune_sql`, rounds of group-by counts
over the distinct (user, item) pairs) and the coding of the survivors (users and items numbered in
text order). Steps 2–4 (`_search`) run in this process over the pruned actions only — three integers
per action and one label per surviving user and item come back — because a group may span any items
and any users, so the search does not partition (docs/cluster.md: its memory, per surviving action).
`duckdb_actions` / `spark_actions` read the input strictly on either engine; the answers, down to the
bytes of the output and reports, are the same (tests/detect/test_spark_lockstep.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fanchaoxin.detect import engines
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import connect, read_table
from fanchaoxin.detect.sql import DuckSql, SparkSql, Sql

ProgressFn = Callable[[int, int], None]  # (done, total)


@dataclass
class LockstepGroup:
    """A group found by `copycatch`, in integer codes (see `lockstep_findings` for labels)."""

    users: np.ndarray  # user codes, sorted
    items: np.ndarray  # item codes
    centres: np.ndarray  # centre time (epoch seconds) per item
    hits_per_user: np.ndarray  # items of the group each user hit in its window
    edges: int  # Σ hits: the CopyCatch objective and the score


@dataclass
class _Index:
    it_t: np.ndarray  # times sorted by (item, time)
    it_u: np.ndarray
    item_ptr: np.ndarray
    us_i: np.ndarray  # items sorted by (user, item, time)
    us_t: np.ndarray
    user_ptr: np.ndarray


def prune(u: np.ndarray, i: np.ndarray, min_users: int, min_items: int) -> np.ndarray:
    """Boolean mask of actions that can belong to a group (an exact bipartite (n, m)-core).

    The arrays run through the same SQL (`prune_sql`) as a file does on either engine."""
    keep = np.zeros(len(u), dtype=bool)
    if len(u) == 0:
        return keep
    con = connect()
    try:
        sql = DuckSql(con)
        rows = pa.table(
            {
                "u": np.asarray(u, dtype=np.int64),
                "i": np.asarray(i, dtype=np.int64),
                "t": np.arange(len(u), dtype=np.int64),  # the row: what survives, by position
            }
        )
        sql.table(_ACTIONS, con.from_arrow(rows))
        pairs = prune_sql(sql, min_users, min_items)
        survivors = _arrow(sql, _survivors_query(pairs))
        keep[survivors.column("t").to_numpy()] = True
        return keep
    finally:
        con.close()


# ------------------------------------------------------------------ the job's SQL, one text for both engines

_ACTIONS = "lockstep_actions"  # (u, i, t): user and item labels, epoch seconds of the naive local time


def prune_sql(sql: Sql, min_users: int, min_items: int, progress: ProgressFn | None = None) -> str:
    """Step 1 (prune) on either engine: the name of a temporary table of the distinct (u, i) pairs of
    the bipartite (min_items, min_users)-core of ``lockstep_actions``.

    Each round reads the pairs left by the last one once: it drops the items with fewer than m
    distinct users, then the users left with fewer than n distinct items (two window counts, on
    Spark one shuffle by item and one by user, no join); a count whose smallest item degree is
    still ≥ m proves the fixpoint (the core is unique, whatever the order of the drops). Each round
    reads the last once, so the plan grows by one step a round (never 3^k). `progress` gets (round,
    pairs left)."""
    prev = f"(SELECT DISTINCT u, i FROM {_ACTIONS})"
    k = 0
    while True:
        k += 1
        sql.run(
            f"CREATE OR REPLACE TEMP TABLE lockstep_pairs_{k} AS "
            "SELECT u, i FROM (SELECT u, i, count(*) OVER (PARTITION BY u) AS du FROM "
            "(SELECT u, i FROM (SELECT u, i, count(*) OVER (PARTITION BY i) AS di "
            f"FROM {prev} AS p) AS by_item WHERE di >= {int(min_users)}) AS items_kept) AS by_user "
            f"WHERE du >= {int(min_items)}"
        )
        # computes round k (on Spark: materialises its cache), then checks the items' degrees
        ((pairs, low),) = sql.rows(
            f"SELECT count(*), min(di) FROM (SELECT count(*) OVER (PARTITION BY i) AS di "
            f"FROM lockstep_pairs_{k}) AS d"
        )
        if k > 1:
            drop(sql, prev)
        if progress is not None:
            progress(k, int(pairs))
        if pairs == 0 or low >= min_users:
            return f"lockstep_pairs_{k}"
        prev = f"lockstep_pairs_{k}"


def drop(sql: Sql, name: str, kind: str = "TABLE") -> None:
    """``DROP {kind} IF EXISTS name`` on either engine (on Spark: unpersist a cached table)."""
    sql.run(f"DROP {kind} IF EXISTS {name}")


def _survivors_query(pairs: str) -> str:
    # the pairs are distinct: the join keeps every action of a surviving (user, item) once
    return f"SELECT a.u, a.i, a.t FROM {_ACTIONS} AS a JOIN {pairs} AS p ON a.u = p.u AND a.i = p.i"


def _arrow(sql: Sql, query: str) -> pa.Table:
    """The rows of one query as an Arrow table (the driver's copy of the pruned actions)."""
    return sql.arrow(query)


@dataclass
class LockstepResult:
    groups: list[LockstepGroup]
    user_labels: np.ndarray  # labels of the surviving users, by code
    item_labels: np.ndarray
    rows: int  # actions read
    survivors: int  # actions left by the prune (what the search holds in memory)


def detect_lockstep(
    sql: Sql,
    *,
    window: int = 3600,
    min_users: int = 5,
    min_items: int = 4,
    rho: float = 0.5,
    max_seeds: int = 20_000,
    max_iter: int = 10,
    progress: Callable[..., None] | None = None,
) -> LockstepResult:
    """CopyCatch over the actions `sql` holds as ``lockstep_input`` (columns u, i: text labels; t: epoch
    seconds), the same on DuckDB and Spark: the prune runs as SQL where the data is (`prune_sql`),
    then the seed-and-grow search runs here, over the pruned actions only (`copycatch`'s search).
    `progress(description, done, total)` is told what runs."""
    _check(window, min_users, min_items, rho)

    def step(what: str, done: int | None = None, total: int | None = None) -> None:
        if progress is not None:
            progress(what, done, total)

    step("reading")
    sql.run(f"CREATE OR REPLACE TEMP TABLE {_ACTIONS} AS SELECT u, i, t FROM lockstep_input")
    pairs = "lockstep_pairs_1"
    try:
        ((rows,),) = sql.rows(f"SELECT count(*) FROM {_ACTIONS}")
        pairs = prune_sql(sql, min_users, min_items, lambda k, n: step(f"pruning, round {k}: {n:,} pairs"))
        step("coding the pruned actions")
        # dense codes in text order (byte order of UTF-8 = code-point order, on both engines and in
        # Python): only labels of surviving users and items, and three integers per action, reach here
        for col, name in (("u", "lockstep_users"), ("i", "lockstep_items")):
            sql.run(
                f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {col}, "
                f"row_number() OVER (ORDER BY {col}) - 1 AS c FROM (SELECT DISTINCT {col} FROM {pairs}) AS d"
            )
        coded = sql.rows(
            "SELECT 0 AS side, c, u AS label FROM lockstep_users UNION ALL "
            "SELECT 1 AS side, c, i AS label FROM lockstep_items ORDER BY side, c"
        )
        labels = [np.asarray([r[2] for r in coded if r[0] == side], dtype=object) for side in (0, 1)]
        del coded
        step("collecting the pruned actions")
        table = _arrow(
            sql,
            f"SELECT uc.c AS u, ic.c AS i, a.t FROM {_ACTIONS} AS a JOIN lockstep_users AS uc ON a.u = uc.u "
            "JOIN lockstep_items AS ic ON a.i = ic.i",  # the core is induced by its users and items
        )
    finally:
        for name in (_ACTIONS, pairs, "lockstep_users", "lockstep_items"):
            drop(sql, name)
    uc, ic, t = (table.column(c).to_numpy().astype(np.int64) for c in ("u", "i", "t"))
    ul, il = labels
    del table
    step("searching", 0, None)
    groups = _search(
        uc,
        ic,
        t,
        window=window,
        min_users=min_users,
        min_items=min_items,
        rho=rho,
        max_seeds=max_seeds,
        max_iter=max_iter,
        progress=lambda d, n: step("growing seeds", d, n),
    )
    return LockstepResult(groups, ul, il, int(rows), len(t))


def _build_index(u: np.ndarray, i: np.ndarray, t: np.ndarray, nu: int, ni: int) -> _Index:
    o = np.lexsort((t, i))
    o2 = np.lexsort((t, i, u))
    return _Index(
        it_t=t[o],
        it_u=u[o],
        item_ptr=np.searchsorted(i[o], np.arange(ni + 1)),
        us_i=i[o2],
        us_t=t[o2],
        user_ptr=np.searchsorted(u[o2], np.arange(nu + 1)),
    )


def _seeds(ix: _Index, window: int, min_users: int) -> list[tuple[int, int, int]]:
    """(distinct users, item, centre) of the locally densest 2Δt windows per item, densest first."""
    out = []
    w2 = 2 * window
    ptr = ix.item_ptr
    for p in np.flatnonzero(np.diff(ptr) >= min_users):
        a, b = ptr[p], ptr[p + 1]
        T = ix.it_t[a:b]
        end = np.searchsorted(T, T + w2, side="right")
        cnt = end - np.arange(len(T))
        cand = np.flatnonzero(cnt >= min_users)
        k = 0
        while k < len(cand):
            s = cand[k]
            # best start among those beginning inside this window (local maximum), then jump past it
            lim = np.searchsorted(cand, end[s], side="left")
            block = cand[k:lim]
            best = int(block[np.argmax(cnt[block])])
            e = int(end[best])
            users = np.unique(ix.it_u[a + best : a + e])
            if len(users) >= min_users:
                out.append((len(users), int(p), int((T[best] + T[e - 1]) // 2)))
            k = int(np.searchsorted(cand, e, side="left"))
            k = max(k, lim)
    out.sort(key=lambda x: (-x[0], x[1], x[2]))
    return out


def _users_in_window(ix: _Index, p: int, c: int, window: int) -> np.ndarray:
    a, b = ix.item_ptr[p], ix.item_ptr[p + 1]
    T = ix.it_t[a:b]
    lo = np.searchsorted(T, c - window, side="left")
    hi = np.searchsorted(T, c + window, side="right")
    return np.unique(ix.it_u[a + lo : a + hi])


def _items_given_users(ix: _Index, users: np.ndarray, window: int, need: int) -> dict[int, tuple[int, int]]:
    """For items acted on by `users`: the centre maximising distinct users within ±Δt, if ≥ need."""
    starts, ends = ix.user_ptr[users], ix.user_ptr[users + 1]
    lens = ends - starts
    if lens.sum() == 0:
        return {}
    idx = np.repeat(starts - np.cumsum(np.concatenate([[0], lens[:-1]])), lens) + np.arange(lens.sum())
    items, times = ix.us_i[idx], ix.us_t[idx]
    who = np.repeat(users, lens)
    o = np.lexsort((times, items))
    items, times, who = items[o], times[o], who[o]
    t0 = times.min()
    span = int(times.max() - t0) + 2 * window + 1
    key = items.astype(np.int64) * span + (times - t0)
    end = np.searchsorted(key, key + 2 * window, side="right")
    cnt = end - np.arange(len(key))
    seg = np.flatnonzero(np.concatenate([[True], items[1:] != items[:-1]]))
    seg_max = np.maximum.reduceat(cnt, seg)
    out: dict[int, tuple[int, int]] = {}
    for s_i in np.flatnonzero(seg_max >= need):
        a = seg[s_i]
        b = seg[s_i + 1] if s_i + 1 < len(seg) else len(items)
        # the action-count maximum can overcount a user acting twice; check distinct users on the
        # few windows that could reach `need`
        best_n, best_c = 0, 0
        ks = a + np.flatnonzero(cnt[a:b] >= need)
        for k in ks[np.argsort(-cnt[ks], kind="stable")]:
            if cnt[k] <= best_n:  # distinct users ≤ actions: no later window can do better
                break
            n = len(np.unique(who[k : end[k]]))
            if n > best_n:
                best_n, best_c = n, int((times[k] + times[end[k] - 1]) // 2)
        if best_n >= need:
            out[int(items[a])] = (best_c, best_n)
    return out


def _users_given_items(ix: _Index, items: dict[int, int], window: int) -> tuple[np.ndarray, np.ndarray]:
    chunks = [_users_in_window(ix, p, c, window) for p, c in items.items()]
    if not chunks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.unique(np.concatenate(chunks), return_counts=True)


def copycatch(
    u: np.ndarray,
    i: np.ndarray,
    t: np.ndarray,
    *,
    window: int = 3600,
    min_users: int = 5,
    min_items: int = 4,
    rho: float = 0.5,
    max_seeds: int = 20_000,
    max_iter: int = 10,
    progress: ProgressFn | None = None,
) -> list[LockstepGroup]:
    """Find lockstep groups in actions (user code, item code, epoch seconds); see the module docstring."""
    _check(window, min_users, min_items, rho)
    u = np.asarray(u, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    if len(u) == 0:
        return []
    keep = prune(u, i, min_users, min_items)
    return _search(
        u[keep],
        i[keep],
        t[keep],
        window=window,
        min_users=min_users,
        min_items=min_items,
        rho=rho,
        max_seeds=max_seeds,
        max_iter=max_iter,
        progress=progress,
    )


def _check(window: int, min_users: int, min_items: int, rho: float) -> None:
    if not (0 < rho <= 1):
        raise ValueError("rho must be in (0, 1]")
    if min_users < 2 or min_items < 1 or window <= 0:
        raise ValueError("need min_users ≥ 2, min_items ≥ 1 and window > 0")


def _search(
    u: np.ndarray,
    i: np.ndarray,
    t: np.ndarray,
    *,
    window: int,
    min_users: int,
    min_items: int,
    rho: float,
    max_seeds: int,
    max_iter: int,
    progress: ProgressFn | None,
) -> list[LockstepGroup]:
    """Steps 2–4 over pruned actions (codes need not be dense: only their order matters)."""
    if len(u) == 0:
        return []
    nu, ni = int(u.max()) + 1, int(i.max()) + 1
    ix = _build_index(u, i, t, nu, ni)
    seeds = _seeds(ix, window, min_users)[:max_seeds]
    covered: dict[int, list[int]] = {}
    groups: list[LockstepGroup] = []
    total = len(seeds)
    for n_done, (_n, p0, c0) in enumerate(seeds):
        if progress is not None and (n_done % 200 == 0):
            progress(n_done, total)
        if any(abs(c - c0) <= window for c in covered.get(p0, ())):
            continue
        g = _grow(ix, p0, c0, window, min_users, min_items, rho, max_iter)
        if g is None:
            continue
        groups.append(g)
        for p, c in zip(g.items.tolist(), g.centres.tolist(), strict=True):
            covered.setdefault(p, []).append(c)
    if progress is not None:
        progress(total, total)
    groups.sort(key=lambda g: (-g.edges, int(g.users[0])))
    kept: list[LockstepGroup] = []
    for g in groups:
        gs = set(g.users.tolist())
        if all(len(gs & set(k.users.tolist())) <= 0.5 * len(gs) for k in kept):
            kept.append(g)
    return kept


def _grow(
    ix: _Index, p0: int, c0: int, window: int, m: int, n: int, rho: float, max_iter: int
) -> LockstepGroup | None:
    users = _users_in_window(ix, p0, c0, window)
    items: dict[int, int] = {p0: c0}
    hits = np.zeros(0, np.int64)
    for _ in range(max_iter):
        cand = _items_given_users(ix, users, window, max(m, math.ceil(rho * len(users))))
        new_items = {p: c for p, (c, _n) in sorted(cand.items())}
        if len(new_items) < n:
            return None
        cand_users, cand_hits = _users_given_items(ix, new_items, window)
        need = max(n, math.ceil(rho * len(new_items)))
        sel = cand_hits >= need
        new_users, new_hits = cand_users[sel], cand_hits[sel]
        if len(new_users) < m:
            return None
        converged = new_items == items and np.array_equal(new_users, users)
        users, items, hits = new_users, new_items, new_hits
        if converged:
            break
    if len(users) < m or len(items) < n or len(hits) != len(users):
        return None
    p = np.fromiter(items.keys(), dtype=np.int64)
    c = np.fromiter(items.values(), dtype=np.int64)
    return LockstepGroup(users=users, items=p, centres=c, hits_per_user=hits, edges=int(hits.sum()))


# ------------------------------------------------------------------------------------- I/O + findings


def _fmt(sec: int) -> str:
    return str(np.datetime64(int(sec), "s")).replace("T", " ")


def lockstep_findings(
    groups: list[LockstepGroup],
    user_labels: np.ndarray,
    item_labels: np.ndarray,
    *,
    window: int,
    rho: float,
    behaviour: str = "fake_review",
) -> list[Finding]:
    """Turn groups into findings (one per group, subjects = the group's accounts)."""
    out = []
    for g in groups:
        order = np.argsort(g.centres, kind="stable")
        items = [str(item_labels[x]) for x in g.items[order]]
        centres = {it: _fmt(c) for it, c in zip(items, g.centres[order].tolist(), strict=True)}
        users = sorted(str(user_labels[x]) for x in g.users)
        density = g.edges / (len(g.users) * len(g.items))
        out.append(
            Finding(
                detector="lockstep",
                behaviour=behaviour,
                subject_kind="platform_account",
                subject_ids=users,
                score=float(g.edges),
                summary=(
                    f"{len(users)} accounts acted on the same {len(items)} items, each within "
                    f"±{window // 60} min of the item's centre time "
                    f"(CopyCatch lockstep, density {density:.2f})"
                ),
                evidence={
                    "users": users,
                    "items": items,
                    "centre_times": centres,
                    "window_seconds": window,
                    "rho": rho,
                    "edges": g.edges,
                    "density": round(density, 4),
                    "hits_per_user": {
                        str(user_labels[x]): int(h) for x, h in zip(g.users, g.hits_per_user, strict=True)
                    },
                    "first_seen": _fmt(int(g.centres.min()) - window),
                    "last_seen": _fmt(int(g.centres.max()) + window),
                },
            )
        )
    return out


ACTION_COLUMNS = ("user", "item", "time")
ACTION_TYPES = {"user": "VARCHAR", "item": "VARCHAR", "time": "TIMESTAMP"}


def duckdb_actions(path: str | Path, *, columns: Mapping[str, str], timezone: str) -> Sql:
    """The actions of a file (fanchaoxin.detect.io, strict) as ``lockstep_input`` in a DuckDB `Sql`;
    `columns` maps ``user, item, time`` to the file's columns."""
    con = connect()
    try:
        rel = read_table(
            path, ACTION_COLUMNS, types=ACTION_TYPES, columns=columns, timezone=timezone, con=con
        )
    except BaseException:
        con.close()
        raise
    sql = DuckSql(con)
    sql.table("lockstep_input", rel.project('"user" AS u, "item" AS i, CAST(epoch("time") AS BIGINT) AS t'))
    return sql


def spark_actions(spark: Any, source: str, *, columns: Mapping[str, str], timezone: str) -> Sql:
    """The actions of `source` (any path Spark reads, or ``table:NAME``; engines.spark_read_table,
    checked before any work) as ``lockstep_input`` in a Spark `Sql`: the same columns and values."""
    df = engines.spark_read_table(
        spark, source, ACTION_COLUMNS, types=ACTION_TYPES, columns=columns, timezone=timezone
    )
    sql = SparkSql(spark)
    sql.table("lockstep_input", df.selectExpr("`user` AS u", "`item` AS i", "t"))
    return sql


def load_actions(  # type: ignore[no-untyped-def]
    path: str | Path,
    *,
    user: str = "userid",
    item: str = "itemid",
    time: str = "event_time",
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
):
    """Read (user, item, time) actions strictly (fanchaoxin.detect.io); return labels and codes.

    `user`, `item` and `time` are the file's columns; `columns` may map the names ``user, item,
    time`` instead (it wins). Times become naive local times in `timezone` (epoch seconds and times
    with an offset are converted). Returns ``(user_labels, item_labels, user_codes, item_codes,
    epoch_seconds)``.
    """
    mapping = {"user": user, "item": item, "time": time, **(columns or {})}
    rel = read_table(
        path,
        ["user", "item", "time"],
        types={"user": "VARCHAR", "item": "VARCHAR", "time": "TIMESTAMP"},
        columns=mapping,
        timezone=timezone,
    )
    data = rel.project('"user" AS u, "item" AS i, CAST(epoch("time") AS BIGINT) AS t').fetchnumpy()
    ul, uc = np.unique(np.asarray(data["u"], dtype=object), return_inverse=True)
    il, ic = np.unique(np.asarray(data["i"], dtype=object), return_inverse=True)
    return ul, il, uc.astype(np.int64), ic.astype(np.int64), np.asarray(data["t"], dtype=np.int64)
