"""刷单骗补 subsidy brushing on ride-hailing and delivery platforms: collusive driver–rider pairs and rings.

A fake trip costs its organisers the platform's commission and earns them the subsidy of the trip (a
rider coupon, a driver reward, a daily-threshold bonus). Brushing therefore shows as the *same*
driver and rider accounts meeting again and again on *short* trips, in quick succession and often
A→B→A, inside subsidy windows or just before a driver's bonus threshold, with a subsidy that covers
much of the fare — and, where one person runs both sides, a device or a payment account shared by
the driver and the rider account. Each of these alone is common among honest users (commuters
repeat a route with a regular driver, students take short hops across campus, families share a
wallet): the detector scores a pair only on the *combination*.

Method (one SQL text, run through `fanchaoxin.detect.sql`: on DuckDB over `io.read_table`, memory flat
in the number of trips, or on Spark over `engines.spark_read_table` — the same rows, #21):

1. One scan counts trips per driver, per rider and per (driver, rider) pair; pairs with at least
   ``min_pair_trips`` trips together are *candidates*.
2. The trips of candidate riders and drivers (a small part of the file) are read once more, with per
   rider the previous and next trip (bursts, loops) and per driver and calendar day the rank of the
   trip (threshold padding); windows and thresholds come from the subsidies file when one is given.
3. Per candidate pair, shares in [0, 1]: ``concentration`` — the larger of the share of the rider's
   trips and the share of the driver's trips taken with *repeat partners* (partners met at least
   ``min_pair_trips`` times); ``short`` — trips of at most ``short_km``; ``burst`` — trips starting or
   followed within ``burst_minutes`` by another trip of the rider; ``loop`` — trips that go back
   where the rider's previous (or next) trip started, within ``burst_minutes`` (A→B→A), or end where
   they started; ``campaign`` — trips inside a subsidy window or padding a driver's day up to a bonus
   threshold (without a subsidies file: trips with a subsidy); ``rich`` — trips whose subsidy is at
   least ``rich_share`` of the fare; ``shared`` — 1 when the pair's driver and rider accounts share a
   device or a payment account (an id shared by more than ``max_shared_accounts`` candidate accounts
   is ignored: a fleet's tablet, a company card).
4. Pair score = Σ weight × share (`WEIGHTS`, sum 1): a pair is suspicious at ``min_pair_score``.
5. Rings: connected components of suspicious pairs, merged where their accounts share a device or a
   payment account. One finding per ring (``subject_kind="platform_account"``, drivers first), score =
   its best pair's score, evidence per pair, per account and per shared id.

Steps 1–3 are SQL (the pair counts, the per-rider and per-driver-day windows, the per-pair shares, the
ids shared by candidate accounts): on Spark they are what runs distributed and shuffles. The rest runs
in Python on the driver over one row per candidate account, per candidate pair and per shared id — a
reduced input that grows with the number of repeat pairs, not with the number of trips: the pairs of
accounts sharing an id, the scores, and the union-find of step 5 over the suspicious pairs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from fanchaoxin.detect import io
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import InputError
from fanchaoxin.detect.sql import DuckSql, SparkSql, Sql

__all__ = [
    "DETECTOR",
    "OPTIONAL_COLUMNS",
    "TRIP_COLUMNS",
    "WEIGHTS",
    "Params",
    "Subsidies",
    "detect_subsidy_brushing",
    "detect_subsidy_brushing_spark",
    "load_subsidies",
    "load_subsidies_spark",
    "load_trips",
    "load_trips_spark",
]

DETECTOR = "subsidy-brushing"
TRIP_COLUMNS = (
    "trip_id",
    "driver",
    "rider",
    "start_time",
    "end_time",
    "origin_lat",
    "origin_lon",
    "dest_lat",
    "dest_lon",
    "distance_km",
    "fare",
    "subsidy",
)
OPTIONAL_COLUMNS = ("rider_device", "driver_device", "payment_account", "payout_account")
SUBSIDY_COLUMNS = ("start_time", "end_time")
_TRIP_TYPES = {
    "trip_id": "ID",
    "driver": "ID",
    "rider": "ID",
    "start_time": "TIMESTAMP",
    "end_time": "TIMESTAMP",
    "origin_lat": "DOUBLE",
    "origin_lon": "DOUBLE",
    "dest_lat": "DOUBLE",
    "dest_lon": "DOUBLE",
    "distance_km": "DOUBLE",
    "fare": "DOUBLE",
    "subsidy": "DOUBLE",
}

# Weights of the pair score. Concentration and short trips say "these two keep meeting on cheap
# trips"; burst and loop say "the trips were not journeys"; campaign and rich say "the trips paid";
# a shared device or wallet says "one person on both sides". No single signal reaches the default
# threshold of 0.5 and no honest pattern of the simulator collects more than about 0.45.
WEIGHTS = {
    "concentration": 0.25,
    "short": 0.15,
    "burst": 0.15,
    "loop": 0.10,
    "campaign": 0.10,
    "rich": 0.10,
    "shared": 0.15,
}


@dataclass(frozen=True)
class Params:
    min_pair_trips: int = 5
    short_km: float = 3.0
    burst_minutes: int = 45
    near_km: float = 0.3
    rich_share: float = 0.5
    pad_trips: int = 4
    min_pair_score: float = 0.5
    max_shared_accounts: int = 20

    def check(self) -> None:
        if self.min_pair_trips < 2:
            raise ValueError("min_pair_trips must be at least 2")
        for name in ("short_km", "near_km", "rich_share"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number")
        if self.burst_minutes < 1 or self.pad_trips < 1 or self.max_shared_accounts < 2:
            raise ValueError("burst_minutes and pad_trips must be ≥ 1, max_shared_accounts ≥ 2")
        if not 0 <= self.min_pair_score <= 1:
            raise ValueError("min_pair_score must be in [0, 1]")


@dataclass(frozen=True)
class Subsidies:
    """Campaign windows (start, end) and daily-threshold bonuses (start, end, Nth trip of a driver's day)."""

    windows: tuple[tuple[datetime, datetime], ...]
    thresholds: tuple[tuple[datetime, datetime, int], ...]


def load_trips(
    path: str | Path,
    *,
    con: duckdb.DuckDBPyConnection,
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
) -> tuple[duckdb.DuckDBPyRelation, list[str]]:
    """The trips relation, validated, and which of the optional device / payment columns it has."""
    mapped_optional = [c for c in OPTIONAL_COLUMNS if columns and c in columns]
    rel = io.read_table(
        path,
        [*TRIP_COLUMNS, *mapped_optional],
        types=_TRIP_TYPES,
        con=con,
        unique=["trip_id"],
        nullable=mapped_optional,
        columns=columns or None,
        timezone=timezone,
    )
    present = [c for c in OPTIONAL_COLUMNS if c in rel.columns]
    return rel, present


def load_trips_spark(
    spark: Any,
    source: str,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
) -> tuple[Any, list[str]]:
    """`load_trips` on Spark (a path Spark reads or ``table:NAME``): the trips DataFrame, validated as
    `io.read_table` validates them (engines.spark_read_table), and its optional columns."""
    from fanchaoxin.detect import engines  # noqa: PLC0415 - pyspark only for a Spark job

    mapped_optional = [c for c in OPTIONAL_COLUMNS if columns and c in columns]
    df = engines.spark_read_table(
        spark,
        source,
        [*TRIP_COLUMNS, *mapped_optional],
        types=_TRIP_TYPES,
        unique=["trip_id"],
        nullable=mapped_optional,
        columns=columns or None,
        timezone=timezone,
        epoch_time=False,
        rest=True,
    )
    present = [c for c in OPTIONAL_COLUMNS if c in df.columns]
    return df.select(*TRIP_COLUMNS, *present), present


def load_subsidies(
    path: str | Path, *, con: duckdb.DuckDBPyConnection, timezone: str = "Asia/Shanghai"
) -> Subsidies:
    """Campaigns: ``start_time, end_time`` and optionally ``threshold_trips`` (a daily-threshold bonus)."""
    rel = io.read_table(
        path,
        SUBSIDY_COLUMNS,
        types={"start_time": "TIMESTAMP", "end_time": "TIMESTAMP"},
        con=con,
        timezone=timezone,
    )
    has_thr = "threshold_trips" in rel.columns
    cols = "start_time, end_time" + (", CAST(threshold_trips AS VARCHAR)" if has_thr else "")
    return _subsidies(path, rel.select(cols).fetchall(), has_thr)


def load_subsidies_spark(spark: Any, source: str, *, timezone: str = "Asia/Shanghai") -> Subsidies:
    """`load_subsidies` on Spark: the same file (any path Spark reads, or ``table:NAME``), the same checks."""
    from fanchaoxin.detect import engines  # noqa: PLC0415 - pyspark only for a Spark job

    df = engines.spark_read_table(
        spark,
        source,
        SUBSIDY_COLUMNS,
        types={"start_time": "TIMESTAMP", "end_time": "TIMESTAMP"},
        timezone=timezone,
        epoch_time=False,
        rest=True,
    )
    has_thr = "threshold_trips" in df.columns
    cols = ["start_time", "end_time"] + (["CAST(threshold_trips AS STRING)"] if has_thr else [])
    # a campaigns file is small: collected in file order, so that errors name the same row
    return _subsidies(source, [tuple(r) for r in df.selectExpr(*cols).collect()], has_thr)


def _subsidies(path: str | Path, rows: list[tuple[Any, ...]], has_thr: bool) -> Subsidies:
    windows, thresholds = [], []
    for i, row in enumerate(rows, 1):
        start, end = row[0], row[1]
        if end <= start:
            raise InputError(
                f"{path}: data row {i}, column end_time: {end} is not after start_time {start}",
                path=path,
                row=i,
                column="end_time",
                value=str(end),
            )
        raw = (row[2] or "").strip() if has_thr else ""
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise InputError(
                    f"{path}: data row {i}, column threshold_trips: {raw!r} is not a positive whole number",
                    path=path,
                    row=i,
                    column="threshold_trips",
                    value=raw,
                )
            thresholds.append((start, end, int(raw)))
        else:
            windows.append((start, end))
    return Subsidies(tuple(windows), tuple(thresholds))


def _dist(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """Equirectangular distance in km (exact enough under a few km, which is all it is used for).

    Squares are products, not ``power(x, 2)``: C's pow may differ from x·x in the last bit, Java's
    StrictMath.pow (Spark) does not; a product is the same IEEE operation on both engines."""
    dy = f"(({lat1} - {lat2}) * 111.2)"
    dx = f"(({lon1} - {lon2}) * 111.2 * cos(radians({lat1})))"
    return f"sqrt({dy} * {dy} + {dx} * {dx})"


def _ts(v: datetime) -> str:
    return f"TIMESTAMP '{v:%Y-%m-%d %H:%M:%S}'"


def detect_subsidy_brushing_spark(
    trips: Any,
    *,
    spark: Any,
    optional: list[str],
    subsidies: Subsidies | None = None,
    params: Params | None = None,
    stats: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Finding]:
    """`detect_subsidy_brushing` on Spark: the same SQL (transpiled by sqlglot) over a trips DataFrame
    (`load_trips_spark`); what it cached is released at the end."""
    sql = SparkSql(spark)
    try:
        return detect_subsidy_brushing(
            trips,
            sql=sql,
            optional=optional,
            subsidies=subsidies,
            params=params,
            stats=stats,
            progress=progress,
        )
    finally:
        sql.close()


def detect_subsidy_brushing(
    trips: Any,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    sql: Sql | None = None,
    optional: list[str],
    subsidies: Subsidies | None = None,
    params: Params | None = None,
    stats: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Score driver–rider pairs, group suspicious ones into rings, one finding per ring.

    `trips` is a DuckDB relation on `con` (or a Spark DataFrame with `sql` a `SparkSql`): the SQL below
    is written once, in DuckDB's dialect, and runs on either engine."""
    p = params or Params()
    p.check()
    step = progress or (lambda _s: None)
    stats = stats if stats is not None else {}
    if sql is None:
        if con is None:
            raise TypeError("detect_subsidy_brushing needs con (DuckDB) or sql (fanchaoxin.detect.sql)")
        sql = DuckSql(con)

    sql.table("fcx_trips_in", trips)

    def opt(col: str) -> str:
        return f"CAST({col} AS VARCHAR)" if col in optional else "CAST(NULL AS VARCHAR)"

    sql.run(
        f"""CREATE OR REPLACE TEMP VIEW fcx_t AS SELECT trip_id,
        CAST(driver AS VARCHAR) AS d, CAST(rider AS VARCHAR) AS r, start_time AS ts, end_time AS te,
        origin_lat AS olat, origin_lon AS olon, dest_lat AS dlat, dest_lon AS dlon,
        distance_km AS km, fare, subsidy,
        {opt("rider_device")} AS rdev, {opt("driver_device")} AS ddev,
        {opt("payment_account")} AS rpay, {opt("payout_account")} AS dpay
        FROM fcx_trips_in"""
    )
    step("counting pairs")
    # one scan: trips per driver, per rider, and the pairs that meet often enough to matter
    sql.run(
        f"""CREATE OR REPLACE TEMP TABLE fcx_counts AS
        SELECT d, r, GROUPING(d) AS gd, GROUPING(r) AS gr, count(*) AS n,
               min(ts) AS first_ts, max(ts) AS last_ts
        FROM fcx_t GROUP BY GROUPING SETS ((d, r), (d), (r))
        HAVING GROUPING(d) + GROUPING(r) > 0 OR count(*) >= {p.min_pair_trips}"""
    )
    # the candidate accounts (role 'd' or 'r'): their trips and those taken with repeat partners, in
    # one aggregation of the counts (an account's total row and its candidate-pair rows), no join
    sql.run(
        """CREATE OR REPLACE TEMP TABLE fcx_acc AS
        SELECT role, acct, max(n) FILTER (WHERE whole) AS total, sum(n) FILTER (WHERE NOT whole) AS paired
        FROM (SELECT 'd' AS role, d AS acct, n, gr = 1 AS whole FROM fcx_counts WHERE gd = 0
              UNION ALL
              SELECT 'r' AS role, r AS acct, n, gd = 1 AS whole FROM fcx_counts WHERE gr = 0)
        GROUP BY role, acct HAVING count(*) > 1"""
    )
    # one pass over the counts for the totals and the number of candidates
    (totals,) = sql.rows(
        "SELECT sum(n) FILTER (WHERE gd + gr = 1), count(*) FILTER (WHERE gr = 1 AND gd = 0),"
        " count(*) FILTER (WHERE gd = 1 AND gr = 0), min(first_ts) FILTER (WHERE gd + gr = 1),"
        " max(last_ts) FILTER (WHERE gd + gr = 1), count(*) FILTER (WHERE gd = 0 AND gr = 0) FROM fcx_counts"
    )
    n_trips = int(totals[0] or 0) // 2
    stats.update(
        trips=n_trips,
        drivers=int(totals[1] or 0),
        riders=int(totals[2] or 0),
        first_trip=_fmt(totals[3]),
        last_trip=_fmt(totals[4]),
    )
    stats["candidate_pairs"] = int(totals[5] or 0)
    if not stats["candidate_pairs"]:
        stats.update(suspicious_pairs=0, rings=0)
        return []
    # per candidate account: its trips and the share of them taken with repeat partners (a quotient of
    # two integers, correctly rounded in Python whatever the engine)
    repeat: dict[str, dict[str, float]] = {"d": {}, "r": {}}
    total: dict[str, dict[str, int]] = {"d": {}, "r": {}}
    for role, acct, n, paired in sql.rows("SELECT role, acct, total, paired FROM fcx_acc"):
        total[role][acct], repeat[role][acct] = int(n), int(paired) / int(n)
    repeat_d, repeat_r, tot_d, tot_r = repeat["d"], repeat["r"], total["d"], total["r"]
    sql.run("DROP TABLE fcx_counts")

    step("reading the candidates' trips")
    burst = p.burst_minutes * 60
    near = p.near_km
    # The trips of candidate riders or drivers (flagged r_cand, d_cand: two joins with the small
    # fcx_acc), with per rider the previous and next trip and per driver-day the rank of the trip and
    # whether it is the first of its pair that day (`wp`: the same partitions as `wd`, no new shuffle).
    sql.run(
        """CREATE OR REPLACE TEMP TABLE fcx_ct AS
        SELECT *,
          lag(te) OVER wr AS p_te, lag(olat) OVER wr AS p_olat, lag(olon) OVER wr AS p_olon,
          lag(dlat) OVER wr AS p_dlat, lag(dlon) OVER wr AS p_dlon,
          lead(ts) OVER wr AS n_ts, lead(olat) OVER wr AS n_olat, lead(olon) OVER wr AS n_olon,
          lead(dlat) OVER wr AS n_dlat, lead(dlon) OVER wr AS n_dlon,
          row_number() OVER wd AS day_rank, count(*) OVER (PARTITION BY d, CAST(ts AS DATE)) AS day_total,
          coalesce(lag(r) OVER wp <> r, true)::INT AS pair_day
        FROM (SELECT t.*, cr.acct IS NOT NULL AS r_cand, cd.acct IS NOT NULL AS d_cand
              FROM fcx_t t
              LEFT JOIN fcx_acc cr ON cr.role = 'r' AND cr.acct = t.r
              LEFT JOIN fcx_acc cd ON cd.role = 'd' AND cd.acct = t.d
              WHERE cr.acct IS NOT NULL OR cd.acct IS NOT NULL)
        WINDOW wr AS (PARTITION BY r ORDER BY ts, trip_id),
               wd AS (PARTITION BY d, CAST(ts AS DATE) ORDER BY ts, trip_id),
               wp AS (PARTITION BY d, CAST(ts AS DATE) ORDER BY r, ts, trip_id)"""
    )
    # lag/lead over riders are right for candidate riders (all their trips are here), day ranks for
    # candidate drivers; pair features below only ever use candidate pairs, which have both: a pair of
    # a candidate rider and a candidate driver is a candidate when it has ``min_pair_trips`` trips.
    prev_gap = f"date_diff('second', p_te, ts) BETWEEN 0 AND {burst}"
    next_gap = f"date_diff('second', te, n_ts) BETWEEN 0 AND {burst}"
    loop = (
        f"(({prev_gap}) AND {_dist('dlat', 'dlon', 'p_olat', 'p_olon')} <= {near}"
        f" AND {_dist('olat', 'olon', 'p_dlat', 'p_dlon')} <= {near})"
        f" OR (({next_gap}) AND {_dist('n_dlat', 'n_dlon', 'olat', 'olon')} <= {near}"
        f" AND {_dist('n_olat', 'n_olon', 'dlat', 'dlon')} <= {near})"
        f" OR {_dist('olat', 'olon', 'dlat', 'dlon')} <= {near}"
    )
    if subsidies is not None:
        wins = " OR ".join(f"(ts >= {_ts(s)} AND ts < {_ts(e)})" for s, e in subsidies.windows) or "false"
        pads = (
            " OR ".join(
                f"(ts >= {_ts(s)} AND ts < {_ts(e)} AND day_rank > {n - p.pad_trips} AND day_rank <= {n}"
                f" AND day_total <= {n + 1})"
                for s, e, n in subsidies.thresholds
            )
            or "false"
        )
        campaign, padding = f"({wins}) OR ({pads})", f"({pads})"
    else:
        campaign, padding = "subsidy > 0", "false"

    step("scoring pairs")
    rows = sql.rows(
        f"""WITH f AS (
          SELECT d, r, ts, km, fare, subsidy,
            coalesce(({prev_gap}) OR ({next_gap}), false)::INT AS is_burst,
            coalesce({loop}, false)::INT AS is_loop,
            coalesce({campaign}, false)::INT AS is_campaign,
            coalesce({padding}, false)::INT AS is_padding,
            (km <= {p.short_km})::INT AS is_short,
            (subsidy > 0 AND subsidy >= {p.rich_share} * fare)::INT AS is_rich, pair_day
          FROM fcx_ct WHERE r_cand AND d_cand)
        SELECT d, r, count(*) AS n, avg(is_short), avg(is_burst), avg(is_loop), avg(is_campaign),
          avg(is_rich), avg(is_padding),
          -- summed as decimals: a parallel sum of doubles may differ in the last bit from run to run
          -- (and between engines), and a finding's digest (its submission key) must not; the exact
          -- sums are made floats in Python (one correctly rounded conversion, whatever the engine)
          sum(CAST(subsidy AS DECIMAL(38, 6))),
          sum(CAST(fare AS DECIMAL(38, 6))),
          min(ts), max(ts), sum(pair_day)
        FROM f GROUP BY d, r HAVING count(*) >= {p.min_pair_trips}"""
    )
    # sorted here, not by ORDER BY: the same order (text by code point = UTF-8 bytes, as both engines
    # order VARCHAR), without a distributed sort of a result that is collected anyway
    rows.sort(key=lambda row: (row[0], row[1]))

    step("shared devices and payment accounts")
    links = _shared_links(sql, p, optional) if optional else []
    shared_pair: set[tuple[str, str]] = set()
    for a, b, _kind, _id in links:
        if a[0] != b[0]:
            drv, rid = (a, b) if a[0] == "d" else (b, a)
            shared_pair.add((drv[1], rid[1]))

    pairs: list[dict[str, Any]] = []
    for d, r, n, short, burst_s, loop_s, camp, rich, pad, sub, fare, first, last, days in rows:
        shares = {
            "concentration": max(float(repeat_d.get(d, 0)), float(repeat_r.get(r, 0))),
            "short": float(short),
            "burst": float(burst_s),
            "loop": float(loop_s),
            "campaign": float(camp),
            "rich": float(rich),
            "shared": 1.0 if (d, r) in shared_pair else 0.0,
        }
        score = sum(WEIGHTS[k] * v for k, v in shares.items())
        pairs.append(
            {
                "driver": d,
                "rider": r,
                "trips": int(n),
                "score": round(score, 4),
                **{f"{k}_share": _r(v) for k, v in shares.items() if k != "shared"},
                "shared_ids": (d, r) in shared_pair,
                "padding_share": _r(pad),
                "share_of_driver_trips": _r(n / tot_d[d]),
                "share_of_rider_trips": _r(n / tot_r[r]),
                "subsidy": round(float(sub), 2),
                "fare": round(float(fare), 2),
                "first_seen": _fmt(first),
                "last_seen": _fmt(last),
                "days": int(days),
            }
        )
    suspicious = [pr for pr in pairs if pr["score"] >= p.min_pair_score]
    stats["suspicious_pairs"] = len(suspicious)

    step("rings")
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for pr in suspicious:
        union(("d", pr["driver"]), ("r", pr["rider"]))
    in_pairs = set(parent)
    ring_links = [lk for lk in links if lk[0] in in_pairs and lk[1] in in_pairs]
    for a, b, _k, _i in ring_links:
        union(a, b)

    members: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for node in in_pairs:
        members[find(node)].append(node)
    ring_pairs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for pr in suspicious:
        ring_pairs[find(("d", pr["driver"]))].append(pr)
    ring_ids: dict[tuple[str, str], list[_Link]] = defaultdict(list)
    for link in ring_links:
        ring_ids[find(link[0])].append(link)

    findings = [
        _ring_finding(sorted(members[root]), ring_pairs[root], ring_ids[root], tot_d, tot_r, p)
        for root in members
    ]
    findings.sort(key=lambda f: (-f.score, f.subject_ids))
    stats["rings"] = len(findings)
    return findings


_Link = tuple[tuple[str, str], tuple[str, str], str, str]  # (account, account, kind, shared id)


def _shared_links(sql: Sql, p: Params, optional: list[str]) -> list[_Link]:
    """(account, account, 'device' | 'payment', id) for candidate accounts sharing an id."""
    parts = []
    spec = (
        ("d", "device", "ddev", "driver_device"),
        ("d", "payment", "dpay", "payout_account"),
        ("r", "device", "rdev", "rider_device"),
        ("r", "payment", "rpay", "payment_account"),
    )
    for role, kind, col, name in spec:
        if name in optional:
            parts.append(
                f"SELECT '{role}' AS role, {role} AS acct, '{kind}' AS kind, {col} AS id "
                f"FROM fcx_ct WHERE {col} IS NOT NULL AND {role}_cand"
            )
    # the ids held by 2 … max_shared_accounts distinct candidate accounts, each with its accounts
    # (role letter + account); the pairs of accounts sharing an id are formed here, at most
    # max_shared_accounts² per id, sorted as ORDER BY ALL would (no NULLs, text by code point)
    shared = sql.rows(
        f"""SELECT kind, id, list(role || acct) FROM (SELECT DISTINCT * FROM ({" UNION ALL ".join(parts)}))
        GROUP BY kind, id HAVING count(*) BETWEEN 2 AND {p.max_shared_accounts}"""
    )
    links: list[_Link] = []
    for kind, ident, holders in shared:
        accounts = sorted((h[0], h[1:]) for h in holders)
        links += [(a, b, kind, ident) for i, a in enumerate(accounts) for b in accounts[i + 1 :]]
    links.sort(key=lambda lk: (*lk[0], *lk[1], lk[2], lk[3]))
    return links


def _r(v: Any) -> float:
    return round(float(v), 3)


def _fmt(v: Any) -> str | None:
    return v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else None


def _ring_finding(
    nodes: list[tuple[str, str]],
    pairs: list[dict[str, Any]],
    links: list[_Link],
    tot_d: dict[str, int],
    tot_r: dict[str, int],
    p: Params,
) -> Finding:
    drivers = [a for role, a in nodes if role == "d"]
    riders = [a for role, a in nodes if role == "r"]
    trips = sum(pr["trips"] for pr in pairs)
    subsidy = round(sum(pr["subsidy"] for pr in pairs), 2)
    fare = round(sum(pr["fare"] for pr in pairs), 2)
    first = min(pr["first_seen"] for pr in pairs)
    last = max(pr["last_seen"] for pr in pairs)

    def wavg(key: str, prs: list[dict[str, Any]]) -> float:
        n = sum(pr["trips"] for pr in prs)
        return round(sum(pr[key] * pr["trips"] for pr in prs) / n, 3) if n else 0.0

    shared_of: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    shared = []
    for a, b, kind, ident in links:
        shared.append(
            {"kind": kind, "id": ident, "accounts": [a[1], b[1]], "roles": [_ROLE[a[0]], _ROLE[b[0]]]}
        )
        shared_of[a].append({"kind": kind, "id": ident, "with": b[1]})
        shared_of[b].append({"kind": kind, "id": ident, "with": a[1]})
    accounts = []
    for role, acct in nodes:
        mine = [pr for pr in pairs if pr["driver" if role == "d" else "rider"] == acct]
        total = (tot_d if role == "d" else tot_r).get(acct, 0)
        n_in = sum(pr["trips"] for pr in mine)
        accounts.append(
            {
                "account": acct,
                "role": _ROLE[role],
                "trips_total": total,
                "trips_in_ring": n_in,
                "share_in_ring": round(n_in / total, 3) if total else 0.0,
                "partners": sorted(pr["rider" if role == "d" else "driver"] for pr in mine),
                "short_share": wavg("short_share", mine),
                "loop_share": wavg("loop_share", mine),
                "campaign_share": wavg("campaign_share", mine),
                "subsidy_in_ring": round(sum(pr["subsidy"] for pr in mine), 2),
                "shared_ids": shared_of.get((role, acct), []),
                "first_seen": min((pr["first_seen"] for pr in mine), default=None),
                "last_seen": max((pr["last_seen"] for pr in mine), default=None),
            }
        )
    span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() / 86400
    level = "pair" if len(nodes) == 2 else "ring"
    score = max(pr["score"] for pr in pairs)
    short, loop, camp = wavg("short_share", pairs), wavg("loop_share", pairs), wavg("campaign_share", pairs)
    summary = (
        f"{len(drivers)} driver(s), {len(riders)} rider account(s): {trips} trips together, "
        f"{short:.0%} short, {loop:.0%} circular, {camp:.0%} in subsidy campaigns, "
        f"subsidy ¥{subsidy:,.2f} on fares ¥{fare:,.2f}"
        + (f"; {len(shared)} shared device/payment id(s)" if shared else "")
    )
    evidence = {
        "level": level,
        "drivers": drivers,
        "riders": riders,
        "trips": trips,
        "subsidy_total": subsidy,
        "fare_total": fare,
        "short_share": short,
        "loop_share": loop,
        "campaign_share": camp,
        "first_seen": first,
        "last_seen": last,
        "span_days": round(span, 2),
        "pairs": sorted(pairs, key=lambda pr: (-pr["score"], pr["driver"], pr["rider"])),
        "accounts": accounts,
        "shared": shared,
        "weights": WEIGHTS,
        "parameters": asdict(p),
    }
    return Finding(
        detector=DETECTOR,
        behaviour="subsidy_brushing",
        subject_kind="platform_account",
        subject_ids=drivers + riders,
        score=round(score, 4),
        summary=summary,
        evidence=evidence,
    )


_ROLE = {"d": "driver", "r": "rider"}
