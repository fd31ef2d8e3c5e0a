"""Commands of `fcx detect` for subsidy (merged into one Typer app by detect/cli.py).

``subsidy-brushing`` — 刷单骗补: collusive driver–rider pairs and rings in a ride-hailing or delivery
platform's trip log (detect/subsidy.py, docs/detect-subsidy.md).

Bad input ends with exit status 2 and one line on stderr naming the file, row and column; nothing is
written then. The detector, DuckDB and the report and submission code load only when the command runs.

``--engine spark`` (#21) runs the same SQL on Spark (detect/sql.py) and writes the same bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fanchaoxin.detect import options

app = typer.Typer()

_TRIP_NAMES = (
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
    "rider_device",
    "driver_device",
    "payment_account",
    "payout_account",
)
_PANEL = "Detector"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(2)


def _local_text(source: str) -> str:
    """A local path as `Path` writes it (as before --engine); a URL or ``table:NAME`` as given."""
    return source if "://" in source or source.startswith("table:") else str(Path(source))


@app.command("subsidy-brushing")
def subsidy_brushing(
    input: str = typer.Option(
        ...,
        "--input",
        "-i",
        help="Trips (CSV, Parquet or JSON Lines): trip_id, driver, rider, start_time, end_time, origin_lat, "
        "origin_lon, dest_lat, dest_lon, distance_km, fare, subsidy; optionally rider_device, driver_device, "
        "payment_account, payout_account. With --engine spark: any path Spark reads, or table:NAME.",
    ),
    subsidies: str | None = typer.Option(
        None,
        "--subsidies",
        help="Subsidy campaigns: start_time, end_time, and threshold_trips for daily-threshold bonuses. "
        "Without it, a trip with a subsidy counts as a campaign trip. With --engine spark: any path Spark "
        "reads, or table:NAME.",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Findings, one per ring: .json or .csv by suffix."
    ),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    min_pair_trips: int = typer.Option(
        5,
        "--min-pair-trips",
        min=2,
        help="Fewest trips a driver and a rider take together to be scored.",
        rich_help_panel=_PANEL,
    ),
    short_km: float = typer.Option(
        3.0, "--short-km", min=0.01, help="A trip of at most this many km is short.", rich_help_panel=_PANEL
    ),
    burst_minutes: int = typer.Option(
        45,
        "--burst-minutes",
        min=1,
        help="A rider's next trip starting within this many minutes makes a burst (and, back where the "
        "first started, a loop A→B→A).",
        rich_help_panel=_PANEL,
    ),
    near_km: float = typer.Option(
        0.3, "--near-km", min=0.001, help="Two places this close are the same place.", rich_help_panel=_PANEL
    ),
    rich_share: float = typer.Option(
        0.5,
        "--rich-share",
        min=0.01,
        help="A trip whose subsidy is at least this share of its fare is subsidy-rich.",
        rich_help_panel=_PANEL,
    ),
    pad_trips: int = typer.Option(
        4,
        "--pad-trips",
        min=1,
        help="The last this-many trips up to a daily bonus threshold count as padding (when the driver "
        "stops at most one trip after it).",
        rich_help_panel=_PANEL,
    ),
    min_pair_score: float = typer.Option(
        0.5,
        "--min-pair-score",
        min=0.0,
        max=1.0,
        help="A pair scoring this is suspicious.",
        rich_help_panel=_PANEL,
    ),
    max_shared_accounts: int = typer.Option(
        20,
        "--max-shared-accounts",
        min=2,
        help="A device or payment account shared by more candidate accounts than this is ignored.",
        rich_help_panel=_PANEL,
    ),
    report_html: Path | None = options.opt_report_html(),
    report_json: Path | None = options.opt_report_json(),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(short=False),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """刷单骗补: driver–rider pairs and rings trading short, looping, subsidised trips."""
    options.check_options(submit, platform, key)
    columns = options.parse_columns(col, expected=_TRIP_NAMES)
    from fanchaoxin.detect import io, subsidy
    from fanchaoxin.detect.report import write_findings, write_report

    params = subsidy.Params(
        min_pair_trips=min_pair_trips,
        short_km=short_km,
        burst_minutes=burst_minutes,
        near_km=near_km,
        rich_share=rich_share,
        pad_trips=pad_trips,
        min_pair_score=min_pair_score,
        max_shared_accounts=max_shared_accounts,
    )
    input = _local_text(input)  # a local path, written as before --engine (#21)
    subsidies = _local_text(subsidies) if subsidies else None
    started = time.perf_counter()
    stats: dict[str, object] = {}
    spark = None
    try:
        params.check()
        if engine is options.Engine.spark:
            spark = options.spark_session_or_exit(spark_master)  # checked before any work
            trips, optional = subsidy.load_trips_spark(spark, input, columns=columns, timezone=timezone)
            campaigns = (
                subsidy.load_subsidies_spark(spark, subsidies, timezone=timezone) if subsidies else None
            )
            findings = subsidy.detect_subsidy_brushing_spark(
                trips, spark=spark, optional=optional, subsidies=campaigns, params=params, stats=stats
            )
        else:
            con = io.connect()
            trips, optional = subsidy.load_trips(input, con=con, columns=columns, timezone=timezone)
            campaigns = subsidy.load_subsidies(subsidies, con=con, timezone=timezone) if subsidies else None
            findings = subsidy.detect_subsidy_brushing(
                trips, con=con, optional=optional, subsidies=campaigns, params=params, stats=stats
            )
    except io.InputError as exc:
        raise _fail(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    meta = {
        "detector": subsidy.DETECTOR,
        "input": input,
        "subsidies": subsidies,
        "columns": columns,
        "timezone": timezone,
        "optional_columns": optional,
        "stats": stats,
        "parameters": params.__dict__,
        "weights": subsidy.WEIGHTS,
        "note": "score in [0, 1]: the best pair's weighted shares; subjects are drivers first, then riders",
        "seconds": round(time.perf_counter() - started, 3),
    }
    html, js = options.report_paths(output, report_html, report_json)
    try:
        write_findings(output, findings, meta)
        write_report(findings, title="刷单骗补 subsidy brushing", html_path=html, json_path=js, meta=meta)
    except OSError as exc:
        raise _fail(f"cannot write: {exc}") from None
    if spark is not None:
        options.echo_shuffle(spark)
    typer.echo(
        f"{stats.get('trips', 0):,} trips, {stats.get('suspicious_pairs', 0):,} suspicious pair(s), "
        f"{len(findings):,} ring(s) → {output}; report: {html}, {js}",
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
