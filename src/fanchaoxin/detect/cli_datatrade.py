"""`fcx detect data-trade`: 泄露倒卖个人信息 personal-data trade (detect/datatrade.py, #20).

Runs every analysis the given files allow (any subset of registrations, orders, access log, staff
directory) and says which ran. Bad input ends with exit status 2 and one line naming the file, row
and column; nothing is written then. ``--engine spark`` runs the same SQL on Apache Spark (#21): the
inputs are then any path Spark reads or ``table:NAME``, and the answers are the same.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from fanchaoxin.detect import options

app = typer.Typer()

# file key → the names the detector reads in it (the --col NAME or FILE.NAME)
_FILES: dict[str, tuple[str, ...]] = {
    "registrations": ("account", "registered_at", "phone", "id_hash", "device_id", "ip"),
    "orders": ("buyer", "receiver_phone", "order_time", "receiver_address_hash"),
    "access_log": ("staff", "customer", "action", "rows", "event_time", "role", "ticket_id"),
    "staff": ("staff", "role", "team"),
}
_PANEL = "Thresholds"


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def file_columns(values: list[str]) -> dict[str, dict[str, str]]:
    """``--col`` values → {file key: {name: column}}.

    ``NAME=COLUMN`` maps NAME in every file that reads it (``staff`` in the access log and in the
    staff directory); ``FILE.NAME=COLUMN`` (FILE one of registrations, orders, access_log, staff) in
    that file only, and wins over an unqualified mapping of the same NAME.
    """
    per_file: dict[str, list[str]] = {f: [] for f in _FILES}
    qualified: dict[str, list[str]] = {f: [] for f in _FILES}
    every = sorted({n for names in _FILES.values() for n in names})
    for raw in values:
        name, sep, column = raw.partition("=")
        name = name.strip()
        if not sep or not name or not column.strip():
            raise _usage(f"--col {raw!r}: write NAME=COLUMN or FILE.NAME=COLUMN, e.g. --col phone=mobile")
        file, dot, bare = name.partition(".")
        if dot:
            if file not in _FILES or bare not in _FILES[file]:
                known = ", ".join(f"{f}.{n}" for f, ns in _FILES.items() for n in ns)
                raise _usage(f"--col {raw!r}: no column {name!r} is read; qualified names are {known}")
            qualified[file].append(f"{bare}={column}")
        else:
            if name not in every:
                raise _usage(
                    f"--col {raw!r}: this detector reads no column {name!r}; it reads {', '.join(every)}"
                )
            for f, names in _FILES.items():
                if name in names:
                    per_file[f].append(f"{name}={column}")
    out = {}
    for f, names in _FILES.items():
        mapping = options.parse_columns(per_file[f], expected=names)
        mapping.update(options.parse_columns(qualified[f], expected=names))
        if mapping:
            out[f] = mapping
    return out


def _source(value: str | None) -> str | None:
    """An input as the run names it: a local path as written before --engine (#21), a URL or
    ``table:NAME`` as given."""
    if value is None or "://" in value or value.startswith("table:"):
        return value
    return str(Path(value))


def _input(source: str | None, spark: Any) -> str | Path | None:
    """What the reader takes: DuckDB a local path, Spark the text (any path Spark reads, table:NAME)."""
    if source is None or spark is not None:
        return source
    return Path(source)


@app.command("data-trade")
def data_trade(
    registrations: str | None = typer.Option(
        None,
        "--registrations",
        help="Accounts: account, registered_at and phone and/or id_hash; device_id, ip when there. "
        "With --engine spark this and the other inputs: any path Spark reads, or table:NAME.",
    ),
    orders: str | None = typer.Option(
        None,
        "--orders",
        help="Orders: buyer, receiver_phone, order_time; receiver_address_hash when there.",
    ),
    access_log: str | None = typer.Option(
        None,
        "--access-log",
        help="Staff access to customer records: staff, customer, action (view/search/export …), rows, "
        "event_time; role, ticket_id when there.",
    ),
    staff: str | None = typer.Option(None, "--staff", help="Staff directory: staff, role; team when there."),
    output: Path = typer.Option(..., "--output", "-o", help="Findings file: .json or .csv by its suffix."),
    report_html: Path | None = options.opt_report_html(),
    report_json: Path | None = options.opt_report_json(),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    min_unrelated: int = typer.Option(
        3,
        "--min-unrelated",
        min=2,
        help="Unrelated account groups (owner's aside) that flag an identifier.",
        rich_help_panel=_PANEL,
    ),
    max_shared: int = typer.Option(
        20,
        "--max-shared",
        min=2,
        help="A device or IP registered by more accounts links nothing.",
        rich_help_panel=_PANEL,
    ),
    min_excess: int = typer.Option(
        100,
        "--min-excess",
        min=1,
        help="Fewest unrelated customer-days above the peers' medians.",
        rich_help_panel=_PANEL,
    ),
    excess_ratio: float = typer.Option(
        3.0,
        "--excess-ratio",
        min=0.0,
        help="… and at least this × the peers' medians summed.",
        rich_help_panel=_PANEL,
    ),
    night_start: int = typer.Option(
        22, "--night-start", min=0, max=23, help="Off-hours start (hour).", rich_help_panel=_PANEL
    ),
    night_end: int = typer.Option(
        6, "--night-end", min=0, max=23, help="Off-hours end (hour).", rich_help_panel=_PANEL
    ),
    min_export_rows: int = typer.Option(
        200,
        "--min-export-rows",
        min=1,
        help="Fewest exported rows that can be beyond a role.",
        rich_help_panel=_PANEL,
    ),
    export_ratio: float = typer.Option(
        10.0,
        "--export-ratio",
        min=1.0,
        help="In an exporting role: rows ≥ this × the role's median.",
        rich_help_panel=_PANEL,
    ),
    export_role_share: float = typer.Option(
        0.5,
        "--export-role-share",
        min=0.0,
        max=1.0,
        help="A role exports when at least this share of its members export at all.",
        rich_help_panel=_PANEL,
    ),
    export_roles: str | None = typer.Option(
        None,
        "--export-roles",
        help="Comma-separated roles whose work is exporting (default: roles where most members export).",
        rich_help_panel=_PANEL,
    ),
    min_victims: int = typer.Option(
        8,
        "--min-victims",
        min=1,
        help="Leak source: fewest owners of misused identifiers accessed before.",
        rich_help_panel=_PANEL,
    ),
    victim_ratio: float = typer.Option(
        3.0,
        "--victim-ratio",
        min=1.0,
        help="Leak source: at least this × the number predicted.",
        rich_help_panel=_PANEL,
    ),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """泄露倒卖个人信息: leaked phones / IDs used by unrelated accounts; staff pulling customer data.

    Runs the analyses the given files allow (docs/detect-datatrade.md). --col NAME=COLUMN maps NAME in
    every file that reads it; --col FILE.NAME=COLUMN (FILE: registrations, orders, access_log, staff)
    in that file only.
    """
    if registrations is None and orders is None and access_log is None:
        raise _usage("give --registrations, --orders and/or --access-log (with --staff): nothing to analyse")
    if night_start == night_end:
        raise _usage("--night-start and --night-end must differ")
    options.check_options(submit, platform, key)
    columns = file_columns(col)
    given = {
        k: _source(v)
        for k, v in (
            ("registrations", registrations),
            ("orders", orders),
            ("access_log", access_log),
            ("staff", staff),
        )
    }
    unused = [f for f in columns if given[f] is None]
    if unused:
        raise _usage(f"--col maps columns of {', '.join(unused)}, which was not given")

    from fanchaoxin.detect import datatrade
    from fanchaoxin.detect import submit as submission
    from fanchaoxin.detect.io import InputError
    from fanchaoxin.detect.report import write_findings, write_report

    params = datatrade.Params(
        min_unrelated=min_unrelated,
        max_shared=max_shared,
        min_excess=min_excess,
        excess_ratio=excess_ratio,
        night_start=night_start,
        night_end=night_end,
        min_export_rows=min_export_rows,
        export_ratio=export_ratio,
        export_role_share=export_role_share,
        export_roles=tuple(r.strip() for r in export_roles.split(",") if r.strip()) if export_roles else None,
        min_victims=min_victims,
        victim_ratio=victim_ratio,
    )
    started = time.perf_counter()
    spark = options.spark_session_or_exit(spark_master) if engine is options.Engine.spark else None
    inp = None
    try:
        inp = datatrade.load_inputs(
            registrations=_input(given["registrations"], spark),
            orders=_input(given["orders"], spark),
            access_log=_input(given["access_log"], spark),
            staff=_input(given["staff"], spark),
            columns=columns,
            timezone=timezone,
            spark=spark,
        )
        findings, run = datatrade.detect(inp, params)
    except (InputError, ValueError, OSError) as exc:
        raise _usage(" ".join(str(exc).split())) from None
    finally:
        if inp is not None:
            inp.close()
    if staff is not None and access_log is None:
        run["analyses"]["staff_directory"] = "not used: the staff directory only serves --access-log"
    meta: dict[str, Any] = {
        "detector": "personal-data-trade",
        "inputs": {k: str(v) for k, v in given.items() if v is not None},
        "rows": inp.rows,
        "columns": columns,
        "timezone": timezone,
        **run,
        "note": "scores are the largest rule ratio (measure over threshold): every finding scores ≥ 1",
        "seconds": round(time.perf_counter() - started, 3),
    }
    html, js = options.report_paths(output, report_html, report_json)
    parts = [html.with_name(html.name + ".part"), js.with_name(js.name + ".part")]
    try:
        write_report(
            findings,
            title="Personal-data trade 泄露倒卖个人信息",
            html_path=parts[0],
            json_path=parts[1],
            meta=meta,
        )
        write_findings(output, findings, meta)
        os.replace(parts[0], html)
        os.replace(parts[1], js)
    except OSError as exc:
        raise _usage(f"cannot write the findings or reports: {exc}") from None
    finally:
        for p in parts:
            p.unlink(missing_ok=True)
    for name, what in run["analyses"].items():
        typer.echo(f"{name}: {what}", err=True)
    if spark is not None:
        options.echo_shuffle(spark)
    typer.echo(f"{len(findings):,} findings → {output}; report: {html}, {js}")
    if submit:
        submission.cli_submit(
            findings,
            platform=platform,
            key=key,
            namespace=account_namespace,
            severity=severity,
            min_score=submit_min_score,
        )
