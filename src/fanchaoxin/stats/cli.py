"""`fcx report monthly --month 2026-10`: the periodic report on punishment results, as HTML and PDF.

Wire it in `fanchaoxin/cli.py` with `app.add_typer(report_app, name="report")`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fanchaoxin.core.cli import database
from fanchaoxin.stats import service
from fanchaoxin.stats.report import PdfError, monthly_report, print_pdf, render_monthly

report_app = typer.Typer(help="Periodic statistics reports (统计报告).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@report_app.command("monthly")
def monthly(
    month: Annotated[str, typer.Option("--month", help="The month to report, YYYY-MM (Beijing time).")],
    output: Annotated[
        Path, typer.Option("--output", help="Folder for the report files (created if missing).")
    ] = Path("var/reports"),
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF with headless Chromium.")
    ] = True,
    chromium: Annotated[
        str, typer.Option("--chromium", envvar="FCX_CHROMIUM", help="The Chromium executable.")
    ] = "/usr/bin/chromium",
) -> None:
    """Entries published, revoked, expired and repaired; measures and feedback; objections and reports;
    coordination per enterprise."""
    try:
        service.parse_month(month)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] --month: {str(exc).removeprefix('month: ')}")
        raise typer.Exit(1) from exc
    db = database()
    try:
        with db.session() as s:
            data = monthly_report(s, month)
    finally:
        db.dispose()
    html = render_monthly(data)
    output.mkdir(parents=True, exist_ok=True)
    html_path = output / f"fcx-monthly-{data['month']}.html"
    part = html_path.with_name(f".{html_path.name}.part")
    part.write_text(html, encoding="utf-8")
    part.replace(html_path)
    console.print(f"HTML: {html_path}")
    if pdf:
        pdf_path = html_path.with_suffix(".pdf")
        try:
            print_pdf(html_path, pdf_path, chromium=chromium)
        except PdfError as exc:
            err.print(f"[bold red]error:[/] PDF: {exc}")
            raise typer.Exit(1) from exc
        console.print(f"PDF:  {pdf_path}")
    e = data["entries"]
    console.print(
        f"{data['month']}: {e['published']} published, {e['revoked']} revoked, {e['expired']} expired, "
        f"{e['repaired']} repaired; {data['measures']['issued']} instructions issued"
    )
