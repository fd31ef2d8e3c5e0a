"""Empty parcels (合谋寄递空包裹, behaviour ``empty_parcel``) in courier waybill data.

Order brushing needs logistics records that look real, so brushers buy waybill numbers from "空包网"
sites and have empty (or near-empty) parcels shipped — or only scanned and signed — often with the
help of a courier outlet or staff member. Three signals per waybill, each in [0, 1]:

``weight``   near-zero weight: 1 at ≤ ``w_empty`` kg (0.05), falling linearly to 0 at ``w_light`` kg
             (0.15). Documents and light goods weigh from about 0.06 kg, so weight alone is never enough.
``scans``    missing transit scans: no scan at all is 1 for a parcel travelling ≥ ``local_km`` (50 km)
             and 0.5 within a city; a single scan over ≥ 300 km is 0.5. Long trips pass sorting centres.
``transit``  an impossible pick-up → sign time: signed before pick-up, or faster than ``v_ok`` km/h
             (130, above air express door to door) rising to 1 at ``v_bad`` (260), or under
             ``min_hours`` (2 h) for any trip ≥ ``local_km``. Unknown sign times give 0.

The waybill score is the mean of the three; waybills scoring ≥ ``min_score`` (0.5, i.e. about two
strong signals) are flagged. Missing weight / scans / distance count as 0 for their signal (nothing is
invented) and are listed in the evidence.

Concentration (集中度). An honest sender or courier ends up with a few flagged waybills by chance (a
light document that skipped a scanner); a colluding one has many.

* Sender with n waybills of which k are flagged, p₀ the flagged share over the whole file: the
  one-sided binomial tail P(X ≥ k | n, p₀).
* Courier: the honest courier staff who picks up a brushing shop's parcels also gets some of its empty
  ones, so "more than p₀" would blame them for the shop. The expectation is instead what the
  courier's *senders* explain: for each sender, its flagged rate on waybills carried by other
  couriers (shrunk towards p₀), times the waybills this courier carried for it; P = Poisson tail
  P(X ≥ k | λ = that sum), conservative for a sum of Bernoullis. A colluder who gets a shop's empty
  parcels but not its real ones stands out; a courier who simply serves the shop does not.
  A sender that ships nothing but empty parcels (a 空包网 customer) "explains" every courier it uses,
  so a courier is also reported when flagged waybills of at least ``min_senders`` (3) different
  senders converge on it and the plain binomial tail against p₀ is significant.

The score is −log₁₀ P (capped at 300). Senders/couriers with k ≥ ``min_count`` and P ≤ ``alpha``
(1e-4, which keeps expected false alarms below one over thousands of senders) are reported.

Findings: one per flagged waybill (subject: the sender shop, ``platform_account``; evidence holds the
waybill, courier and signals; score in [0, 1]), one per concentrated sender (``platform_account``)
and one per concentrated courier (``courier_staff`` by default; score −log₁₀ P). ``evidence.level`` is
``waybill``, ``sender`` or ``courier``. Waybill findings come by (pickup time, waybill), then senders,
then couriers, each by score (ties by id).

Engines (#21): one definition, run by DuckDB (`detect_file`) or Spark (`detect_spark`). The per-waybill
signals are the numpy kernel `waybill_signals`, run by `score_batches` over Arrow batches — over the
whole file on DuckDB, per partition on Spark (``mapInArrow``, no shuffle). Everything over all waybills
after that is SQL kept here and run through fanchaoxin.detect.sql: exact integer counts per (sender,
courier), summed per sender and per courier, and the flagged waybills. The statistics (binomial and
Poisson tails) are computed on the driver from those exact counts. The one real-valued sum — a
courier's expectation from its senders — adds terms floored to multiples of 2⁻³⁰ as integers, so it
is exact in any order of partitions (at most 2⁻³⁰ per (sender, courier) pair below the real sum).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fanchaoxin.detect.findings import Finding

if TYPE_CHECKING:  # Spark's executors import this module for the kernel: numpy and pyarrow, no DuckDB
    from fanchaoxin.detect.sql import Sql

COLUMNS = (
    "waybill",
    "courier",
    "sender",
    "weight_kg",
    "pickup_time",
    "sign_time",
    "origin_city",
    "dest_city",
    "distance_km",
    "transit_scans",
)
TYPES = {
    "waybill": "VARCHAR",
    "courier": "VARCHAR",
    "sender": "VARCHAR",
    "pickup_time": "TIMESTAMP",
    "sign_time": "TIMESTAMP",
    "weight_kg": "DOUBLE",
    "distance_km": "DOUBLE",
    "transit_scans": "BIGINT",
}
NULLABLE = ("sign_time", "weight_kg", "distance_km", "transit_scans", "origin_city", "dest_city")


@dataclass
class Waybills:
    waybill: np.ndarray
    courier: np.ndarray
    sender: np.ndarray
    weight: np.ndarray  # kg, NaN when unknown
    pickup: np.ndarray  # epoch seconds
    sign: np.ndarray  # epoch seconds, or INT64_MIN when not (yet) signed
    origin: np.ndarray
    dest: np.ndarray
    distance: np.ndarray  # km, NaN when unknown
    scans: np.ndarray  # float, NaN when unknown


NO_TIME = -(2**62)  # "not signed"; far from any real epoch second


def missing_values(w: Waybills) -> dict[str, int]:
    """How many waybills lack each optional value (those give no signal, so a report says how many)."""
    return {
        "weight_kg": int(np.isnan(w.weight).sum()),
        "transit_scans": int(np.isnan(w.scans).sum()),
        "distance_km": int(np.isnan(w.distance).sum()),
        "sign_time": int((w.sign == NO_TIME).sum()),
    }


@dataclass
class Params:
    w_empty: float = 0.05
    w_light: float = 0.15
    local_km: float = 50.0
    v_ok: float = 130.0
    v_bad: float = 260.0
    min_hours: float = 2.0
    min_score: float = 0.5
    min_count: int = 3
    min_senders: int = 3
    alpha: float = 1e-4
    courier_kind: str = "courier_staff"


def waybill_signals(w: Waybills, p: Params) -> dict[str, np.ndarray]:
    """Per-waybill signals and score (vectorised): the kernel both engines run, elementwise IEEE
    arithmetic only (no libm, no sums), so every engine and every partitioning gives the same bits."""
    weight = np.clip((p.w_light - w.weight) / (p.w_light - p.w_empty), 0, 1)
    weight = np.where(np.isnan(w.weight), 0.0, weight)
    dist = w.distance
    far = np.nan_to_num(dist, nan=0.0) >= p.local_km
    scans = np.where(w.scans == 0, np.where(far, 1.0, 0.5), 0.0)
    scans = np.where((w.scans == 1) & (np.nan_to_num(dist, nan=0.0) >= 300), 0.5, scans)
    scans = np.where(np.isnan(w.scans), 0.0, scans)
    signed = w.sign != NO_TIME
    hours = np.where(signed, (w.sign - w.pickup) / 3600.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(signed & (hours > 0), dist / hours, np.nan)
    transit = np.clip((speed - p.v_ok) / (p.v_bad - p.v_ok), 0, 1)
    transit = np.where(np.isnan(transit), 0.0, transit)
    transit = np.where(signed & (hours < p.min_hours) & far, 1.0, transit)
    transit = np.where(signed & (hours < 0), 1.0, transit)
    score = (weight + scans + transit) / 3.0
    return {
        "weight": weight,
        "scans": scans,
        "transit": transit,
        "score": score,
        "hours": hours,
        "speed": speed,
    }


# ------------------------------------------------------------------------------ one definition, two engines
#
# The job, whatever the engine:
#   1. _PREPARE (SQL): the typed input `pe_raw` as the kernel's columns (`pe_input`);
#   2. `score_batches` (numpy, `waybill_signals`): per waybill, streamed over Arrow batches — on DuckDB
#      over the whole table, on Spark per partition (mapInArrow); the result is `pe_scored`;
#   3. _PAIRS, _TOTALS, _SENDERS, _COURIERS, _FLAGGED (SQL): exact integer aggregates per
#      (sender, courier), per sender, per courier, and the flagged waybills in a total order;
#   4. `_findings` (Python, on the driver): the statistics from those exact aggregates.

_PREPARE = """
CREATE OR REPLACE TEMP VIEW pe_input AS
SELECT CAST(waybill AS VARCHAR) AS waybill, CAST(courier AS VARCHAR) AS courier,
       CAST(sender AS VARCHAR) AS sender, CAST(weight_kg AS DOUBLE) AS weight,
       CAST(epoch(pickup_time) AS BIGINT) AS pickup_s, CAST(epoch(sign_time) AS BIGINT) AS sign_s,
       coalesce(CAST(origin_city AS VARCHAR), '') AS origin, coalesce(CAST(dest_city AS VARCHAR), '') AS dest,
       CAST(distance_km AS DOUBLE) AS distance, CAST(transit_scans AS DOUBLE) AS scans
FROM pe_raw
"""
_INPUT_SCHEMA = pa.schema(
    [
        ("waybill", pa.string()),
        ("courier", pa.string()),
        ("sender", pa.string()),
        ("weight", pa.float64()),
        ("pickup_s", pa.int64()),
        ("sign_s", pa.int64()),
        ("origin", pa.string()),
        ("dest", pa.string()),
        ("distance", pa.float64()),
        ("scans", pa.float64()),
    ]
)
# what `score_batches` adds to each row (NaN never leaves the kernel: unknown is NULL on both engines)
_SIGNAL_FIELDS = [
    ("w_sig", pa.float64()),
    ("s_sig", pa.float64()),
    ("t_sig", pa.float64()),
    ("score", pa.float64()),
    ("hours", pa.float64()),
    ("speed", pa.float64()),
    ("flagged", pa.bool_()),
]
# exact counts per (sender, courier): the only aggregate over every waybill (partial sums map-side)
_PAIRS = """
CREATE OR REPLACE TEMP TABLE pe_pairs AS
SELECT sender, courier, count(*) AS n, count(*) FILTER (WHERE flagged) AS k,
       count(*) FILTER (WHERE weight IS NULL) AS no_weight,
       count(*) FILTER (WHERE scans IS NULL) AS no_scans,
       count(*) FILTER (WHERE distance IS NULL) AS no_distance,
       count(*) FILTER (WHERE sign_s IS NULL) AS no_sign
FROM pe_scored
GROUP BY sender, courier
"""
_TOTALS = """
SELECT CAST(sum(n) AS BIGINT), CAST(sum(k) AS BIGINT), CAST(sum(no_weight) AS BIGINT),
       CAST(sum(no_scans) AS BIGINT), CAST(sum(no_distance) AS BIGINT), CAST(sum(no_sign) AS BIGINT)
FROM pe_pairs
"""
_SENDERS = """
SELECT sender, CAST(sum(n) AS BIGINT) AS n, CAST(sum(k) AS BIGINT) AS k
FROM pe_pairs
GROUP BY sender
HAVING sum(k) >= {min_count}
ORDER BY sender
"""
# Per courier, the flagged waybills its senders explain: Σ over its senders s of n_sc × rate of s on
# other couriers' waybills, shrunk towards p0 with `prior` pseudo-waybills. Each term is IEEE double
# arithmetic the two engines do alike; it is floored to a multiple of 2⁻³⁰ and summed as an integer,
# so the sum is exact in any order (a double sum is not: partitions add up in any order).
_EXPECTED_SCALE = 2**30
_COURIERS = """
WITH s AS (SELECT sender, sum(n) AS n_s, sum(k) AS k_s FROM pe_pairs GROUP BY sender)
SELECT p.courier, CAST(sum(p.n) AS BIGINT) AS n, CAST(sum(p.k) AS BIGINT) AS k,
       CAST(count(*) FILTER (WHERE p.k > 0) AS BIGINT) AS senders,
       CAST(sum(CAST(floor(p.n * ((s.k_s - p.k + CAST('{prior_p0}' AS DOUBLE))
                                  / (s.n_s - p.n + CAST('{prior}' AS DOUBLE))) * {scale}) AS BIGINT))
            AS BIGINT) AS expected_q
FROM pe_pairs AS p
JOIN s ON s.sender = p.sender
GROUP BY p.courier
HAVING sum(p.k) >= {min_count}
ORDER BY p.courier
"""
_FLAGGED = """
SELECT waybill, courier, sender, weight, pickup_s, sign_s, origin, dest, distance, scans,
       w_sig, s_sig, t_sig, score, hours, speed
FROM pe_scored
WHERE flagged
"""  # put in (pickup time, waybill) order by `_flagged_rows`, on the driver (a sort without a shuffle)
_PRIOR = 10.0


@dataclass
class Result:
    findings: list[Finding]
    rows: int
    missing: dict[str, int] = field(default_factory=dict)


def _f64(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(col.cast(pa.float64()), math.nan).to_numpy(zero_copy_only=False), float)


def _waybills_of(t: pa.RecordBatch | pa.Table) -> Waybills:
    """The kernel's view of rows of `pe_input` (text columns as object arrays)."""

    def text(name: str) -> np.ndarray:
        return np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=object)

    return Waybills(
        waybill=text("waybill"),
        courier=text("courier"),
        sender=text("sender"),
        weight=_f64(t.column("weight")),
        pickup=np.asarray(t.column("pickup_s").to_numpy(zero_copy_only=False), dtype=np.int64),
        sign=np.asarray(pc.fill_null(t.column("sign_s"), NO_TIME).to_numpy(zero_copy_only=False), np.int64),
        origin=text("origin"),
        dest=text("dest"),
        distance=_f64(t.column("distance")),
        scans=_f64(t.column("scans")),
    )


def _nullable(x: np.ndarray) -> pa.Array:
    return pa.array(x, pa.float64(), mask=np.isnan(x))


def score_batch(batch: pa.RecordBatch, p: Params) -> pa.RecordBatch:
    """One Arrow batch of `pe_input` with the signals, score and flag of each waybill appended."""
    w = _waybills_of(batch)
    sig = waybill_signals(w, p)
    extra = [
        pa.array(sig["weight"], pa.float64()),
        pa.array(sig["scans"], pa.float64()),
        pa.array(sig["transit"], pa.float64()),
        pa.array(sig["score"], pa.float64()),
        _nullable(sig["hours"]),
        _nullable(sig["speed"]),
        pa.array(sig["score"] >= p.min_score, pa.bool_()),
    ]
    return pa.RecordBatch.from_arrays(
        [*batch.columns, *extra], names=[*batch.schema.names, *(n for n, _ in _SIGNAL_FIELDS)]
    )


def score_batches(batches: Iterable[pa.RecordBatch], *, p: Params) -> Iterator[pa.RecordBatch]:
    """`score_batch` over a stream: Spark's `mapInArrow` function, and DuckDB's over the whole input."""
    for batch in batches:
        if batch.num_rows:
            yield score_batch(batch, p)


def _aggregate(sql: Sql, p: Params) -> tuple[int, int, dict[str, int], list[tuple], list[tuple]]:
    """(rows, flagged, missing values, sender candidates, courier candidates) from `pe_scored`."""
    sql.run(_PAIRS)
    n, k, *missing = (int(v or 0) for v in sql.rows(_TOTALS)[0])
    miss = dict(zip(("weight_kg", "transit_scans", "distance_km", "sign_time"), missing, strict=True))
    if n == 0:
        return 0, 0, miss, [], []
    p0 = _p0(n, k)
    senders = sql.rows(_SENDERS.format(min_count=int(p.min_count)))
    couriers = sql.rows(
        _COURIERS.format(
            min_count=int(p.min_count), prior_p0=repr(_PRIOR * p0), prior=repr(_PRIOR), scale=_EXPECTED_SCALE
        )
    )
    return n, k, miss, senders, couriers


def _flagged_rows(sql: Sql) -> list[tuple]:
    """The flagged waybills by (pickup time, waybill): a total order (waybills are unique), and Python's
    order of text is DuckDB's and Spark's (by code point, i.e. by UTF-8 bytes)."""
    return sorted(sql.rows(_FLAGGED), key=lambda r: (r[4], r[0]))


def _p0(n: int, k: int) -> float:
    return max(k / n, 1e-6)


def _detect(sql: Sql, p: Params, progress: Callable[[int, int], None] | None) -> Result:
    """Steps 3 and 4 (see above) over `pe_scored`, registered in `sql`."""
    n, k, missing, senders, couriers = _aggregate(sql, p)  # pe_pairs goes with the connection / session
    flagged = _flagged_rows(sql) if n else []
    if n == 0:
        return Result([], 0, missing)
    return Result(_findings(flagged, n, k, senders, couriers, p, progress), n, missing)


def _finish_duckdb(
    con: Any, batches: Iterable[pa.RecordBatch], p: Params, progress: Callable[[int, int], None] | None
) -> Result:
    from fanchaoxin.detect.sql import DuckSql  # noqa: PLC0415

    fields = [*_INPUT_SCHEMA, *(pa.field(n, t) for n, t in _SIGNAL_FIELDS)]
    scored = pa.Table.from_batches(list(score_batches(batches, p=p)), schema=pa.schema(fields))
    sql = DuckSql(con)
    sql.table("pe_scored", con.from_arrow(scored))
    return _detect(sql, p, progress)


def detect_empty_parcels(
    w: Waybills, p: Params | None = None, progress: Callable[[int, int], None] | None = None
) -> list[Finding]:
    """Score every waybill, then senders and couriers by concentration; see the module docstring."""
    import duckdb  # noqa: PLC0415

    p = p or Params()
    if len(w.waybill) == 0:
        return []
    sign = np.asarray(w.sign, np.int64)
    table = pa.table(
        [
            pa.array(w.waybill.astype(str), pa.string()),
            pa.array(w.courier.astype(str), pa.string()),
            pa.array(w.sender.astype(str), pa.string()),
            _nullable(np.asarray(w.weight, float)),
            pa.array(np.asarray(w.pickup, np.int64)),
            pa.array(sign, pa.int64(), mask=sign == NO_TIME),
            pa.array(w.origin.astype(str), pa.string()),
            pa.array(w.dest.astype(str), pa.string()),
            _nullable(np.asarray(w.distance, float)),
            _nullable(np.asarray(w.scans, float)),
        ],
        schema=_INPUT_SCHEMA,
    )
    with duckdb.connect() as con:
        return _finish_duckdb(con, table.to_batches(), p, progress).findings


def read_waybills(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
    con: Any = None,
) -> Any:
    """The waybills file read strictly (fanchaoxin.detect.io) as a DuckDB relation; `columns` maps
    logical names to the file's.

    waybill, courier, sender and pickup_time must be filled; sign_time may be empty (not yet signed);
    weight_kg, distance_km and transit_scans may be empty (unknown); cities are optional text. Times
    become naive local times in `timezone` (epoch seconds and times with an offset are converted).
    """
    from fanchaoxin.detect.io import read_table  # noqa: PLC0415

    return read_table(
        path,
        list(COLUMNS),
        types=TYPES,
        nullable=list(NULLABLE),
        unique=["waybill"],
        columns=columns,
        timezone=timezone,
        con=con,
    )


def _prepared(con: Any, rel: Any) -> Any:
    from fanchaoxin.detect.sql import DuckSql  # noqa: PLC0415

    sql = DuckSql(con)
    sql.table("pe_raw", rel)
    sql.run(_PREPARE)
    return con.sql("SELECT * FROM pe_input")


def load_waybills(
    path: str | Path, *, columns: Mapping[str, str] | None = None, timezone: str = "Asia/Shanghai"
) -> Waybills:
    """Read waybills strictly into numpy (see `read_waybills`), in the file's order."""
    from fanchaoxin.detect.io import connect  # noqa: PLC0415

    con = connect()
    rel = _prepared(con, read_waybills(path, columns=columns, timezone=timezone, con=con))
    return _waybills_of(rel.to_arrow_table())


def detect_file(
    path: str | Path,
    p: Params | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
    progress: Callable[[int, int], None] | None = None,
    batch_rows: int = 1_000_000,
) -> Result:
    """The job on DuckDB: read `path` strictly, score it batch by batch, aggregate, find."""
    from fanchaoxin.detect.io import connect  # noqa: PLC0415

    p = p or Params()
    con = connect()
    rel = _prepared(con, read_waybills(path, columns=columns, timezone=timezone, con=con))
    reader = rel.to_arrow_reader(batch_rows)
    return _finish_duckdb(con, reader, p, progress)


def detect_spark(
    df: Any, p: Params | None = None, *, progress: Callable[[int, int], None] | None = None
) -> Result:
    """The job on Spark: `df` from `engines.spark_read_table` (COLUMNS, TYPES, ``epoch_time=False``).

    The kernel runs per partition of the input as it lies (mapInArrow, no shuffle); the aggregates
    shuffle partial counts by (sender, courier), then by sender and by courier; the driver gets the
    candidate senders and couriers (one row each) and the flagged waybills (the findings).
    """
    from pyspark.sql.types import (  # noqa: PLC0415
        BooleanType,
        DoubleType,
        StructField,
        StructType,
    )

    from fanchaoxin.detect.sql import SparkSql  # noqa: PLC0415

    p = p or Params()
    sql = SparkSql(df.sparkSession)
    try:
        sql.table("pe_raw", df)
        sql.run(_PREPARE)
        prepared = sql.spark.table("pe_input")
        kinds = {pa.float64(): DoubleType(), pa.bool_(): BooleanType()}
        schema = StructType(
            [*prepared.schema.fields, *(StructField(n, kinds[t], True) for n, t in _SIGNAL_FIELDS)]
        )
        scored = prepared.mapInArrow(functools.partial(score_batches, p=p), schema)
        sql.table("pe_scored", scored)
        return _detect(sql, p, progress)
    finally:
        sql.close()
        for view in ("pe_scored", "pe_input", "pe_raw"):
            sql.spark.catalog.dropTempView(view)


# ------------------------------------------------------------------------------------ on the driver


def _fmt(sec: int) -> str:
    return str(np.datetime64(int(sec), "s")).replace("T", " ")


def _num(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass
class _Flagged:
    """The flagged waybills, ordered by (pickup time, waybill)."""

    waybill: np.ndarray
    courier: np.ndarray
    sender: np.ndarray
    pickup: np.ndarray
    score: np.ndarray


def _findings(
    rows: list[tuple],
    n: int,
    k: int,
    senders: list[tuple],
    couriers: list[tuple],
    p: Params,
    progress: Callable[[int, int], None] | None,
) -> list[Finding]:
    findings: list[Finding] = []
    for j, r in enumerate(rows):
        if progress is not None and j % 5000 == 0:
            progress(j, len(rows))
        findings.append(_waybill_finding(r))
    fl = _Flagged(
        waybill=np.array([r[0] for r in rows], dtype=object),
        courier=np.array([r[1] for r in rows], dtype=object),
        sender=np.array([r[2] for r in rows], dtype=object),
        pickup=np.array([r[4] for r in rows], dtype=np.int64),
        score=np.array([r[13] for r in rows], dtype=float),
    )
    p0 = _p0(n, k)
    findings += _concentration(senders, fl, p0, p, level="sender", kind="platform_account")
    findings += _concentration(couriers, fl, p0, p, level="courier", kind=p.courier_kind)
    return findings


def _waybill_finding(r: tuple) -> Finding:
    wb, courier, sender, weight, pickup, sign, origin, dest, dist, scans, ws, ss, ts, score, hours, speed = r
    weight, dist, scans = _nan(weight), _nan(dist), _nan(scans)
    reasons = []
    if ws > 0:
        reasons.append(f"weight {weight:g} kg")
    if ss > 0:
        reasons.append(f"{int(scans)} transit scans over {dist:g} km")
    if ts > 0:
        reasons.append(
            "signed before pick-up" if hours < 0 else f"signed {hours:.1f} h after pick-up for {dist:g} km"
        )
    missing = [
        name
        for name, v in (("weight_kg", weight), ("transit_scans", scans), ("distance_km", dist))
        if not math.isfinite(v)
    ]
    if sign is None:
        missing.append("sign_time")
    ev: dict[str, Any] = {
        "level": "waybill",
        "waybill": str(wb),
        "courier": str(courier),
        "sender": str(sender),
        "weight_kg": _num(weight),
        "transit_scans": _num(scans, 0),
        "distance_km": _num(dist, 1),
        "pickup_time": _fmt(pickup),
        "sign_time": _fmt(sign) if sign is not None else None,
        "hours": _num(hours, 2),
        "speed_kmh": _num(speed, 1),
        "origin_city": str(origin),
        "dest_city": str(dest),
        "signals": {k: round(float(v), 3) for k, v in (("weight", ws), ("scans", ss), ("transit", ts))},
    }
    if missing:
        ev["missing"] = missing
    return Finding(
        detector="empty-parcel",
        behaviour="empty_parcel",
        subject_kind="platform_account",
        subject_ids=[str(sender)],
        score=round(float(score), 4),
        summary=f"waybill {wb} by {courier} looks empty: {'; '.join(reasons)}",
        evidence=ev,
    )


def _concentration(
    cand: list[tuple], fl: _Flagged, p0: float, p: Params, *, level: str, kind: str
) -> list[Finding]:
    """Senders (rows: key, n, k) or couriers (key, n, k, senders, expected × 2³⁰), sorted by key, with
    ≥ min_count flagged waybills: the tests of the module docstring, and the findings."""
    # scipy.stats takes most of a second to import: `fcx` loads it when parcels are scored, not at start
    from scipy.stats import binom, poisson  # noqa: PLC0415

    if not cand:
        return []
    labels = [str(r[0]) for r in cand]
    total = np.array([int(r[1]) for r in cand], dtype=np.int64)
    hits = np.array([int(r[2]) for r in cand], dtype=np.int64)
    if level == "sender":
        pv = binom.sf(hits - 1, total, p0)
        expected = total * p0
        basis = ["binomial"] * len(cand)
    else:
        n_senders = np.array([int(r[3]) for r in cand], dtype=np.int64)
        expected = np.array([int(r[4]) for r in cand], dtype=float) / _EXPECTED_SCALE
        pv_cond = poisson.sf(hits - 1, expected)
        pv_bin = binom.sf(hits - 1, total, p0)
        # empty parcels of several senders converging on one courier is collusion even when one of
        # those senders ships nothing but empty parcels (and so "explains" the courier)
        multi = (n_senders >= p.min_senders) & (pv_bin <= p.alpha)
        use_cond = pv_cond <= p.alpha
        pv = np.where(use_cond, pv_cond, np.where(multi, pv_bin, 1.0))
        expected = np.where(use_cond, expected, total * p0)
        basis = [
            "given its senders" if a else f"{int(m)} senders"
            for a, m in zip(use_cond, n_senders, strict=True)
        ]
    keys = fl.sender if level == "sender" else fl.courier
    other = fl.courier if level == "sender" else fl.sender
    rows_of: dict[str, np.ndarray] = {}
    if len(keys):
        ukeys, inv = np.unique(keys.astype(str), return_inverse=True)
        order = np.argsort(inv, kind="stable")  # each key's rows keep the (pickup, waybill) order
        bounds = np.searchsorted(inv[order], np.arange(len(ukeys) + 1))
        wanted = set(labels)
        rows_of = {str(u): order[bounds[j] : bounds[j + 1]] for j, u in enumerate(ukeys) if str(u) in wanted}
    out = []
    for c, (label, pval, exp_c, why) in enumerate(zip(labels, pv, expected, basis, strict=True)):
        if pval > p.alpha:
            continue
        rows = rows_of[label]
        score = min(300.0, -math.log10(max(pval, 1e-300)))
        others, counts = np.unique(other[rows].astype(str), return_counts=True)
        top = np.argsort(-counts, kind="stable")[:10]
        share = hits[c] / total[c]
        who = "sender" if level == "sender" else "courier"
        out.append(
            Finding(
                detector="empty-parcel",
                behaviour="empty_parcel",
                subject_kind=kind,
                subject_ids=[label],
                score=round(score, 3),
                summary=(
                    f"{who} {label}: {hits[c]} of {total[c]} waybills look empty ({share:.0%}; "
                    f"{exp_c:.1f} expected{' from its senders' if why == 'given its senders' else ''}; "
                    f"P = {pval:.2g})"
                ),
                evidence={
                    "level": level,
                    "waybills_total": int(total[c]),
                    "waybills_flagged": int(hits[c]),
                    "share": round(float(share), 4),
                    "baseline_share": round(p0, 5),
                    "expected_flagged": round(float(exp_c), 3),
                    "test": why,
                    "p_value": float(pval),
                    "mean_waybill_score": round(float(fl.score[rows].mean()), 4),
                    ("couriers" if level == "sender" else "senders"): {
                        str(others[j]): int(counts[j]) for j in top
                    },
                    "example_waybills": [str(x) for x in fl.waybill[rows[:20]]],
                    "first_seen": _fmt(fl.pickup[rows[0]]),
                    "last_seen": _fmt(fl.pickup[rows[-1]]),
                },
            )
        )
    out.sort(key=lambda f: -f.score)
    return out
