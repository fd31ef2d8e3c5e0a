"""The monthly report on punishment results: a printable HTML page, and a PDF printed by Chromium.

The page needs no script and no network (inline CSS, HTML bar charts), so headless Chromium prints
exactly what a browser shows. Chinese text needs a CJK font on the machine (Debian fonts-noto-cjk).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session

from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.settings import get_settings
from fanchaoxin.stats import coordination, service

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_CHROMIUM = "/usr/bin/chromium"


class PdfError(RuntimeError):
    """Chromium is missing or could not print the page."""


def pct(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def change(current: int, previous: int) -> Markup:
    """A table cell with the change from the previous month: +3 (+50.0%), −2, or 0."""
    delta = current - previous
    if delta == 0:
        return Markup('<td class="same">0</td>')
    sign, cls = ("+", "up") if delta > 0 else ("−", "down")
    rel = f" ({sign}{100 * abs(delta) / previous:.1f}%)" if previous else ""
    return Markup('<td class="{}">{}{}{}</td>').format(cls, sign, abs(delta), rel)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(pct=pct, change=change)
    return env


def monthly_report(session: Session, month: str, *, today: date | None = None) -> dict[str, Any]:
    """What the monthly report shows: `service.monthly`, and the coordination figures (协同情况) of the
    month per enterprise, as of the same day (the month's last, or today for the current month)."""
    today = today or china_today()
    data = service.monthly(session, month, today=today)
    data["coordination"] = coordination.coordination(
        session,
        today=today,
        start=date.fromisoformat(data["from"]),
        end=date.fromisoformat(data["to"]),
    )
    return data


def render_monthly(report: dict[str, Any]) -> str:
    """The HTML page for `monthly_report(...)`'s result (or `service.monthly`'s, without coordination)."""
    template = _environment().get_template("monthly.html")
    return template.render(r=report, ack_days=get_settings().instruction_ack_working_days)


def find_chromium(path: str | None = None) -> str | None:
    candidate = path or DEFAULT_CHROMIUM
    if Path(candidate).is_file():
        return candidate
    return shutil.which(candidate) if "/" not in candidate else None


def print_pdf(html_path: Path, pdf_path: Path, *, chromium: str | None = None, timeout: float = 120) -> None:
    """Print a local HTML file to PDF with headless Chromium (no network, a throw-away profile)."""
    exe = find_chromium(chromium)
    if exe is None:
        raise PdfError(
            f"Chromium not found at {chromium or DEFAULT_CHROMIUM}; install it "
            "(apt-get install chromium fonts-noto-cjk) or pass --no-pdf"
        )
    pdf_path = pdf_path.resolve()
    tmp_pdf = pdf_path.with_name(f".{pdf_path.name}.part")
    with tempfile.TemporaryDirectory(prefix="fcx-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={tmp_pdf}",
            html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, timeout=timeout, check=False, env=_env(profile), text=True
            )
        except subprocess.TimeoutExpired as exc:
            tmp_pdf.unlink(missing_ok=True)
            raise PdfError(f"Chromium did not finish printing within {timeout:.0f} s") from exc
    if done.returncode != 0 or not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
        tmp_pdf.unlink(missing_ok=True)
        tail = (done.stderr or "").strip().splitlines()[-5:]
        raise PdfError(f"Chromium failed to print (exit {done.returncode}): " + " | ".join(tail))
    with tmp_pdf.open("rb") as fh:
        if fh.read(5) != b"%PDF-":
            tmp_pdf.unlink(missing_ok=True)
            raise PdfError("Chromium wrote something that is not a PDF")
    tmp_pdf.replace(pdf_path)


def _env(profile: str) -> dict[str, str]:
    env = dict(os.environ)
    # Chromium writes caches and crash dumps under HOME; keep them in the throw-away profile.
    env["HOME"] = profile
    return env
