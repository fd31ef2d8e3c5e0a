"""Commands of `fcx detect` on orders and interaction graphs (merged into one Typer app by detect/cli.py).

- ``order-brushing`` — 刷单炒信 by the exact Shopee order-brushing rule (detect/brushing.py).
- ``dense-blocks`` — FRAUDAR dense blocks in an account × item graph (detect/fraudar.py).

Bad input is answered with one clear message on stderr naming the file, row and column, and exit
status 2; nothing is written then.
"""

from __future__ import annotations

import csv
import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from fanchaoxin.core.spreadsheet import safe_row
from fanchaoxin.detect import brushing, fraudar, options
from fanchaoxin.detect import submit as submission
from fanchaoxin.detect.findings import BEHAVIOURS, Finding
from fanchaoxin.detect.io import InputError
from fanchaoxin.detect.report import write_report

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
    write_report(findings, title=title, html_path=report_html, json_path=report_json, meta=meta)


@app.command("order-brushing")
def order_brushing(
    input: Path = typer.Option(
        ..., "--input", "-i", help="Orders, CSV or Parquet: orderid, shopid, userid, event_time."
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
) -> None:
    """刷单炒信: shops whose orders in some window number ≥ rate × their buyers (Shopee rule, exact)."""
    if not rate > 0:
        typer.echo("--rate must be > 0", err=True)
        raise typer.Exit(code=2)
    options.check_options(submit, platform, key)
    started = time.perf_counter()
    details = format is OutputFormat.detail or report_html is not None or report_json is not None or submit
    try:
        rel = brushing.read_orders(str(input))
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
        "input": str(input),
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
    typer.echo(
        f"{n_shops} shop(s), {len(shops)} brushing; wrote {output} in {time.perf_counter() - started:.1f} s",
        err=True,
    )
    if submit:
        submission.cli_submit(
            findings,
            platform=platform,
            key=key,
            namespace=account_namespace,
            severity=severity,
            min_score=submit_min_score,
        )


@app.command("dense-blocks")
def dense_blocks(
    input: Path = typer.Option(..., "--input", "-i", help="Edges, CSV or Parquet, one row per edge."),
    src: str = typer.Option(..., "--src", help="Column of the accounts (buyers, reviewers)."),
    dst: str = typer.Option(..., "--dst", help="Column of the items (shops, products)."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="blocks.json: [{src, dst, score}, …] in order found."
    ),
    blocks: int = typer.Option(
        1, "--blocks", "-k", min=1, help="How many blocks to find, one after another."
    ),
    behaviour: str = typer.Option(
        "order_brushing",
        "--behaviour",
        help="Behaviour of the findings: order_brushing (buyer × shop), fake_review (reviewer × product).",
    ),
    report_html: Path | None = typer.Option(None, "--report-html", help="Findings as an HTML page."),
    report_json: Path | None = typer.Option(None, "--report-json", help="Findings as JSON."),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(),
) -> None:
    """FRAUDAR: dense, camouflage-resistant blocks of accounts × items (刷单 / 虚假评价 rings)."""
    if behaviour not in BEHAVIOURS:
        typer.echo(f"unknown --behaviour {behaviour!r}; one of {', '.join(BEHAVIOURS)}", err=True)
        raise typer.Exit(code=2)
    options.check_options(submit, platform, key)
    started = time.perf_counter()
    try:
        found = fraudar.detect_dense_blocks(str(input), src, dst, k=blocks)
    except InputError as exc:
        raise _fail(exc) from exc
    doc = [{"src": b.src, "dst": b.dst, "score": b.score} for b in found]
    output.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    findings = fraudar.findings_from(found, behaviour=behaviour, src=src, dst=dst)
    meta = {
        "detector": brushing.DETECTOR,
        "input": str(input),
        "src": src,
        "dst": dst,
        "blocks_requested": blocks,
        "blocks_found": len(found),
    }
    _write_reports(
        findings, title="FRAUDAR dense blocks", meta=meta, report_json=report_json, report_html=report_html
    )
    sizes = ", ".join(f"{len(b.src)}×{len(b.dst)} (g={b.score:.3f})" for b in found) or "none (no edges)"
    elapsed = time.perf_counter() - started
    typer.echo(f"{len(found)} block(s): {sizes}; wrote {output} in {elapsed:.1f} s", err=True)
    if submit:
        submission.cli_submit(
            findings,
            platform=platform,
            key=key,
            namespace=account_namespace,
            severity=severity,
            min_score=submit_min_score,
        )
