"""Cells of files people open in a spreadsheet (CSV, XLSX) must never run as formulas.

A name, a reason or an identifier someone typed in ends up in exports. A cell that begins with `=`,
`+`, `-` or `@` is a formula to Excel, LibreOffice and WPS; one that begins with a TAB or a carriage
return becomes one after the spreadsheet strips that character. Such text gets a leading apostrophe
(CSV/formula injection, as OWASP describes it). Numbers and booleans are values, not text: they are
left as they are, so that a spreadsheet still sums them.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Number

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_cell(value: object) -> object:
    """`value` for one cell: text escaped where it would be a formula, numbers and None unchanged."""
    if value is None or isinstance(value, Number):  # bool, int, float, Decimal, numpy scalars
        return value
    return safe_text(value if isinstance(value, str) else str(value))


def safe_row(values: Iterable[object]) -> list[object]:
    """One row for `csv.writer.writerow` or openpyxl's `append`, every cell made safe."""
    return [safe_cell(v) for v in values]
