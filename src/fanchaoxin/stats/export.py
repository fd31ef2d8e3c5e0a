"""Tables of figures as CSV (UTF-8 with BOM, so that Excel shows Chinese) and XLSX (openpyxl, loaded
when a spreadsheet is asked for)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

BOM = "\ufeff"


def columns_of(rows: Sequence[dict[str, Any]], preferred: Sequence[str] = ()) -> list[str]:
    """The columns of a list of rows: `preferred` first, then every other key in order of appearance."""
    cols = list(preferred)
    for row in rows:
        for k in row:
            if k not in cols:
                cols.append(k)
    return cols


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _sheet_cell(value)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    buf.write(BOM)
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _sheet_cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    # A leading = + - @ would make a spreadsheet formula of a name someone typed in (CSV/formula injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_xlsx(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, sheet: str = "stats") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append(list(columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([_sheet_cell(row.get(c)) for c in columns])
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
