"""Commands of `fcx detect` for deletion (merged into one Typer app by detect/cli.py).

``review-deletion`` — 删除不利评价: merchants that get negative reviews removed (after contacts,
refunds or payments to the reviewers, or at a rate abnormal for their category) and the deletion-service
accounts working for many merchants (detect/deletion.py), from a review log and an after-sales log.

Column mappings name the file: ``--col reviews.created_at=ctime --col after_sales.user=buyer_id``
(files ``reviews``, ``after_sales``, ``merchants``). Bad input ends with exit status 2 and one line on
stderr naming the file, row and column; nothing is written then.

``--engine spark`` (``--spark-master``) runs the same SQL on Apache Spark (#21, docs/cluster.md): each
input is then any path Spark reads or ``table:NAME``; the outputs are the same as on DuckDB.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from fanchaoxin.detect import options

app = typer.Typer()

# The columns each file is read for (detect/deletion.py), as --col names: <file>.<column>.
_FILES: dict[str, tuple[str, ...]] = {
    "reviews": ("review_id", "merchant", "author", "rating", "created_at", "deleted_at", "deleted_by"),
    "after_sales": ("merchant", "user", "kind", "event_time", "operator", "amount", "event_id"),
    "merchants": ("merchant", "category"),
}
_COLUMN_NAMES = [f"{f}.{c}" for f, cols in _FILES.items() for c in cols]
_DETECT_PANEL = "Detection"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"输入错误 / input error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(code=2)


def _kinds(value: str, option: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    if not kinds:
        typer.echo(f"error: {option} needs at least one kind", err=True)
        raise typer.Exit(code=2)
    return kinds


def _per_file(values: list[str]) -> dict[str, dict[str, str]]:
    """`--col FILE.NAME=COLUMN` values as {file: {name: column}}, checked file by file.

    Two files may well call different things by the same name (``author`` in the reviews is ``user``
    in the after-sales log, both ``uid``): a column is unique within its own file only.
    """
    groups: dict[str | None, list[str]] = {}
    for raw in values:
        file = raw.partition("=")[0].strip().partition(".")[0]
        groups.setdefault(file if file in _FILES else None, []).append(raw)
    if None in groups:  # no file or an unknown one: parse_columns says what is expected and exits 2
        options.parse_columns(groups[None], expected=_COLUMN_NAMES)
    out: dict[str, dict[str, str]] = {}
    for file, raws in groups.items():
        assert file is not None
        mapping = options.parse_columns(raws, expected=[f"{file}.{c}" for c in _FILES[file]])
        out[file] = {name.partition(".")[2]: column for name, column in mapping.items()}
    return out


def _source(value: str) -> str:
    return value if "://" in value or value.startswith("table:") else str(Path(value))


@app.command("review-deletion")
def review_deletion(
    reviews: str = typer.Option(
        ...,
        "--reviews",
        help="Review log (CSV, Parquet or JSON Lines): review_id, merchant, author, rating, created_at, "
        "deleted_at, deleted_by (deleted_* empty while the review is online). "
        "With --engine spark: any path Spark reads, or table:NAME (likewise the other inputs).",
    ),
    after_sales: str = typer.Option(
        ...,
        "--after-sales",
        help="After-sales events: merchant, user, kind, event_time; optional operator (the account acting "
        "for the merchant), amount, event_id.",
    ),
    merchants: str | None = typer.Option(
        None, "--merchants", help="merchant, category. Without it every merchant is in one category."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Findings file: .json or .csv by its suffix."),
    report_html: Path | None = options.opt_report_html(),
    report_json: Path | None = options.opt_report_json(),
    negative_max_rating: float = typer.Option(
        2,
        "--negative-max-rating",
        help="A review is negative at this rating or below.",
        rich_help_panel=_DETECT_PANEL,
    ),
    window_hours: float = typer.Option(
        72.0,
        "--window-hours",
        min=0.01,
        help="A deletion counts as following a contact or payment within this many hours.",
        rich_help_panel=_DETECT_PANEL,
    ),
    horizon_days: float = typer.Option(
        14.0,
        "--horizon-days",
        min=0.01,
        help="A contact counts for a negative review within this many days after it.",
        rich_help_panel=_DETECT_PANEL,
    ),
    contact_kinds: str = typer.Option(
        "message,call,refund,compensation",
        "--contact-kinds",
        help="Event kinds that reach the customer (comma-separated).",
        rich_help_panel=_DETECT_PANEL,
    ),
    payment_kinds: str = typer.Option(
        "payment",
        "--payment-kinds",
        help="Event kinds where the merchant pays an account that is not a customer.",
        rich_help_panel=_DETECT_PANEL,
    ),
    author_values: str = typer.Option(
        "author",
        "--author-values",
        help="Values of deleted_by meaning the reviewer deleted it (comma-separated); others are moderation.",
        rich_help_panel=_DETECT_PANEL,
    ),
    fdr: float = typer.Option(
        0.01,
        "--fdr",
        min=1e-9,
        max=0.5,
        help="False-discovery rate (Benjamini–Hochberg) of each test.",
        rich_help_panel=_DETECT_PANEL,
    ),
    min_negatives: int = typer.Option(
        10,
        "--min-negatives",
        min=1,
        help="Fewest negative reviews without logged contact for the rate test.",
        rich_help_panel=_DETECT_PANEL,
    ),
    min_contacted: int = typer.Option(
        10,
        "--min-contacted",
        min=1,
        help="Fewest contacted negative reviews for the contact test.",
        rich_help_panel=_DETECT_PANEL,
    ),
    min_deleted: int = typer.Option(
        5,
        "--min-deleted",
        min=1,
        help="Fewest deletions a merchant is reported for.",
        rich_help_panel=_DETECT_PANEL,
    ),
    min_ratio: float = typer.Option(
        1.5,
        "--min-ratio",
        min=1.0,
        help="Reported rates are at least this many times the expected one.",
        rich_help_panel=_DETECT_PANEL,
    ),
    min_merchants: int = typer.Option(
        3,
        "--min-merchants",
        min=2,
        help="Fewest merchants with linked deletions for a service account.",
        rich_help_panel=_DETECT_PANEL,
    ),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """删除不利评价: merchants getting negative reviews removed, and deletion-service accounts.

    Column mappings name the file: --col reviews.created_at=ctime, --col after_sales.user=buyer,
    --col merchants.category=industry.
    """
    mapping = _per_file(col)
    contact = _kinds(contact_kinds, "--contact-kinds")
    payment = _kinds(payment_kinds, "--payment-kinds")
    authors = _kinds(author_values, "--author-values")
    options.check_options(submit, platform, key)

    from fanchaoxin.detect import deletion
    from fanchaoxin.detect.io import InputError
    from fanchaoxin.detect.report import write_findings, write_report

    params = deletion.Params(
        negative_max_rating=negative_max_rating,
        window_hours=window_hours,
        horizon_days=horizon_days,
        contact_kinds=contact,
        payment_kinds=payment,
        author_values=authors,
        min_negatives=min_negatives,
        min_contacted=min_contacted,
        min_deleted=min_deleted,
        min_ratio=min_ratio,
        fdr=fdr,
        min_merchants=min_merchants,
    )
    # a local path is written as before --engine (#21); a URL or table:NAME as given (Spark reads it)
    reviews, after_sales = _source(reviews), _source(after_sales)
    merchants = _source(merchants) if merchants is not None else None
    started = time.perf_counter()
    run_stats: dict[str, Any] = {}
    spark = None
    try:
        if engine is options.Engine.spark:
            spark = options.spark_session_or_exit(spark_master)
            findings = deletion.detect_review_deletion_spark(
                spark,
                reviews,
                after_sales,
                merchants,
                params=params,
                columns=mapping,
                timezone=timezone,
                stats_out=run_stats,
            )
        else:
            findings = deletion.detect_review_deletion(
                reviews,
                after_sales,
                merchants,
                params=params,
                columns=mapping,
                timezone=timezone,
                stats_out=run_stats,
            )
    except InputError as exc:
        raise _fail(str(exc)) from exc
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    meta = {
        "detector": deletion.DETECTOR,
        "inputs": {
            "reviews": reviews,
            "after_sales": after_sales,
            "merchants": merchants,
        },
        "parameters": {
            "negative_max_rating": negative_max_rating,
            "window_hours": window_hours,
            "horizon_days": horizon_days,
            "contact_kinds": list(contact),
            "payment_kinds": list(payment),
            "author_values": list(authors),
            "fdr": fdr,
            "min_negatives": min_negatives,
            "min_contacted": min_contacted,
            "min_deleted": min_deleted,
            "min_ratio": min_ratio,
            "min_merchants": min_merchants,
            "columns": mapping,
            "timezone": timezone,
        },
        "stats": run_stats,
        "seconds": round(time.perf_counter() - started, 3),
    }
    html, js = options.report_paths(output, report_html, report_json)
    write_findings(output, findings, meta)
    write_report(findings, title="删除不利评价 review deletion", html_path=html, json_path=js, meta=meta)
    if spark is not None:
        options.echo_shuffle(spark)
    n_merchants = sum(1 for f in findings if f.evidence.get("level") == "merchant")
    typer.echo(
        f"{n_merchants} merchant(s), {len(findings) - n_merchants} service account(s) → {output}; "
        f"report: {html}, {js} ({time.perf_counter() - started:.1f} s)",
        err=True,
    )
    if submit:
        from fanchaoxin.detect import submit as submission

        submission.cli_submit(
            findings,
            platform=platform,
            key=key,
            namespace=account_namespace,
            severity=severity,
            min_score=submit_min_score,
        )
