"""`fcx detect parcels`: empty-parcel waybills, senders and couriers (合谋寄递空包裹); merged into
`fcx detect` by detect/cli.py. Shared command plumbing (errors, progress, outputs, submission)
is in detect/cli_groups.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from fanchaoxin.detect import options
from fanchaoxin.detect.cli_groups import _OUT_HELP, _columns, _fail, _finish, _guard, _progress, _submit

app = typer.Typer()


_WB_COLS = (
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


@app.command("parcels")
def parcels_cmd(
    input: str = typer.Option(
        ...,
        "--input",
        "-i",
        help="Waybills file (CSV, Parquet or JSON Lines). With --engine spark: any path Spark reads, or "
        "table:NAME.",
    ),
    column: list[str] | None = typer.Option(None, "--column", hidden=True, help="The same as --col."),
    min_score: float = typer.Option(
        0.5, "--min-score", min=0.0, max=1.0, help="Flag waybills scoring ≥ this."
    ),
    v_ok: float = typer.Option(130.0, "--max-speed", min=1.0, help="Fastest plausible door-to-door km/h."),
    min_count: int = typer.Option(
        3, "--min-count", min=1, help="Fewest flagged waybills of a sender/courier."
    ),
    alpha: float = typer.Option(1e-4, "--alpha", min=0.0, max=1.0, help="Binomial tail P at most this."),
    courier_kind: str = typer.Option(
        "courier_staff",
        "--courier-kind",
        help="Subject kind of the courier column: courier_staff or courier_company.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help=_OUT_HELP),
    report_html: Path | None = options.opt_report_html(),
    report_json: Path | None = options.opt_report_json(),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(short=False),
    courier_uscc: str | None = typer.Option(
        None,
        "--courier-uscc",
        help="With --submit and courier_staff: the courier company's USCC, when the courier column holds "
        "staff numbers only (identifiers become <USCC>:<staff number>).",
        rich_help_panel="Submit to the platform",
    ),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """Empty-parcel waybills, and senders / couriers where they concentrate.

    Columns: waybill, courier, sender, pickup_time, and where known sign_time, weight_kg, origin_city,
    dest_city, distance_km, transit_scans (--col NAME=COLUMN).
    """
    if courier_kind not in ("courier_staff", "courier_company"):
        _fail("--courier-kind must be courier_staff or courier_company")
    options.check_options(submit, platform, key)
    cols = _columns(col, column, _WB_COLS)
    from fanchaoxin.detect.parcels import Params

    params = Params(
        min_score=min_score,
        v_ok=v_ok,
        v_bad=2 * v_ok,
        min_count=min_count,
        alpha=alpha,
        courier_kind=courier_kind,
    )
    if "://" not in input and not input.startswith("table:"):
        input = str(Path(input))  # a local path, written as before --engine (#21)
    t0 = time.perf_counter()
    spark = options.spark_session_or_exit(spark_master) if engine is options.Engine.spark else None
    with _guard(), _progress("parcels") as step:
        step("reading")
        progress = lambda d, n: step("waybill findings", d, n)  # noqa: E731
        if spark is not None:
            result = _spark_parcels(spark, input, cols, timezone, params, progress)
        else:
            from fanchaoxin.detect.parcels import detect_file

            result = detect_file(input, params, columns=cols, timezone=timezone, progress=progress)
        findings = result.findings
        levels = {
            lv: sum(1 for f in findings if f.evidence.get("level") == lv)
            for lv in ("waybill", "sender", "courier")
        }
        meta = {
            "detector": "empty-parcel",
            "input": input,
            "rows": result.rows,
            "findings": levels,
            # unknown values give no signal rather than being dropped or guessed: say how many
            "missing_values": result.missing,
            "parameters": {"columns": cols, "timezone": timezone, **params.__dict__},
            "note": "waybill scores are in [0, 1]; sender and courier scores are −log10 P",
            "seconds": round(time.perf_counter() - t0, 3),
        }
        _finish(
            findings,
            output=output,
            report_html=report_html,
            report_json=report_json,
            title="Empty parcels 空包裹",
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
            courier_uscc=courier_uscc,
        )


def _spark_parcels(
    spark: Any,
    source: str,
    columns: dict[str, str],
    timezone: str,
    params: Any,
    progress: Any,
) -> Any:
    """Empty parcels on Spark (detect/engines.py): the input is checked (path or table, columns,
    values, repeated waybills) before any work; the job is detect/parcels.py's, as on DuckDB."""
    from fanchaoxin.detect import engines, parcels

    df = engines.spark_read_table(
        spark,
        source,
        parcels.COLUMNS,
        types=parcels.TYPES,
        nullable=parcels.NULLABLE,
        unique=["waybill"],
        columns=columns,
        timezone=timezone,
        epoch_time=False,
    )
    return parcels.detect_spark(df, params, progress=progress)
