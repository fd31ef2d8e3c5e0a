"""Commands of `fcx detect` on orders and interaction graphs (merged into one Typer app by detect/cli.py).

- ``order-brushing`` — 刷单炒信 by the exact Shopee order-brushing rule (detect/brushing.py); on DuckDB or
  Spark (``--engine``), the same kernel per shop.
- ``dense-blocks`` — dense blocks in an account × item graph, guarded: FRAUDAR (detect/fraudar.py, one
  machine) or D-Cube (``--method dcube``, detect/dcube.py: one SQL text on DuckDB or Spark).

Bad input is answered with one clear message on stderr naming the file, row and column, and exit
status 2; nothing is written then.

The detectors, DuckDB, the report writer and the platform client are imported inside the commands
(fast-start rule, fanchaoxin.launch): `fcx detect --help` loads none of them.
"""

from __future__ import annotations

import csv
import json
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fanchaoxin.core.spreadsheet import safe_row
from fanchaoxin.detect import options
from fanchaoxin.detect.findings import BEHAVIOURS, Finding

if TYPE_CHECKING:
    from fanchaoxin.detect.io import InputError

app = typer.Typer()


class OutputFormat(StrEnum):
    detail = "detail"
    shopee = "shopee"


def _fail(exc: InputError) -> typer.Exit:
    typer.echo(f"输入错误 / input error: {exc}", err=True)
    return typer.Exit(code=2)


def _write_reports(
    findings: list[Finding],
    *,
    title: str,
    meta: dict[str, Any],
    report_json: Path | None,
    report_html: Path | None,
) -> None:
    """The findings for review, in the toolkit's shared report format (detect/report.py)."""
    if report_json is None and report_html is None:
        return
    from fanchaoxin.detect.report import write_report

    write_report(findings, title=title, html_path=report_html, json_path=report_json, meta=meta)


@app.command("order-brushing")
def order_brushing(
    input: str = typer.Option(
        ...,
        "--input",
        "-i",
        help="Orders, CSV, Parquet or JSON Lines: orderid, shopid, userid, event_time (other names: --col). "
        "With --engine spark: any path Spark reads, or table:NAME.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the answer (CSV)."),
    format: OutputFormat = typer.Option(
        OutputFormat.detail,
        "--format",
        help="shopee: exactly `shopid,userid`, every shop, 0 or u1&u2. detail: one row per suspicious "
        "(shop, buyer) with score and evidence counts.",
    ),
    window: int = typer.Option(
        3600, "--window", min=0, help="Window length W in seconds: orders at s … s+W, both ends included."
    ),
    rate: float = typer.Option(
        3.0, "--rate", help="Concentrate rate threshold: orders / unique buyers, > 0."
    ),
    report_html: Path | None = typer.Option(None, "--report-html", help="Findings as an HTML page."),
    report_json: Path | None = typer.Option(None, "--report-json", help="Findings as JSON."),
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
    """刷单炒信: shops whose orders in some window number ≥ rate × their buyers (Shopee rule, exact)."""
    if not rate > 0:
        typer.echo("--rate must be > 0", err=True)
        raise typer.Exit(code=2)
    options.check_options(submit, platform, key)
    columns = options.parse_columns(col, expected=["orderid", "shopid", "userid", "event_time"])
    from fanchaoxin.detect import brushing
    from fanchaoxin.detect.io import InputError

    if "://" not in input and not input.startswith("table:"):
        input = str(Path(input))  # a local path, written as before --engine (#21)
    started = time.perf_counter()
    details = format is OutputFormat.detail or report_html is not None or report_json is not None or submit
    try:
        if engine is options.Engine.spark:
            chunks = _spark_brushing(input, spark_master, columns, timezone, window, rate, details)
        else:
            rel = brushing.read_orders(input, columns=columns, timezone=timezone)
            chunks = brushing.detect_order_brushing(rel, window=window, rate=rate, details=details)
        tmp = output.with_name(output.name + ".part")
        n_shops = 0
        shops: list[brushing.ShopResult] = []
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            if format is OutputFormat.shopee:
                fh.write("shopid,userid\n")
                for chunk in chunks:
                    n_shops += len(chunk.shop_ids)
                    lines = brushing.shopee_lines(chunk)
                    if lines:
                        fh.write("\n".join(lines) + "\n")
                    shops.extend(chunk.shops)
            else:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(
                    [
                        "shopid",
                        "userid",
                        "user_orders",
                        "brushing_orders",
                        "windows",
                        "score",
                        "first_window_start",
                        "last_window_end",
                    ]
                )
                for chunk in chunks:
                    n_shops += len(chunk.shop_ids)
                    for s in chunk.shops:
                        first = min(w[0] for w in s.windows)
                        last = max(w[1] for w in s.windows)
                        for user, count in s.users:
                            # Shop and user ids come from the input file: no cell may open as a formula.
                            writer.writerow(
                                safe_row(
                                    [
                                        s.shopid,
                                        user,
                                        count,
                                        len(s.order_ids),
                                        len(s.windows),
                                        f"{s.score:.6g}",
                                        brushing.fmt_time(first),
                                        brushing.fmt_time(last),
                                    ]
                                )
                            )
                    shops.extend(chunk.shops)
        tmp.replace(output)  # a half-written answer never sits under the real name
    except InputError as exc:
        Path(str(output) + ".part").unlink(missing_ok=True)
        raise _fail(exc) from exc
    findings = brushing.findings_from(shops, window=window, rate=rate) if details else []
    meta = {
        "detector": brushing.DETECTOR,
        "input": input,
        "columns": columns,
        "timezone": timezone,
        "window_seconds": window,
        "rate": rate,
        "shops": n_shops,
        "brushing_shops": len(shops),
    }
    _write_reports(
        findings,
        title="刷单炒信 order brushing (Shopee rule)",
        meta=meta,
        report_json=report_json,
        report_html=report_html,
    )
    if engine is options.Engine.spark:
        options.echo_shuffle(options.spark_session_or_exit(spark_master))  # the session still open
    typer.echo(
        f"{n_shops} shop(s), {len(shops)} brushing; wrote {output} in {time.perf_counter() - started:.1f} s",
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


def _spark_brushing(
    source: str,
    master: str,
    columns: dict[str, str],
    timezone: str,
    window: int,
    rate: float,
    details: bool,
) -> Any:
    """Order brushing on Spark (detect/engines.py): the session and the input are checked before any
    work; an engine that cannot run is one line on stderr and exit 2, like bad input."""
    from fanchaoxin.detect import brushing, engines

    spark = options.spark_session_or_exit(master)
    df = engines.spark_read_table(
        spark,
        source,
        brushing.REQUIRED_COLUMNS,
        types={"orderid": "ID", "shopid": "ID", "userid": "ID", "event_time": "TIMESTAMP"},
        unique=["orderid"],
        columns=columns,
        timezone=timezone,
    )
    return brushing.detect_order_brushing_spark(df, window=window, rate=rate, details=details)


_BEHAVIOUR_CHOICES = ", ".join(BEHAVIOURS)
_GRAPH_PANEL = "Graph columns"
_GUARD_PANEL = "Guard: which blocks may become findings"
_METHOD_PANEL = "Method"


class DenseMethod(StrEnum):
    fraudar = "fraudar"
    dcube = "dcube"


@app.command("dense-blocks")
def dense_blocks(
    input: str = typer.Option(
        ...,
        "--input",
        "-i",
        help="Edges, CSV, Parquet or JSON Lines, one row per edge (repeats count once). With --engine "
        "spark: any path Spark reads, or table:NAME.",
    ),
    src: str | None = typer.Option(
        None,
        "--src",
        help="Column of the accounts (reviewers, users) — the subjects of findings. Or --col src=COLUMN.",
        rich_help_panel=_GRAPH_PANEL,
    ),
    dst: str | None = typer.Option(
        None,
        "--dst",
        help="Column of the items (products, IPs, devices, pages). Or --col dst=COLUMN.",
        rich_help_panel=_GRAPH_PANEL,
    ),
    time_col: str | None = typer.Option(
        None,
        "--time",
        help="Column of the edges' times (optional): each account's first and last time in its block. "
        "Or --col time=COLUMN.",
        rich_help_panel=_GRAPH_PANEL,
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="blocks.json: every block in the order found — status (reported or refused, with the "
        "reasons), src, dst, score and per-account evidence.",
    ),
    blocks: int = typer.Option(
        1, "--blocks", "-k", min=1, help="How many blocks to find, one after another."
    ),
    behaviour: str | None = typer.Option(
        None,
        "--behaviour",
        help="What the blocks are evidence of in this graph, e.g. fake_review (reviewer × product) or "
        "malicious_registration (account × device or IP); required with --submit and the reports, never "
        f"assumed. One of {_BEHAVIOUR_CHOICES}.",
    ),
    min_lift: float = typer.Option(
        5.0,
        "--min-lift",
        min=0.0,
        help="Refuse a block whose edge density is below this many times the whole graph's.",
        rich_help_panel=_GUARD_PANEL,
    ),
    max_accounts: int = typer.Option(
        1000, "--max-accounts", min=1, help="Refuse a block of more accounts.", rich_help_panel=_GUARD_PANEL
    ),
    max_account_share: float = typer.Option(
        0.5,
        "--max-account-share",
        min=0.0,
        max=1.0,
        help="Refuse a block holding more than this share of the graph's accounts.",
        rich_help_panel=_GUARD_PANEL,
    ),
    report_html: Path | None = typer.Option(None, "--report-html", help="Findings as an HTML page."),
    report_json: Path | None = typer.Option(None, "--report-json", help="Findings as JSON."),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
    method: DenseMethod = typer.Option(
        DenseMethod.fraudar,
        "--method",
        help="fraudar: FRAUDAR's greedy peeling (camouflage-resistant; one machine). dcube: D-Cube "
        "(Shin et al., WSDM 2017), peeling every value below the block's average mass at once, in a few "
        "dozen SQL rounds: runs on DuckDB or Spark with the same answers.",
        rich_help_panel=_METHOD_PANEL,
    ),
    measure: str | None = typer.Option(
        None,
        "--density",
        help="D-Cube's density measure: ari (average mass, default; FRAUDAR's unweighted g × 2), geo, susp.",
        rich_help_panel=_METHOD_PANEL,
    ),
    policy: str | None = typer.Option(
        None,
        "--policy",
        help="D-Cube's choice of the side to peel: cardinality (default; the side with more values) or "
        "density (the side whose peeling leaves the denser block).",
        rich_help_panel=_METHOD_PANEL,
    ),
    engine: options.Engine = options.opt_engine(),
    spark_master: str = options.opt_spark_master(),
) -> None:
    """FRAUDAR or D-Cube: dense blocks of accounts × items (review rings, lockstep likes).

    For camouflaged dense blocks in account × item graphs: review rings, lockstep likes or follows,
    accounts sharing devices or IPs. Not for order brushing in a buyer × shop graph — a brushing shop
    is one item with a few buyers, no block (the densest block held 3 brushing shops of 12 on the
    Shopee orders): use `fcx detect order-brushing`. Blocks failing the guard (density lift, size)
    are written with the reasons and never become findings, so never submitted.
    """
    if behaviour is not None and behaviour not in BEHAVIOURS:
        typer.echo(f"error: unknown --behaviour {behaviour!r}; one of {_BEHAVIOUR_CHOICES}", err=True)
        raise typer.Exit(code=2)
    _check_method(method, engine, measure, policy)
    options.check_options(submit, platform, key)
    wants = [
        what
        for what, on in (("--submit", submit), ("--report-html", report_html), ("--report-json", report_json))
        if on
    ]
    if behaviour is None and wants:
        typer.echo(
            f"error: {' and '.join(wants)} need(s) --behaviour: what the dense blocks are evidence of in "
            "this graph (no default: a block is not order brushing just because it is dense); one of "
            f"{_BEHAVIOUR_CHOICES}",
            err=True,
        )
        raise typer.Exit(code=2)
    columns = options.parse_columns(col, expected=["src", "dst", "time"])
    src = options.pick_column("src", "--src", src, columns)
    dst = options.pick_column("dst", "--dst", dst, columns)
    time_col = options.pick_column("time", "--time", time_col, columns)
    if src is None or dst is None:
        missing = " and ".join(
            f"--{n} (or --col {n}=COLUMN)" for n, v in (("src", src), ("dst", dst)) if v is None
        )
        typer.echo(f"error: dense-blocks needs {missing}: the columns of the graph's two sides", err=True)
        raise typer.Exit(code=2)
    from fanchaoxin.detect import fraudar
    from fanchaoxin.detect.io import InputError

    if "://" not in input and not input.startswith("table:"):
        input = str(Path(input))  # a local path, written as before --engine (#21)
    guard = fraudar.Guard(min_lift=min_lift, max_accounts=max_accounts, max_account_share=max_account_share)
    started = time.perf_counter()
    dcube_meta: dict[str, Any] | None = None
    try:
        if method is DenseMethod.fraudar:
            found = fraudar.detect_dense_blocks(
                input, src, dst, k=blocks, time=time_col, guard=guard, timezone=timezone
            )
        else:
            found, dcube_meta = _dcube_blocks(
                input, src, dst, blocks, time_col, guard, timezone, measure, policy, engine, spark_master
            )
    except InputError as exc:
        raise _fail(exc) from exc
    tmp = output.with_name(output.name + ".part")
    tmp.write_text(
        json.dumps(fraudar.block_records(found.blocks), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    tmp.replace(output)  # a half-written answer never sits under the real name
    g = found.graph
    refused = fraudar.refused_summary(found.blocks)
    if behaviour is not None:
        if dcube_meta is None:
            findings = fraudar.findings_from(found.blocks, behaviour=behaviour, src=src, dst=dst)
        else:
            findings = fraudar.findings_from(
                found.blocks,
                behaviour=behaviour,
                src=src,
                dst=dst,
                density_name=dcube_meta["density_name"],
                method={k: dcube_meta[k] for k in ("method", "density_measure", "policy")},
            )
        meta = {
            "detector": fraudar.DETECTOR,
            "input": input,
            "src": src,
            "dst": dst,
            "time": time_col,
            "timezone": timezone,
            "graph": {
                "accounts": g.accounts,
                "items": g.items,
                "edges": g.edges,
                "rows": g.rows,
                "edge_density": g.edge_density,
                "density": g.density,
            },
            "guard": {
                "min_lift": min_lift,
                "max_accounts": max_accounts,
                "max_account_share": max_account_share,
            },
            "blocks_requested": blocks,
            "blocks_found": len(found.blocks),
            "blocks_reported": len(findings),
            "refused_blocks": refused,
        }
        if dcube_meta is not None:  # FRAUDAR's report stays as it was
            meta |= {k: v for k, v in dcube_meta.items() if k != "density_name"}
        _write_reports(
            findings,
            title="FRAUDAR dense blocks 稠密子图" if dcube_meta is None else "D-Cube dense blocks 稠密子图",
            meta=meta,
            report_json=report_json,
            report_html=report_html,
        )
    elapsed = time.perf_counter() - started
    score_name = "g" if dcube_meta is None else f"ρ_{dcube_meta['density_measure']}"
    sizes = (
        ", ".join(
            f"{len(b.src)}×{len(b.dst)} ({score_name}={b.score:.3f}, lift {b.lift:.3g}"
            + ("" if b.reported else ", refused")
            + ")"
            for b in found.blocks
        )
        or "none (no edges)"
    )
    typer.echo(
        f"graph {g.accounts:,} {src} × {g.items:,} {dst}, {g.edges:,} edges; {len(found.blocks)} block(s): "
        f"{sizes}; wrote {output} in {elapsed:.1f} s",
        err=True,
    )
    for r in refused:
        typer.echo(
            f"block {r['block']} refused, not a finding and never submitted: "
            + "; ".join(r["refused_because"]),
            err=True,
        )
    if engine is options.Engine.spark:
        options.echo_shuffle(options.spark_session_or_exit(spark_master))  # the session still open
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


def _check_method(
    method: DenseMethod, engine: options.Engine, measure: str | None, policy: str | None
) -> None:
    """Before any work: the options that only D-Cube has, and FRAUDAR only on DuckDB (exit 2)."""
    if method is DenseMethod.fraudar:
        if engine is options.Engine.spark:
            typer.echo(
                "error: --engine spark runs --method dcube only: FRAUDAR's greedy peeling is sequential "
                "(one node at a time, the whole graph in one machine's memory); use --method dcube on "
                "Spark, or --engine duckdb for FRAUDAR",
                err=True,
            )
            raise typer.Exit(code=2)
        given = [o for o, v in (("--density", measure), ("--policy", policy)) if v is not None]
        if given:
            typer.echo(f"error: {' and '.join(given)} belong(s) to --method dcube", err=True)
            raise typer.Exit(code=2)
        return
    from fanchaoxin.detect.dcube import MEASURES, POLICIES

    for option, value, choices in (("--density", measure, MEASURES), ("--policy", policy, POLICIES)):
        if value is not None and value not in choices:
            typer.echo(f"error: unknown {option} {value!r}; one of {', '.join(choices)}", err=True)
            raise typer.Exit(code=2)


def _dcube_blocks(
    source: str,
    src: str,
    dst: str,
    k: int,
    time_col: str | None,
    guard: Any,
    timezone: str,
    measure: str | None,
    policy: str | None,
    engine: options.Engine,
    master: str,
) -> tuple[Any, dict[str, Any]]:
    """D-Cube's blocks on the chosen engine (detect/dcube.py: one SQL text) and what the report says of
    the method; an engine that cannot run is one line on stderr and exit 2, like bad input."""
    from fanchaoxin.detect import dcube

    args = {
        "k": k,
        "time": time_col,
        "guard": guard,
        "measure": measure or "ari",
        "policy": policy or "cardinality",
        "timezone": timezone,
    }
    if engine is options.Engine.spark:
        spark = options.spark_session_or_exit(master)
        found, paths = dcube.detect_dense_blocks_spark(spark, source, src, dst, **args)
    else:
        found, paths = dcube.detect_dense_blocks_dcube(source, src, dst, **args)
    meta = {
        "method": "dcube",
        "density_measure": args["measure"],
        "policy": args["policy"],
        "density_name": f"D-Cube ρ_{args['measure']}",
        "rounds": [p.rounds for p in paths],
    }
    return found, meta
