"""Routes of the statistics API (`/v1/stats`): JSON, or `?format=csv` / `?format=xlsx` downloads."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.permissions import PLATFORM, STATS_ENTRY_READERS, STATS_MEASURE_READERS, own_figures_only
from fanchaoxin.stats import service
from fanchaoxin.stats.export import columns_of, to_csv, to_xlsx

router = APIRouter(prefix="/v1/stats", tags=["statistics"])

FORMATS = ("json", "csv", "xlsx")
MEASURE_DIMENSIONS = ("enterprise", "measure")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _bad(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"{field}: {message}", errors=[{"in": "query", "field": field, "type": "value", "message": message}]
    )


def _format(value: str) -> str:
    fmt = value.strip().lower()
    if fmt not in FORMATS:
        raise _bad("format", f"unknown format {value!r}; one of {', '.join(FORMATS)}")
    return fmt


def _date(field: str, value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise _bad(field, f"expected a date YYYY-MM-DD, got {value!r}") from exc


def _period(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    lo, hi = _date("from", start), _date("to", end)
    if lo is not None and hi is not None and hi < lo:
        raise _bad("to", f"{hi.isoformat()} is before from {lo.isoformat()}")
    return lo, hi


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _bad(field, f"unknown value {value!r}; one of {', '.join(allowed)}")
    return value


def _filename(*parts: str | date | None) -> str:
    return "fcx-stats-" + "-".join(str(p) for p in parts if p)


def _reply(
    fmt: str,
    body: dict[str, Any],
    rows: list[dict[str, Any]],
    name: str,
    *,
    columns: tuple[str, ...] = (),
    sheet: str = "stats",
) -> Any:
    if fmt == "json":
        return body
    cols = columns_of(rows, columns)
    if fmt == "csv":
        return Response(
            to_csv(rows, cols),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        to_xlsx(rows, cols, sheet=sheet),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


_FORMAT = Query("json", description="json, csv (UTF-8 with BOM) or xlsx")
_FROM = Query(None, alias="from", description="First day (YYYY-MM-DD, Beijing time), inclusive.")
_TO = Query(None, alias="to", description="Last day (YYYY-MM-DD, Beijing time), inclusive.")


@router.get(
    "/entries",
    summary="Entries by behaviour, severity, basis, list, month, status or subject kind",
    description="`by=list` counts the two lists apart: `public` (the public 失信 list) and `shared` (the "
    "market-shared list of the participating enterprises).",
)
def entries(
    session: Session = DB,
    _: Principal = allow(*STATS_ENTRY_READERS),
    by: str = Query(..., description=", ".join(service.DIMENSIONS)),
    start: str | None = _FROM,
    end: str | None = _TO,
    published_only: bool = Query(False, description="Count published entries; the period is on publication."),
    format: str = _FORMAT,
) -> Any:
    fmt = _format(format)
    dim = _choice("by", by, service.DIMENSIONS)
    lo, hi = _period(start, end)
    rows = service.entries_by(session, dim, start=lo, end=hi, published_only=published_only)
    body = {
        "by": dim,
        "from": lo.isoformat() if lo else None,
        "to": hi.isoformat() if hi else None,
        "published_only": published_only,
        "total": sum(r["count"] for r in rows),
        "rows": rows,
    }
    name = _filename("entries", dim, "published" if published_only else None, lo, hi)
    return _reply(fmt, body, rows, name, columns=("key", "label_zh", "label_en", "count"), sheet=dim)


@router.get("/measures", summary="Joint-punishment instructions by addressee or by measure")
def measures(
    session: Session = DB,
    principal: Principal = allow(*STATS_MEASURE_READERS),
    by: str = Query("enterprise", description="enterprise (each addressee) or measure"),
    start: str | None = _FROM,
    end: str | None = _TO,
    format: str = _FORMAT,
) -> Any:
    fmt = _format(format)
    dim = _choice("by", by, MEASURE_DIMENSIONS)
    lo, hi = _period(start, end)
    # An enterprise sees its own figures only; platform staff and departments see every addressee.
    own = principal.org_id if own_figures_only(principal) else None
    if dim == "enterprise":
        rows = service.measures_by_enterprise(session, start=lo, end=hi, org_id=own)
        cols: tuple[str, ...] = ("org_id", "org_name", "kind")
    else:
        rows = service.measures_by_code(session, start=lo, end=hi, org_id=own)
        cols = ("code", "number", "name_zh", "name_en")
    body = {"by": dim, "from": lo.isoformat() if lo else None, "to": hi.isoformat() if hi else None}
    body["rows"] = rows
    return _reply(fmt, body, rows, _filename("measures", dim, lo, hi), columns=cols, sheet=dim)


def _case_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for case_type in ("objections", "reports", "repairs"):
        block = data[case_type]
        for figure in ("open", "due_soon", "overdue"):
            rows.append({"case": case_type, "figure": figure, "count": block[figure]})
        for status, n in block["by_status"].items():
            rows.append({"case": case_type, "figure": f"status:{status}", "count": n})
    return rows


@router.get("/cases", summary="Objections, reports and repair applications: open, due soon, overdue")
def case_figures(session: Session = DB, _: Principal = allow(*PLATFORM), format: str = _FORMAT) -> Any:
    fmt = _format(format)
    data = service.cases(session)
    return _reply(fmt, data, _case_rows(data), _filename("cases", data["today"]), sheet="cases")


def _public_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    # The first row says which list the figures count (the public 失信 list only).
    counted = data["list"]
    rows: list[dict[str, Any]] = [
        {"section": "list", "key": counted["code"], "label_zh": counted["label_zh"],
         "label_en": counted["label_en"], "count": data["in_force"]["total"]},
        {"section": "in_force", "key": "total", "label_zh": "在列总数", "label_en": "Total in force",
         "count": data["in_force"]["total"]},
    ]  # fmt: skip
    for part in ("by_behaviour", "by_subject_kind", "by_severity"):
        for r in data["in_force"][part]:
            rows.append({"section": f"in_force.{part}", **r})
    for section in ("published", "revoked_after_objection", "repaired", "expired"):
        for key, n in data[section].items():
            rows.append({"section": section, "key": key, "label_zh": "", "label_en": "", "count": n})
    return rows


def _public_summary(request: Request, session: Session) -> dict[str, Any]:
    return service.public_summary_cached(request.app.state, session)


@router.get(
    "/public",
    summary="Aggregate figures for the public statistics page (no names, no identifiers)",
    description="The public 失信 list only (entries on an administrative penalty or a judicial decision); "
    "`list` names it. The market-shared list of the participating enterprises is never counted here.",
)
def public(
    request: Request, session: Session = DB, _: Principal = allow_public(), format: str = _FORMAT
) -> Any:
    fmt = _format(format)
    data = _public_summary(request, session)
    return _reply(fmt, data, _public_rows(data), _filename("public", data["as_of"]), sheet="public")
