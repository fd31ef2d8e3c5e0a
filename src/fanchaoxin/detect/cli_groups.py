"""Commands of `fcx detect` for group and logistics detectors (merged into one Typer app by detect/cli.py).

``lockstep``       CopyCatch lockstep groups in (user, item, time) actions, here; and the plumbing
the group commands share (errors, progress, outputs, submission), used by detect/cli_registrations.py
(``registrations``, bulk-registration clusters 恶意注册) and detect/cli_parcels.py (``parcels``,
empty-parcel waybills 合谋寄递空包裹).

Every command writes its findings to ``--output`` (``.json`` or ``.csv`` by the suffix), an HTML report
and a JSON report (``--report-html`` / ``--report-json``, by default next to the output as
``<name>.report.html`` / ``<name>.report.json``). Bad input ends with exit status 2 and one line on
stderr naming the file, row and column — no traceback, nothing dropped silently.

Inputs: CSV, Parquet or JSON Lines; ``--col NAME=COLUMN`` reads a column under another name, and
``--timezone`` is the zone of times without an offset (fanchaoxin.detect.options). The detectors,
DuckDB, the report writer and the platform client are imported inside the commands (fast-start rule,
fanchaoxin.launch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fanchaoxin.detect import options
from fanchaoxin.detect.findings import Finding

app = typer.Typer()

_err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    # one line, no traceback: the message already names the file, row and column
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


@contextmanager
def _guard() -> Iterator[None]:
    from fanchaoxin.detect.io import InputError

    try:
        yield
    except (InputError, OSError, ValueError) as exc:
        _fail(str(exc))


@contextmanager
def _progress(label: str) -> Iterator[Callable[..., None]]:
    """A transient rich progress line on stderr; yields `step(description, done=None, total=None)`."""
    with Progress(
        TextColumn(f"[bold]{label}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
        disable=not _err.is_terminal,
    ) as prog:  # no stray newlines in pipes and logs
        task = prog.add_task("", total=None)

        def step(description: str, done: int | None = None, total: int | None = None) -> None:
            prog.update(task, description=description, completed=done or 0, total=total)

        yield step


def _finish(
    findings: list[Finding],
    *,
    output: Path,
    report_html: Path | None,
    report_json: Path | None,
    title: str,
    meta: dict[str, Any],
    step: Callable[..., None],
) -> None:
    from fanchaoxin.detect.report import write_findings, write_report

    step("writing")
    html, js = options.report_paths(output, report_html, report_json)
    write_findings(output, findings, meta, default_level="group")
    write_report(findings, title=title, html_path=html, json_path=js, meta=meta)
    typer.echo(f"{len(findings):,} findings → {output}; report: {html}, {js}")


def _columns(col: list[str], column: list[str] | None, allowed: tuple[str, ...]) -> dict[str, str]:
    # --column NAME=COLUMN is the name these commands had before --col was shared by every detector
    return options.parse_columns([*col, *(column or [])], expected=allowed)


def _submit(findings: list[Finding], **kw: Any) -> None:
    from fanchaoxin.detect import submit as submission

    submission.cli_submit(findings, **kw)


_OUT_HELP = "Findings file: .json or .csv by its suffix."


@app.command("lockstep")
def lockstep_cmd(
    input: str = typer.Option(
        ...,
        "--input",
        "-i",
        help="Actions, CSV, Parquet or JSON Lines: one row per (user, item, time). With --engine spark: any "
        "path Spark reads, or table:NAME.",
    ),
    user: str | None = typer.Option(None, "--user", show_default="userid", help="User column."),
    item: str | None = typer.Option(
        None, "--item", show_default="itemid", help="Item (product, page, shop) column."
    ),
    time_col: str | None = typer.Option(
        None,
        "--time",
        show_default="event_time",
        help="Time column: YYYY-MM-DD HH:MM:SS, ISO 8601 (with or without an offset) or epoch seconds.",
    ),
    window: int = typer.Option(
        3600, "--window", min=1, help="Δt in seconds: max distance to an item's centre time."
    ),
    min_users: int = typer.Option(5, "--min-users", min=2, help="m: fewest users in a group."),
    min_items: int = typer.Option(4, "--min-items", min=1, help="n: fewest items every member acted on."),
    rho: float = typer.Option(
        0.5,
        "--rho",
        min=0.01,
        max=1.0,
        help="ρ: members act on ≥ max(n, ρ·|items|) of the group's items (1 = all).",
    ),
    behaviour: str = typer.Option("fake_review", "--behaviour", help="fake_review or order_brushing."),
    max_seeds: int = typer.Option(20_000, "--max-seeds", min=1, help="Most seeds (item, time) to grow from."),
    output: Path = typer.Option(..., "--output", "-o", help=_OUT_HELP),
    report_html: Path | None = options.opt_report_html(),
    report_json: Path | None = options.opt_report_json(),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """Lockstep groups (CopyCatch): ≥ m users acting on the same ≥ n items at the same times."""
    if behaviour not in ("fake_review", "order_brushing"):
        _fail("--behaviour must be fake_review or order_brushing")
    options.check_options(submit, platform, key)
    # --col user=… is --user …, and so on: one name per column however it is given
    columns = options.parse_columns(col, expected=["user", "item", "time"])
    user = options.pick_column("user", "--user", user, columns) or "userid"
    item = options.pick_column("item", "--item", item, columns) or "itemid"
    time_col = options.pick_column("time", "--time", time_col, columns) or "event_time"
    from fanchaoxin.detect import lockstep

    if "://" not in input and not input.startswith("table:"):
        input = str(Path(input))  # a local path, written as before --engine (#21)
    mapping = {"user": user, "item": item, "time": time_col}
    t0 = time.perf_counter()
    spark = None
    with _guard(), _progress("lockstep") as step:
        step("reading")
        if engine is options.Engine.spark:
            spark = options.spark_session_or_exit(spark_master)
            sql = lockstep.spark_actions(spark, input, columns=mapping, timezone=timezone)
        else:
            sql = lockstep.duckdb_actions(input, columns=mapping, timezone=timezone)
        try:
            found = lockstep.detect_lockstep(
                sql,
                window=window,
                min_users=min_users,
                min_items=min_items,
                rho=rho,
                max_seeds=max_seeds,
                progress=step,
            )
        finally:
            lockstep.drop(sql, "lockstep_input", "VIEW")
            if spark is not None:
                sql.close()  # type: ignore[attr-defined]
            else:
                sql.con.close()  # type: ignore[attr-defined]
        findings = lockstep.lockstep_findings(
            found.groups, found.user_labels, found.item_labels, window=window, rho=rho, behaviour=behaviour
        )
        meta = {
            "detector": "lockstep (CopyCatch)",
            "input": input,
            "rows": found.rows,
            "parameters": {
                "user": user,
                "item": item,
                "time": time_col,
                "timezone": timezone,
                "window_seconds": window,
                "min_users": min_users,
                "min_items": min_items,
                "rho": rho,
                "behaviour": behaviour,
                "max_seeds": max_seeds,
            },
            "seconds": round(time.perf_counter() - t0, 3),
        }
        _finish(
            findings,
            output=output,
            report_html=report_html,
            report_json=report_json,
            title="Lockstep groups 同步行为团伙 (CopyCatch)",
            meta=meta,
            step=step,
        )
    # the driver's share of the work (docs/cluster.md): what the search held in memory
    typer.echo(f"lockstep: {found.survivors:,} of {found.rows:,} actions survive the prune", err=True)
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
