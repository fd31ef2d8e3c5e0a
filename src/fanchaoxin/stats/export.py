"""Tables of figures as CSV (UTF-8 with BOM, so that Excel shows Chinese) and XLSX (openpyxl, loaded
when a spreadsheet is asked for)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from fanchaoxin.core.spreadsheet import safe_cell

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
    writer.writerow([_cell(c) for c in columns])
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _sheet_cell(value: Any) -> Any:
    # Names and reasons someone typed in must not become formulas (= + - @ TAB CR): core.spreadsheet.
    return safe_cell(value)


def to_xlsx(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, sheet: str = "stats") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    def cell(value: Any) -> Any:
        # XML cannot hold most control characters (openpyxl refuses them and the export would fail);
        # they go first, so that what they hid of a formula is escaped.
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
        return _sheet_cell(value)

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append([cell(c) for c in columns])
    for header in ws[1]:
        header.font = Font(bold=True)
    for row in rows:
        ws.append([cell(row.get(c)) for c in columns])
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
