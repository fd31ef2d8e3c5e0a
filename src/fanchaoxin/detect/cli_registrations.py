"""`fcx detect registrations`: bulk-registration clusters (恶意注册); merged into `fcx detect` by
detect/cli.py.

Shared command plumbing (errors, progress, outputs, submission) is in detect/cli_groups.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fanchaoxin.detect import options
from fanchaoxin.detect.cli_groups import _OUT_HELP, _columns, _finish, _guard, _progress, _submit

app = typer.Typer()


_REG_COLS = ("account", "registered_at", "device_id", "ip", "phone", "nickname")


@app.command("registrations")
def registrations_cmd(
    input: str = typer.Option(
        ...,
        "--input",
        "-i",
        help="Registrations, CSV, Parquet or JSON Lines. With --engine spark: any path Spark reads, or "
        "table:NAME.",
    ),
    column: list[str] | None = typer.Option(None, "--column", hidden=True, help="The same as --col."),
    ip_window: int = typer.Option(
        3600, "--ip-window", min=1, help="Seconds: same-IP registrations link within."
    ),
    seq_window: int = typer.Option(
        7 * 86400, "--seq-window", min=1, help="Seconds: same device / phone run / nickname run link within."
    ),
    phone_gap: int = typer.Option(3, "--phone-gap", min=1, help="Largest step inside a phone-number run."),
    nick_gap: int = typer.Option(2, "--nick-gap", min=1, help="Largest step inside a nickname-number run."),
    min_run: int = typer.Option(3, "--min-run", min=2, help="Shortest phone / nickname run that links."),
    min_size: int = typer.Option(5, "--min-size", min=2, help="Fewest accounts in a cluster."),
    burst_window: int = typer.Option(3600, "--burst-window", min=1, help="Seconds of the burstiness window."),
    min_score: float = typer.Option(3.0, "--min-score", help="Report clusters scoring at least this."),
    output: Path = typer.Option(..., "--output", "-o", help=_OUT_HELP),
    report_html: Path | None = options.opt_report_html(),
    report_json: Path | None = options.opt_report_json(),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(short=False),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """Bulk-registration clusters: shared devices, IPs in a burst, phone and nickname runs.

    Columns: account, registered_at, and any of device_id, ip, phone, nickname (--col NAME=COLUMN).
    --engine spark runs the same links on Apache Spark, with the same answer (docs/cluster.md).
    """
    options.check_options(submit, platform, key)
    cols = _columns(col, column, _REG_COLS)
    if "://" not in input and not input.startswith("table:"):
        input = str(Path(input))  # a local path, written as before --engine (#21)
    params = {
        "ip_window": ip_window,
        "seq_window": seq_window,
        "phone_gap": phone_gap,
        "nick_gap": nick_gap,
        "min_run": min_run,
        "min_size": min_size,
        "burst_window": burst_window,
        "min_score": min_score,
    }

    t0 = time.perf_counter()
    spark = None
    with _guard(), _progress("registrations") as step:
        stats: dict[str, int] = {}
        step("reading")
        if engine is options.Engine.spark:
            from fanchaoxin.detect import engines
            from fanchaoxin.detect.registrations import REQUIRED_COLUMNS, find_clusters_spark

            spark = options.spark_session_or_exit(spark_master)
            df = engines.spark_read_table(
                spark,
                input,
                REQUIRED_COLUMNS,
                types={"account": "VARCHAR", "registered_at": "TIMESTAMP"},
                nullable=["device_id", "ip", "phone", "nickname"],
                columns=cols,
                timezone=timezone,
            )
            step("linking accounts")
            findings = find_clusters_spark(df, stats=stats, **params)
        else:
            from fanchaoxin.detect.registrations import find_clusters, load_registrations

            reg = load_registrations(input, columns=cols, timezone=timezone)
            step("linking accounts")
            findings = find_clusters(reg, stats=stats, **params)
        meta = {
            "detector": "bulk-registration",
            "input": input,
            "rows": stats["rows"],
            "stats": stats,
            "parameters": {
                "columns": cols,
                "timezone": timezone,
                "ip_window": ip_window,
                "seq_window": seq_window,
                "phone_gap": phone_gap,
                "nick_gap": nick_gap,
                "min_run": min_run,
                "min_size": min_size,
                "burst_window": burst_window,
                "min_score": min_score,
            },
            "seconds": round(time.perf_counter() - t0, 3),
        }
        _finish(
            findings,
            output=output,
            report_html=report_html,
            report_json=report_json,
            title="Bulk registration clusters 恶意注册团伙",
            meta=meta,
            step=step,
        )
    if spark is not None:
        options.echo_shuffle(spark)
    if submit:
        _submit(
            findings,
            platform=platform,
            key=key,
            namespace=account_namespace,
            severity=severity,
            min_score=submit_min_score,
        )
