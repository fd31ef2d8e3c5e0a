"""Getting negative reviews removed (删除不利评价, ``review_deletion``) from review and after-sales logs.

A merchant that cannot stand its bad reviews gets them removed: it calls, refunds or pays (a 红包
"compensation") the reviewer until the review is deleted, or hires a 删差评 service that does the same
for many merchants. The platform's own logs record the outcome: who deleted each review and when, and
every after-sales event between a merchant and a user. Three rules run over those logs as SQL written
once (DuckDB's dialect, run through fanchaoxin.detect.sql): on DuckDB on one machine
(`detect_review_deletion`; memory stays flat: only negative reviews and the events that touch them are
materialised) or on Apache Spark on a cluster (`detect_review_deletion_spark`, ``--engine spark``), with
byte-identical findings. The joins and aggregations run on the engine; the statistics (the
beta-binomial fit, the binomial tests, Benjamini–Hochberg) run in numpy on the driver over one row per
merchant and one per account — the same code for both engines.

Inputs (``io.read_table``; columns may be mapped, times may carry an offset or be epoch seconds):

- reviews: ``review_id, merchant, author, rating, created_at, deleted_at, deleted_by`` (``deleted_*``
  empty while the review is online). A review is *negative* when ``rating ≤ negative_max_rating`` (2).
  ``deleted_by`` equal to one of ``author_values`` (``author``) is a deletion by the reviewer; any
  other value (``platform``, ``system`` …) is moderation: those reviews leave every rate below, since
  the merchant could not have made the reviewer delete them.
- after-sales events: ``merchant, user, kind, event_time`` and, when present, ``operator`` (the account
  that acted for the merchant), ``amount``, ``event_id``. ``contact_kinds`` (message, call, refund,
  compensation) reach a customer; ``payment_kinds`` (payment) pay an account that is not a customer.
- merchants (optional): ``merchant, category``. Without it all merchants form one category.

A *contact* of a negative review is an event of a contact kind from its merchant to its author, at or
after the review and within ``horizon_days`` (14) of it, and not after the review's deletion. A contacted
review *converts* when its author deletes it within ``window_hours`` (72) of the last such contact.

Rules:

``contact_then_delete`` (a) — per merchant, of its contacted negative reviews, the number that
    converted (count and share) against its category's conversion.
``abnormal_rate`` (b) — per merchant, of its negative reviews with no logged contact, the number its
    authors deleted, against its category's rate (deletions bought off the log — a phone call, a
    WeChat transfer — look like this). Deletions after a logged contact are left to (a): a merchant
    that honestly follows up every complaint has more deletions, but not more per contact.
    Both tests: merchants differ honestly (some follow up every complaint, some none), so a plain
    binomial against the category rate would flag every merchant that is merely unlike the average.
    Merchants' rates are modelled as a beta-binomial: a mean per category (pooled over its merchants;
    a category with fewer than ``min_category_merchants`` (3) tested merchants takes the mean of all)
    and one spread κ shared by all categories (method of moments), over the merchants with at least
    ``min_negatives`` (10) uncontacted or ``min_contacted`` (10) contacted negative reviews. Cheats
    would widen the very spread they are tested against, so the fit starts from the merchants a plain
    binomial does not find extreme and refits on every merchant the current fit does not find extreme
    (P ≥ 0.001) until that set is stable. P = P(X ≥ k) under the fitted beta-binomial.
    Multiple testing: Benjamini–Hochberg over every merchant tested, separately for (a) and (b), at
    false-discovery rate ``fdr`` (0.01), so that at most 1 % of the merchants each rule reports are
    expected to be honest ones (2 % over the two rules). A merchant also needs ``min_deleted`` (5)
    such deletions and a rate at least ``min_ratio`` (1.5) times its category's, so that a giant
    merchant is not reported for an effect too small to matter.
``deletion_service`` (c) — accounts linked to deletions at many unrelated merchants, two ways:
    *touches*: the account is the ``operator`` of contacts to negative reviewers; a touch succeeds when
    the review is deleted by its author within the window after the account's last contact. Expected
    successes: each touched review's category conversion (from (a)).
    *payments*: merchants pay the account (a payment kind, the account as ``user``); a payment succeeds
    when a negative review of that merchant is deleted by its author within the window after it. The
    chance of that is what the merchant's own deletions give: 1 − exp(−d·W/T) for d author deletions of
    negative reviews over the log's span T.
    For each channel, k successes out of n against the mean p̄ of those chances: P = binomial tail
    P(X ≥ k | n, p̄), which bounds the tail of the true sum of unequal Bernoulli chances (Hoeffding
    1956), with Benjamini–Hochberg over every account that has touches (or payments). An account is
    reported when a channel passes ``fdr``, its success share is ``min_ratio`` × p̄ or more, and
    successes happened at ``min_merchants`` (3) or more merchants — the customer-service agent of one
    merchant, however busy, never qualifies.
    ``service_client``: every merchant with a deletion linked to a reported service account (a
    successful touch or payment) is reported too, as a merchant that bought the deletion.

Findings (``subject_kind="platform_account"``): one per merchant (``evidence.level = "merchant"``;
rules fired, negative reviews, deletions, rate against the category, contacts and conversions, the
service accounts involved, and up to ``max_examples`` deleted reviews with the events that preceded
them) and one per service account (``level = "service"``: merchants served, touches, payments,
conversions against expectation, deleted reviews). Score: −log₁₀ of the smallest BH-adjusted P of
the rules that fired (capped at 300); a service client scores as the service it used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import InputError, connect, read_table
from fanchaoxin.detect.sql import DuckSql, Sql

__all__ = [
    "DETECTOR",
    "EVENT_COLUMNS",
    "MERCHANT_COLUMNS",
    "REVIEW_COLUMNS",
    "Params",
    "benjamini_hochberg",
    "beta_binomial_fit",
    "detect_review_deletion",
    "detect_review_deletion_spark",
]

DETECTOR = "review-deletion"
REVIEW_COLUMNS = ("review_id", "merchant", "author", "rating", "created_at", "deleted_at", "deleted_by")
EVENT_COLUMNS = ("merchant", "user", "kind", "event_time")
EVENT_OPTIONAL = ("operator", "amount", "event_id")
MERCHANT_COLUMNS = ("merchant", "category")
ALL_CATEGORIES = "(all)"
_CAP = 300.0
_TRIM_P = 1e-3  # merchants this extreme under the current fit are left out of the next one
_TRIM_ROUNDS = 20


@dataclass(frozen=True)
class Params:
    negative_max_rating: float = 2
    window_hours: float = 72.0
    horizon_days: float = 14.0
    contact_kinds: tuple[str, ...] = ("message", "call", "refund", "compensation")
    payment_kinds: tuple[str, ...] = ("payment",)
    author_values: tuple[str, ...] = ("author",)
    min_negatives: int = 10
    min_contacted: int = 10
    min_deleted: int = 5
    min_ratio: float = 1.5
    fdr: float = 0.01
    min_merchants: int = 3
    min_category_merchants: int = 3
    max_examples: int = 50

    def check(self) -> None:
        if not self.window_hours > 0 or not self.horizon_days > 0:
            raise ValueError("the window and the horizon must be positive")
        if not 0 < self.fdr < 1:
            raise ValueError("fdr must be in (0, 1)")
        if not self.contact_kinds:
            raise ValueError("at least one contact kind is needed")


ProgressFn = Callable[[str], None]


# ------------------------------------------------------------------------------------------ statistics


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted P-values (q-values) of independent or positively dependent tests."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def beta_binomial_fit(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(mean, κ) of the beta distribution of merchants' rates, by the method of moments.

    The spread of the observed rates k/n beyond what binomial sampling explains is the merchants' own
    spread; κ = a + b (large κ: merchants alike, the test tends to a binomial).
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    mu = float(k.sum() / n.sum()) if n.sum() else 0.0
    mu = min(max(mu, 1e-4), 1 - 1e-4)
    if len(n) < 2:
        return mu, 1e5
    rates = k / n
    spread = float(rates.var(ddof=1)) - float(np.mean(mu * (1 - mu) / n))
    if spread <= 0:
        return mu, 1e5
    kappa = mu * (1 - mu) / spread - 1
    return mu, float(min(max(kappa, 1.0), 1e5))


def _tail(k: np.ndarray, n: np.ndarray, mu: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """P(X ≥ k) for X ~ BetaBinomial(n, μκ, (1-μ)κ)."""
    return np.clip(stats.betabinom.sf(k - 1, n, mu * kappa, (1 - mu) * kappa), 0.0, 1.0)


def _category_test(
    k: np.ndarray, n: np.ndarray, category: np.ndarray, eligible: np.ndarray, p: Params
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per merchant: (P-value, category mean) — NaN P where not eligible — and the fit.

    Each category has its own mean rate; how much merchants differ around it (κ) is shared by all
    categories, so that a category of twenty merchants, a few of them cheats, still gets a stable
    spread. Cheats widen the spread they are tested against: the fit starts from the merchants that a
    plain binomial at their category's pooled rate does not find extreme (too narrow: honest merchants
    differ), then refits on every merchant the current fit does not find extreme (one-sided
    P ≥ _TRIM_P) until that set is stable — honest merchants come back in, cheats stay out.
    """
    pvals = np.full(len(k), np.nan)
    means = np.full(len(k), np.nan)
    if not eligible.any():
        return pvals, means, {}
    kk, nn, cc = k[eligible], n[eligible], category[eligible]
    cats = np.unique(category)
    small = {c for c in cats if (cc == c).sum() < p.min_category_merchants}
    group = np.array([ALL_CATEGORIES if c in small else c for c in cc], dtype=object)

    def means_of(keep: np.ndarray) -> np.ndarray:
        mu = np.empty(len(kk))
        pooled_all = kk[keep].sum() / max(nn[keep].sum(), 1)
        for g in np.unique(group):
            in_g = group == g
            sel = in_g & keep
            mu[in_g] = kk[sel].sum() / nn[sel].sum() if sel.any() and nn[sel].sum() else pooled_all
        if small:  # small categories use the rate of all merchants
            mu[group == ALL_CATEGORIES] = pooled_all
        return np.clip(mu, 1e-4, 1 - 1e-4)

    def kappa_of(keep: np.ndarray, mu: np.ndarray) -> float:
        # Var(k/n) = μ(1-μ)/n · (1 + (n-1)ρ), ρ = 1/(κ+1): each merchant's squared deviation gives ρ.
        z = (kk / nn - mu) ** 2 / (mu * (1 - mu))
        w = nn[keep] - 1
        if w.sum() <= 0:
            return 1e5
        rho = float(np.sum(nn[keep] * z[keep] - 1) / w.sum())
        rho = min(max(rho, 1e-5), 0.5)
        return 1 / rho - 1

    mu = means_of(np.ones(len(kk), dtype=bool))
    keep = stats.binom.sf(kk - 1, nn, mu) >= _TRIM_P
    if keep.sum() < 2:
        keep = np.ones(len(kk), dtype=bool)
    for _ in range(_TRIM_ROUNDS):
        mu = means_of(keep)
        kappa = kappa_of(keep, mu)
        new = _tail(kk, nn, mu, kappa) >= _TRIM_P
        if new.sum() < 2 or (new == keep).all():
            break
        keep = new
    pv = _tail(kk, nn, mu, kappa)
    pvals[eligible] = pv
    fits: dict[str, Any] = {"kappa": round(kappa, 3), "merchants_fitted": int(keep.sum()), "categories": {}}
    for c in cats:
        in_c = category == c
        sel = cc == c
        rate = float(mu[sel][0]) if sel.any() else float(means_of(keep).mean())
        if c in small or not sel.any():
            rate = float(kk[keep].sum() / max(nn[keep].sum(), 1))
        means[in_c] = rate
        fits["categories"][str(c)] = {
            "rate": round(rate, 6),
            "merchants": int(sel.sum()),
            "fitted_on": "all merchants" if (c in small or not sel.any()) else "category",
        }
    return pvals, means, fits


def _score(q: float) -> float:
    return round(min(_CAP, -math.log10(max(q, 1e-300))), 3)


# ------------------------------------------------------------------------------------------------ input


Reader = Callable[..., Any]


def _read(
    reader: Reader,
    source: str,
    required: Sequence[str],
    optional: Sequence[str],
    *,
    types: Mapping[str, str],
    nullable: Sequence[str],
    columns: Mapping[str, str],
    allow_empty: bool = False,
) -> Any:
    """`reader` (io.read_table or engines.spark_read_table) with the optional columns the file has (a
    missing optional column is not an error)."""
    wanted = list(optional)
    while True:
        cols = [*required, *wanted]
        try:
            return reader(
                source,
                cols,
                types={c: t for c, t in types.items() if c in cols},
                nullable=[c for c in nullable if c in cols],
                columns={c: v for c, v in columns.items() if c in cols},
                allow_empty=allow_empty,
            )
        except InputError as exc:
            # only "the file has no such column" about an optional one is answered by leaving it out
            if exc.row is None and exc.column in wanted and exc.column not in columns:
                wanted.remove(exc.column)
                continue
            raise


def _load(
    sql: Sql,
    reader: Reader,
    reviews: str,
    events: str,
    merchants: str | None,
    columns: Mapping[str, Mapping[str, str]],
) -> set[str]:
    """Tables reviews_in, events_in (and merchants_in), each read and checked in full before any work;
    returns the optional event columns the file has. (A merchant given two categories is found by the
    job's first query.)"""
    rev = _read(
        reader,
        reviews,
        REVIEW_COLUMNS,
        (),
        types={
            "review_id": "VARCHAR",
            "merchant": "VARCHAR",
            "author": "VARCHAR",
            "rating": "DOUBLE",
            "created_at": "TIMESTAMP",
            "deleted_at": "TIMESTAMP",
            "deleted_by": "VARCHAR",
        },
        nullable=("deleted_at", "deleted_by"),
        columns=columns.get("reviews", {}),
    )
    ev = _read(
        reader,
        events,
        EVENT_COLUMNS,
        EVENT_OPTIONAL,
        types={
            "merchant": "VARCHAR",
            "user": "VARCHAR",
            "kind": "VARCHAR",
            "event_time": "TIMESTAMP",
            "operator": "VARCHAR",
            "amount": "DOUBLE",
            "event_id": "VARCHAR",
        },
        nullable=EVENT_OPTIONAL,
        columns=columns.get("after_sales", {}),
        allow_empty=True,  # a platform with no after-sales events still has deletion rates to test
    )
    mer = None
    if merchants is not None:
        mer = _read(
            reader,
            merchants,
            MERCHANT_COLUMNS,
            (),
            types={"merchant": "VARCHAR", "category": "VARCHAR"},
            nullable=(),
            columns=columns.get("merchants", {}),
        )
    sql.table("reviews_in", rev)
    sql.table("events_in", ev)
    present = {c for c in EVENT_OPTIONAL if c in ev.columns}
    if mer is not None:
        sql.table("merchants_in", mer)
    return present


def _small_table(sql: Sql, name: str, table: pa.Table) -> None:
    """A small table the driver computed (one row per merchant or account) as `name` in `sql`."""
    sql.small(name, table)


# ---------------------------------------------------------------------------------------------- detector


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _dsum(column: str) -> str:
    # A sum of doubles in parallel is in no fixed order, so it varies in the last bits from run to run
    # and between engines; a decimal sum is exact, and the DECIMAL itself reaches Python (float() of
    # it rounds correctly), so the same input gives the same findings on DuckDB and on Spark.
    return f"sum(CAST({column} AS DECIMAL(38, 12)))"


def _f12(values: np.ndarray) -> pa.Array:
    """Doubles rounded to 12 decimals: their cast to DECIMAL(38, 12) is then exact on both engines."""
    return pa.array([round(float(v), 12) for v in values], type=pa.float64())


def _ts(v: Any) -> str | None:
    return None if v is None else str(v)[:19]


def _iso(v: Any) -> str | None:
    """A merchant's first and last time, as ISO 8601 (``T`` between date and time) as it always was."""
    return None if v is None else v.isoformat()[:19]


def detect_review_deletion(
    reviews: str | Path,
    after_sales: str | Path,
    merchants: str | Path | None = None,
    *,
    params: Params | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    timezone: str = "Asia/Shanghai",
    progress: ProgressFn | None = None,
    stats_out: dict[str, Any] | None = None,
) -> list[Finding]:
    """Merchants and service accounts behind negative reviews' deletions; findings best first (DuckDB).

    `columns` maps a file ("reviews", "after_sales", "merchants") to its {detector column: file column};
    `stats_out`, if given, receives counts and the fitted category rates for the report.
    """
    p = params or Params()
    p.check()
    con = connect()
    try:

        def reader(source: str, cols: Sequence[str], **kw: Any) -> Any:
            return read_table(Path(source), cols, con=con, timezone=timezone, **kw)

        return _detect(
            DuckSql(con),
            reader,
            str(reviews),
            str(after_sales),
            str(merchants) if merchants is not None else None,
            columns or {},
            p,
            progress,
            stats_out,
        )
    finally:
        con.close()


def detect_review_deletion_spark(
    spark: Any,
    reviews: str,
    after_sales: str,
    merchants: str | None = None,
    *,
    params: Params | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    timezone: str = "Asia/Shanghai",
    progress: ProgressFn | None = None,
    stats_out: dict[str, Any] | None = None,
) -> list[Finding]:
    """`detect_review_deletion` on a Spark session: the same SQL (detect/sql.py), the same findings.

    The inputs are any path Spark reads or ``table:NAME`` (detect/engines.py), read and checked in
    full before any work. The joins and aggregations run on the cluster; the driver gets one row per
    merchant (and per service account) for the statistics.
    """
    from fanchaoxin.detect import engines  # noqa: PLC0415 - only a Spark job needs it
    from fanchaoxin.detect.sql import SparkSql  # noqa: PLC0415

    p = params or Params()
    p.check()

    def reader(source: str, cols: Sequence[str], **kw: Any) -> Any:
        return engines.spark_read_table(spark, source, cols, timezone=timezone, epoch_time=False, **kw)

    sql = SparkSql(spark)
    try:
        return _detect(sql, reader, reviews, after_sales, merchants, columns or {}, p, progress, stats_out)
    finally:
        sql.close()


def _detect(
    sql: Sql,
    reader: Reader,
    reviews: str,
    after_sales: str,
    merchants: str | None,
    columns: Mapping[str, Mapping[str, str]],
    p: Params,
    progress: ProgressFn | None,
    stats_out: dict[str, Any] | None,
) -> list[Finding]:
    """The job, on either engine: every join and aggregation is one SQL text run through `sql`."""
    step = progress or (lambda _s: None)
    step("reading")
    present = _load(sql, reader, reviews, after_sales, merchants, columns)
    w = p.window_hours * 3600.0
    horizon = p.horizon_days * 86400.0
    authors = _in(p.author_values)
    operator = "operator" if "operator" in present else "CAST(NULL AS VARCHAR)"
    amount = "amount" if "amount" in present else "CAST(NULL AS DOUBLE)"
    event_id = "event_id" if "event_id" in present else "CAST(NULL AS VARCHAR)"

    step("negative reviews")
    negative = f"rating <= {float(p.negative_max_rating)}"
    # one pass over the reviews for the counts and the span, with the check of the merchants' file
    dup_sql = "SELECT min(merchant) AS merchant FROM (SELECT merchant FROM merchants_in GROUP BY merchant "
    dup_sql += "HAVING min(category) <> max(category)) AS d"
    n_reviews, n_no_deleter, span_lo, span_hi, dup = sql.rows(f"""
        SELECT r.*, d.merchant FROM (
          SELECT count(*) AS n, count(*) FILTER (WHERE deleted_at IS NOT NULL AND deleted_by IS NULL) AS nd,
                 min(created_at) FILTER (WHERE {negative}) AS lo,
                 max(created_at) FILTER (WHERE {negative}) AS hi
          FROM reviews_in
        ) AS r CROSS JOIN ({dup_sql if merchants is not None else "SELECT NULL AS merchant"}) AS d
    """)[0]
    if dup is not None:
        raise InputError(
            f"{merchants}: merchant {dup!r} is given more than one category",
            path=merchants,
            column="category",
            value=dup,
        )
    span = max((span_hi - span_lo).total_seconds(), 86400.0) if span_lo is not None else 86400.0
    sql.run(f"""
        CREATE TEMP TABLE neg AS
        SELECT review_id, merchant, author, created_at, deleted_at,
               deleted_at IS NOT NULL AND coalesce(deleted_by IN {authors}, false) AS by_author,
               deleted_at IS NOT NULL AND NOT coalesce(deleted_by IN {authors}, false) AS by_other
        FROM reviews_in WHERE {negative}
    """)

    step("contacts")
    sql.run(f"""
        CREATE TEMP VIEW ev AS
        SELECT merchant, "user", kind, event_time, {operator} AS operator, {amount} AS amount,
               {event_id} AS event_id
        FROM events_in WHERE kind IN {_in(p.contact_kinds + p.payment_kinds)}
    """)
    sql.run(f"""
        CREATE TEMP TABLE touch AS
        SELECT n.review_id, n.merchant, e.event_time, e.kind, e.amount, e.operator, e.event_id
        FROM neg n JOIN ev e ON e.merchant = n.merchant AND e."user" = n.author
        WHERE NOT n.by_other AND e.kind IN {_in(p.contact_kinds)}
          AND e.event_time >= n.created_at
          AND epoch(e.event_time) - epoch(n.created_at) <= {horizon}
          AND (n.deleted_at IS NULL OR e.event_time <= n.deleted_at)
    """)
    sql.run(f"""
        CREATE TEMP TABLE contacted AS
        SELECT review_id, max(event_time) AS last_touch, count(*) AS events,
               {_dsum("amount")} AS amount, list_sort(list(DISTINCT kind)) AS kinds
        FROM touch GROUP BY review_id
    """)
    sql.run(f"""
        CREATE TEMP TABLE neg_c AS
        SELECT n.*, c.last_touch, c.events, c.amount, c.kinds,
               c.review_id IS NOT NULL AS contacted,
               c.review_id IS NOT NULL AND n.by_author
                 AND epoch(n.deleted_at) - epoch(c.last_touch) <= {w} AS converted
        FROM neg n LEFT JOIN contacted c ON c.review_id = n.review_id
    """)
    has_categories = merchants is not None
    cat_sql = "m.category" if has_categories else f"'{ALL_CATEGORIES}'"
    join_m = "LEFT JOIN merchants_in m ON m.merchant = x.merchant" if has_categories else ""
    per_rows = sql.rows(f"""
        SELECT x.*, {cat_sql} AS category FROM (
          SELECT merchant,
                 count(*) FILTER (WHERE NOT by_other) AS negatives,
                 count(*) FILTER (WHERE by_author) AS deleted,
                 count(*) FILTER (WHERE by_author AND NOT contacted) AS deleted_unexplained,
                 count(*) FILTER (WHERE by_other) AS removed_by_platform,
                 count(*) FILTER (WHERE contacted) AS contacted,
                 count(*) FILTER (WHERE converted) AS converted,
                 min(created_at) AS first_seen, max(coalesce(deleted_at, created_at)) AS last_seen
          FROM neg_c GROUP BY merchant
        ) x {join_m}
    """)
    # Results that come back to the driver are sorted there (Python orders text by code point, as both
    # engines do: UTF-8 byte order), by a total key: the same order on both engines, and no global
    # sort on Spark (a sampling job and a range shuffle) for a few rows per merchant or account.
    per_rows.sort(key=lambda r: r[0])
    per_cols = (
        "merchant",
        "negatives",
        "deleted",
        "deleted_unexplained",
        "removed_by_platform",
        "contacted",
        "converted",
        "first_seen",
        "last_seen",
        "category",
    )
    per = {c: [r[i] for r in per_rows] for i, c in enumerate(per_cols)}
    merchant = np.array(per["merchant"], dtype=object)
    category = np.array(per["category"], dtype=object)
    if has_categories:
        missing = [i for i, c in enumerate(category) if c is None]
        if missing:
            raise InputError(
                f"{merchants}: {len(missing)} merchant(s) of the reviews have no row, "
                f"e.g. {merchant[missing[0]]!r}"
                " (column merchant); every merchant with negative reviews needs its category",
                path=merchants,
                column="merchant",
                value=merchant[missing[0]],
            )
    category = category.astype(str)

    def counts(name: str) -> np.ndarray:
        return np.array(per[name], dtype=np.int64)

    negatives = counts("negatives")
    deleted = counts("deleted")
    unexplained = counts("deleted_unexplained")
    removed = counts("removed_by_platform")
    contacted = counts("contacted")
    converted = counts("converted")

    step("testing merchants")
    # (b) judges the deletions the after-sales log does not explain: a merchant that follows up every
    # complaint honestly has more deletions, and (a) already judges those per contact.
    uncontacted = negatives - contacted
    p_rate, mu_rate, fit_rate = _category_test(
        unexplained, uncontacted, category, uncontacted >= p.min_negatives, p
    )
    p_conv, mu_conv, fit_conv = _category_test(
        converted, contacted, category, contacted >= p.min_contacted, p
    )
    q_rate = np.full(len(merchant), np.nan)
    q_conv = np.full(len(merchant), np.nan)
    t_rate = ~np.isnan(p_rate)
    t_conv = ~np.isnan(p_conv)
    q_rate[t_rate] = benjamini_hochberg(p_rate[t_rate])
    q_conv[t_conv] = benjamini_hochberg(p_conv[t_conv])
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(uncontacted > 0, unexplained / np.maximum(uncontacted, 1), 0.0)
        overall = np.where(negatives > 0, deleted / np.maximum(negatives, 1), 0.0)
        conv = np.where(contacted > 0, converted / np.maximum(contacted, 1), 0.0)
    flag_rate = t_rate & (q_rate <= p.fdr) & (unexplained >= p.min_deleted) & (rate >= p.min_ratio * mu_rate)
    cat_overall = {
        c: deleted[category == c].sum() / max(negatives[category == c].sum(), 1) for c in np.unique(category)
    }
    flag_conv = t_conv & (q_conv <= p.fdr) & (converted >= p.min_deleted) & (conv >= p.min_ratio * mu_conv)

    step("service accounts")
    # per merchant, from the driver's statistics: its category's conversion (a touch's expected
    # success) and the chance that a payment is followed by one of its deletions by chance
    conv_mean = np.nan_to_num(mu_conv, nan=float(np.nanmean(mu_conv)) if t_conv.any() else 0.0)
    chance = 1 - np.exp(-deleted * w / span)
    _small_table(
        sql,
        "merchant_rates",
        pa.table(
            {
                "merchant": pa.array(merchant.tolist(), type=pa.string()),
                "conv_mean": _f12(conv_mean),
                "chance": _f12(chance),
            }
        ),
    )
    # a payment is numbered within its merchant (the join below and the deletions it counts are per
    # merchant, so no global order is needed); payments that tie on time and user count alike
    sql.run(f"""
        CREATE TEMP TABLE pay AS
        SELECT row_number() OVER (PARTITION BY e.merchant ORDER BY e.event_time, e."user") AS pid,
               e."user" AS account, e.merchant, e.event_time, e.amount, e.event_id,
               coalesce(r.chance, 0) AS chance
        FROM ev e LEFT JOIN merchant_rates r ON r.merchant = e.merchant
        WHERE e.kind IN {_in(p.payment_kinds)} AND e."user" <> e.merchant
    """)
    sql.run(f"""
        CREATE TEMP TABLE pay_link AS
        SELECT p.merchant, p.pid, count(n.review_id) AS deletions
        FROM pay p LEFT JOIN neg n ON n.merchant = p.merchant AND n.by_author
             AND n.deleted_at > p.event_time AND epoch(n.deleted_at) - epoch(p.event_time) <= {w}
        GROUP BY p.merchant, p.pid
    """)
    # per (account, merchant) first, then per account: the merchants an account reached are counted
    # without a DISTINCT (on Spark, one shuffle per level and no expansion of the rows)
    sql.run(f"""
        CREATE TEMP TABLE pay_am AS
        SELECT p.account, p.merchant, count(*) AS n, count(*) FILTER (WHERE l.deletions > 0) AS k,
               {_dsum("p.chance")} AS expected, {_dsum("p.amount")} AS amount,
               min(p.event_time) AS first_seen, max(p.event_time) AS last_seen
        FROM pay p JOIN pay_link l ON l.merchant = p.merchant AND l.pid = p.pid
        GROUP BY p.account, p.merchant
    """)
    # both channels in one query: per account, n tries, k followed by a deletion, the expected sum
    accounts = sql.rows(f"""
        WITH o AS (
          SELECT t.operator AS account, t.review_id, any_value(t.merchant) AS merchant,
                 max(t.event_time) AS last_touch
          FROM touch t WHERE t.operator IS NOT NULL AND t.operator <> t.merchant
          GROUP BY t.operator, t.review_id
        ), touch_am AS (
          SELECT o.account, o.merchant, count(*) AS n,
                 count(*) FILTER (
                   WHERE g.by_author AND epoch(g.deleted_at) - epoch(o.last_touch) <= {w}
                 ) AS k,
                 {_dsum("r.conv_mean")} AS expected,
                 min(o.last_touch) AS first_seen, max(coalesce(g.deleted_at, o.last_touch)) AS last_seen
          FROM o JOIN neg g ON g.review_id = o.review_id JOIN merchant_rates r ON r.merchant = o.merchant
          GROUP BY o.account, o.merchant
        )
        SELECT 'touches' AS channel, account, sum(n) AS n, sum(k) AS k, sum(expected) AS expected,
               count(*) AS merchants, count(*) FILTER (WHERE k > 0) AS merchants_linked,
               CAST(NULL AS DECIMAL(38, 12)) AS amount, min(first_seen) AS first_seen,
               max(last_seen) AS last_seen
        FROM touch_am GROUP BY account
        UNION ALL
        SELECT 'payments', account, sum(n), sum(k), sum(expected), count(*), count(*) FILTER (WHERE k > 0),
               sum(amount), min(first_seen), max(last_seen)
        FROM pay_am GROUP BY account
    """)
    ops = sorted((r[1:] for r in accounts if r[0] == "touches"), key=lambda r: r[0])
    pays = sorted((r[1:] for r in accounts if r[0] == "payments"), key=lambda r: r[0])

    services: dict[str, dict[str, Any]] = {}
    for channel, rows in (("touches", ops), ("payments", pays)):
        if not rows:
            continue
        n = np.array([r[1] for r in rows], dtype=np.int64)
        k = np.array([r[2] for r in rows], dtype=np.int64)
        pbar = np.clip(np.array([float(r[3] or 0.0) for r in rows]) / np.maximum(n, 1), 1e-9, 1 - 1e-9)
        pv = np.clip(stats.binom.sf(k - 1, n, pbar), 0.0, 1.0)
        qv = benjamini_hochberg(pv)
        for i, r in enumerate(rows):
            ok = qv[i] <= p.fdr and r[5] >= p.min_merchants
            ok = ok and k[i] / n[i] >= p.min_ratio * pbar[i]
            if not ok:
                continue
            entry = services.setdefault(str(r[0]), {"channels": {}})
            entry["channels"][channel] = {
                channel: int(n[i]),
                "followed_by_deletion": int(k[i]),
                "share": round(float(k[i] / n[i]), 4),
                "expected_share": round(float(pbar[i]), 4),
                "merchants": int(r[4]),
                "merchants_with_deletions": int(r[5]),
                "p_value": float(pv[i]),
                "q_value": float(qv[i]),
                **({"amount": round(float(r[6]), 2)} if channel == "payments" and r[6] is not None else {}),
                "first_seen": _ts(r[-2]),
                "last_seen": _ts(r[-1]),
            }

    findings: list[Finding] = []
    client_links: dict[str, dict[str, int]] = {}  # merchant → service account → linked deletions
    if services:
        _small_table(sql, "flagged", pa.table({"account": pa.array(sorted(services), type=pa.string())}))
        linked = sql.rows(f"""
            WITH o AS (
              SELECT t.operator AS account, t.review_id, any_value(t.merchant) AS merchant,
                     max(t.event_time) AS last_touch, list_sort(list(DISTINCT t.kind)) AS kinds,
                     {_dsum("t.amount")} AS amount
              FROM touch t SEMI JOIN flagged f ON f.account = t.operator
              GROUP BY t.operator, t.review_id
            )
            SELECT o.account, o.merchant, n.review_id, n.author, n.created_at, o.last_touch,
                   n.deleted_at, o.kinds, o.amount, 'touch' AS via
            FROM o JOIN neg n ON n.review_id = o.review_id
            WHERE n.by_author AND epoch(n.deleted_at) - epoch(o.last_touch) <= {w}
            UNION ALL
            SELECT p.account, p.merchant, n.review_id, n.author, n.created_at, p.event_time,
                   n.deleted_at, ['payment'], CAST(p.amount AS DECIMAL(38, 12)), 'payment'
            FROM pay p SEMI JOIN flagged f ON f.account = p.account
            JOIN neg n ON n.merchant = p.merchant AND n.by_author AND n.deleted_at > p.event_time
                 AND epoch(n.deleted_at) - epoch(p.event_time) <= {w}
        """)
        # a total order (stable sorts, the least significant key first): the first row of a (merchant,
        # review) is its example, so ties between two payments before the same deletion must not be
        # left to the threads — account, merchant, deletion, review, touch before payment, the latest
        # event first, the largest amount first (none last)
        linked.sort(key=lambda r: (r[8] is None, -(r[8] or 0)))
        linked.sort(key=lambda r: (r[9], r[5]), reverse=True)
        linked.sort(key=lambda r: (r[0], r[1], r[6], r[2]))
        paid = sql.rows(
            "SELECT p.account, p.merchant, p.n, p.amount FROM pay_am p "
            "SEMI JOIN flagged f ON f.account = p.account"
        )
        paid_by = {(a, m): (c, s) for a, m, c, s in paid}
        cat_of = dict(zip(merchant.tolist(), category.tolist(), strict=True))
        for account, entry in services.items():
            rows = [r for r in linked if r[0] == account]
            by_merchant: dict[str, set[str]] = {}
            for r in rows:
                by_merchant.setdefault(r[1], set()).add(r[2])
            served = sorted(set(by_merchant) | {m for a, m in paid_by if a == account})
            for m_id in served:
                client_links.setdefault(m_id, {})[account] = len(by_merchant.get(m_id, ()))
            q_best = min(c["q_value"] for c in entry["channels"].values())
            seen = [r for c in entry["channels"].values() for r in (c["first_seen"], c["last_seen"])]
            examples = []
            shown: set[tuple[str, str]] = set()
            for r in rows:
                if (r[1], r[2]) in shown:
                    continue
                shown.add((r[1], r[2]))
                if len(examples) < p.max_examples:
                    examples.append(
                        {
                            "merchant": r[1],
                            "review_id": r[2],
                            "author": r[3],
                            "created_at": _ts(r[4]),
                            "linked_event_at": _ts(r[5]),
                            "deleted_at": _ts(r[6]),
                            "via": r[9],
                            "kinds": sorted(set(r[7] or [])),
                            **({"amount": round(float(r[8]), 2)} if r[8] is not None else {}),
                        }
                    )
            merchants_served = [
                {
                    "merchant": m_id,
                    "category": cat_of.get(m_id, ALL_CATEGORIES),
                    "deletions": len(by_merchant.get(m_id, ())),
                    "payments": int(paid_by.get((account, m_id), (0, 0))[0]),
                    **(
                        {"paid": round(float(paid_by[(account, m_id)][1]), 2)}
                        if paid_by.get((account, m_id), (0, None))[1] is not None
                        else {}
                    ),
                }
                for m_id in served
            ]
            n_del = len(shown)
            findings.append(
                Finding(
                    detector=DETECTOR,
                    behaviour="review_deletion",
                    subject_kind="platform_account",
                    subject_ids=[account],
                    score=_score(q_best),
                    summary=(
                        f"删差评服务账号 / deletion-service account {account}: {n_del} negative review(s) "
                        f"deleted right after its contacts or payments at {len(by_merchant)} merchant(s) "
                        f"({len(served)} served)"
                    ),
                    evidence={
                        "level": "service",
                        "rule": "deletion_service",
                        "account": account,
                        "channels": entry["channels"],
                        "merchants_served": merchants_served,
                        "merchants_with_deletions": len(by_merchant),
                        "reviews_deleted": n_del,
                        "window_hours": p.window_hours,
                        "first_seen": min(s for s in seen if s),
                        "last_seen": max(s for s in seen if s),
                        "deleted_reviews": examples,
                    },
                )
            )
    service_score = {f.subject_ids[0]: f.score for f in findings}

    step("merchant evidence")
    idx = {m_id: i for i, m_id in enumerate(merchant.tolist())}
    # a client with no negative review in the logs stays in its service's finding only
    client_links = {m_id: links for m_id, links in client_links.items() if m_id in idx}
    flagged_m = sorted(
        {merchant[i] for i in np.flatnonzero(flag_rate | flag_conv)} | set(client_links), key=lambda m: idx[m]
    )
    examples_by: dict[str, list[dict[str, Any]]] = {}
    if flagged_m:
        _small_table(sql, "flagged_m", pa.table({"merchant": pa.array(flagged_m, type=pa.string())}))
        ex = sql.rows(f"""
            SELECT merchant, review_id, author, created_at, deleted_at, last_touch, events, amount, kinds,
                   converted, rk
            FROM (
              SELECT n.*, row_number() OVER (
                       PARTITION BY n.merchant ORDER BY n.converted DESC, n.deleted_at, n.review_id
                     ) AS rk
              FROM neg_c n SEMI JOIN flagged_m f ON f.merchant = n.merchant
              WHERE n.by_author
            ) AS x WHERE rk <= {int(p.max_examples)}
        """)
        ex.sort(key=lambda r: (r[0], r[10]))
        for r in ex:
            item: dict[str, Any] = {
                "review_id": r[1],
                "author": r[2],
                "created_at": _ts(r[3]),
                "deleted_at": _ts(r[4]),
            }
            if r[5] is not None:
                item |= {"last_contact_at": _ts(r[5]), "contacts": int(r[6]), "kinds": list(r[8] or [])}
                item["deleted_within_window"] = bool(r[9])
                if r[7] is not None:
                    item["amount"] = round(float(r[7]), 2)
            examples_by.setdefault(r[0], []).append(item)
    for m_id in flagged_m:
        i = idx[m_id]
        rules: list[str] = []
        qs: list[float] = []
        if flag_conv[i]:
            rules.append("contact_then_delete")
            qs.append(float(q_conv[i]))
        if flag_rate[i]:
            rules.append("abnormal_rate")
            qs.append(float(q_rate[i]))
        score = _score(min(qs)) if qs else 0.0
        links = client_links.get(m_id, {})
        if links:
            rules.append("service_client")
            score = max(score, max(service_score[a] for a in links))
        ev_m: dict[str, Any] = {
            "level": "merchant",
            "merchant": m_id,
            "category": category[i],
            "rules": rules,
            "negative_reviews": int(negatives[i]),
            "deleted_by_author": int(deleted[i]),
            "deletion_rate": round(float(overall[i]), 4),
            "category_deletion_rate": round(float(cat_overall[category[i]]), 4),
            "not_contacted": int(uncontacted[i]),
            "deleted_without_contact": int(unexplained[i]),
            "rate_without_contact": round(float(rate[i]), 4),
            "category_rate_without_contact": round(float(mu_rate[i]), 4)
            if not math.isnan(mu_rate[i])
            else None,
            "removed_by_platform": int(removed[i]),
            "contacted": int(contacted[i]),
            "deleted_after_contact": int(converted[i]),
            "conversion": round(float(conv[i]), 4),
            "category_conversion": round(float(mu_conv[i]), 4) if not math.isnan(mu_conv[i]) else None,
            "window_hours": p.window_hours,
            "first_seen": _iso(per["first_seen"][i]),
            "last_seen": _iso(per["last_seen"][i]),
        }
        if t_rate[i]:
            ev_m |= {"deletion_p_value": float(p_rate[i]), "deletion_q_value": float(q_rate[i])}
        if t_conv[i]:
            ev_m |= {"contact_p_value": float(p_conv[i]), "contact_q_value": float(q_conv[i])}
        if links:
            ev_m["service_accounts"] = [{"account": a, "deletions": c} for a, c in sorted(links.items())]
        ev_m["deleted_reviews"] = examples_by.get(m_id, [])
        parts = []
        if "contact_then_delete" in rules:
            parts.append(
                f"{converted[i]} of {contacted[i]} contacted negative reviewers deleted within "
                f"{p.window_hours:g} h ({conv[i]:.0%}, category {mu_conv[i]:.0%})"
            )
        if "abnormal_rate" in rules:
            parts.append(
                f"{unexplained[i]} of {uncontacted[i]} negative reviews with no logged contact deleted by "
                f"their authors ({rate[i]:.0%}, category {mu_rate[i]:.0%})"
            )
        if links:
            parts.append(f"deletions linked to deletion-service account(s) {', '.join(sorted(links))}")
        findings.append(
            Finding(
                detector=DETECTOR,
                behaviour="review_deletion",
                subject_kind="platform_account",
                subject_ids=[m_id],
                score=score,
                summary=f"删除差评的商家 / merchant {m_id} ({category[i]}): " + "; ".join(parts),
                evidence=ev_m,
            )
        )
    findings.sort(key=lambda f: (-f.score, f.evidence["level"], f.subject_ids[0]))
    if stats_out is not None:
        stats_out.update(
            {
                "reviews": int(n_reviews),
                "negative_reviews": int(negatives.sum() + removed.sum()),
                "merchants_with_negative_reviews": len(merchant),
                "merchants_tested_rate": int(t_rate.sum()),
                "merchants_tested_contact": int(t_conv.sum()),
                "deleted_without_deleted_by": int(n_no_deleter),
                "event_columns": sorted(present),
                "category_deletion_rates": fit_rate,
                "category_conversions": fit_conv,
                "merchants_flagged": len(flagged_m),
                "service_accounts_flagged": len(services),
            }
        )
    return findings
