"""Bulk submissions of blacklist entries (批量报送): CSV, XLSX and JSON Lines files → validated entries.

`parse_upload` turns one uploaded file into `(row number, EntryIn)` pairs plus a per-row error report
(DESIGN.md §5: "bulk uploads answer with a per-row error report, never a partial silent import"). It
does no I/O beyond the bytes it is given and touches no database; the caller decides what to do with
a file that has row errors (the API refuses the whole file).

* **CSV** — UTF-8, UTF-8 with BOM, or GBK/GB18030 (what Excel on Chinese Windows writes); comma- or
  tab-separated; header in the first non-blank row.
* **XLSX** — first sheet, header in the first non-blank row; numeric, date and formula cells are read
  as Excel shows them (cached formula results).
* **JSON Lines** — one full `EntryIn` object per line, nested as in the JSON API.

Flattened formats (CSV, XLSX) use one column per field (`COLUMNS`); headers may be the English column
names or the Chinese aliases in `CHINESE_ALIASES`. Row numbers are those a spreadsheet shows: the
header is row 1 and the first data row is row 2 (JSON Lines: the line number). Field names in errors
are column names for flattened formats and JSON paths (as in the JSON API) for JSON Lines.

The column reference for users is `docs/bulk-upload.md`.
"""

from __future__ import annotations

import csv
import difflib
import gc
import io
import itertools
import json
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from pydantic import ValidationError

from fanchaoxin.blacklist.schemas import EntryIn, LiableRole, Role, Service
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.errors import pydantic_error
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise

__all__ = [
    "CHINESE_ALIASES",
    "COLUMNS",
    "CONTACT_COLUMNS",
    "DATE_COLUMNS",
    "GAINS_COLUMNS",
    "IDENTIFIER_COLUMNS",
    "LIABLE_COLUMNS",
    "REQUIRED_COLUMNS",
    "ParsedUpload",
    "RowError",
    "UploadError",
    "detect_format",
    "parse_upload",
]


# --- results ----------------------------------------------------------------------------------------


@dataclass
class RowError:
    """One problem in one row.

    `row`: the spreadsheet row number (header = 1, first data row = 2) or the JSON Lines line number.
    `field`: a column name (CSV/XLSX), a JSON path such as `subject.identifiers[0].value` (JSON Lines),
    `(row)` for the row as a whole, `(identifiers)` for a row with no identifier at all.
    `type`: a stable error code (pydantic's, or one of this module's: `date_format`, `date_invalid`,
    `number_precision_lost`, `no_header`, `identifiers_missing`, `duplicate`, `json_invalid`,
    `json_not_object`).
    """

    row: int
    field: str
    message: str
    type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message, "type": self.type}


@dataclass
class ParsedUpload:
    format: str  # csv | xlsx | jsonl
    encoding: str | None  # csv: utf-8 | utf-8-sig | gbk | gb18030; jsonl: utf-8 | utf-8-sig; xlsx: None
    total_rows: int  # non-blank data rows (valid + invalid); blank rows are skipped and not counted
    entries: list[tuple[int, EntryIn]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every row is valid (the only state in which a submission should be accepted)."""
        return not self.errors

    @property
    def error_rows(self) -> int:
        return len({e.row for e in self.errors})


class UploadError(Exception):
    """The file as a whole cannot be used: unknown format, bad encoding, bad header, empty, too long.

    `field` names the column (or `(header)`) and `row` the row/line where that applies.
    """

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.row = row

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "field": self.field, "row": self.row}


# --- columns ----------------------------------------------------------------------------------------

IDENTIFIER_COLUMNS: tuple[str, ...] = tuple(t.value for t in IdentifierType)
_LIABLE_PARTS = ("name", "resident_id", "phone")
LIABLE_COLUMNS: tuple[str, ...] = tuple(f"{r.value}_{p}" for r in LiableRole for p in _LIABLE_PARTS)
DATE_COLUMNS: tuple[str, ...] = ("document_date", "occurred_from", "occurred_to")
_TEXT_COLUMNS = ("document_number", "issuing_authority", *DATE_COLUMNS, "facts")
# The subject's contact for the notice before listing (告知书, `EntryIn.contact`): column → field.
_CONTACT_FIELDS: dict[str, str] = {
    "contact_email": "email",
    "contact_phone": "phone",
    "contact_address": "postal_address",
    "contact_addressee": "addressee",
}
CONTACT_COLUMNS: tuple[str, ...] = tuple(_CONTACT_FIELDS)
# What the 炒信 gained as the finding establishes it (`EntryIn.gains`, measure 5): whole numbers.
GAINS_COLUMNS: tuple[str, ...] = ("brushed_orders", "points_gained")
COLUMNS: tuple[str, ...] = (
    "subject_kind",
    "subject_name",
    *IDENTIFIER_COLUMNS,
    "behaviours",
    "role",
    "services",
    "severity",
    "basis",
    *_TEXT_COLUMNS,
    *LIABLE_COLUMNS,
    *CONTACT_COLUMNS,
    *GAINS_COLUMNS,
)
REQUIRED_COLUMNS: tuple[str, ...] = (
    "subject_kind",
    "subject_name",
    "behaviours",
    "role",
    "severity",
    "basis",
    "facts",
)

CHINESE_ALIASES: dict[str, tuple[str, ...]] = {
    "subject_kind": ("主体类型",),
    "subject_name": ("主体名称", "名称", "姓名或名称"),
    "uscc": ("统一社会信用代码", "信用代码"),
    "resident_id": ("身份证号", "身份证号码", "居民身份证号码", "公民身份号码"),
    "phone": ("手机号", "手机号码"),
    "email": ("电子邮箱", "邮箱"),
    "domain": ("域名", "网站域名"),
    "app": ("应用包名", "移动应用包名"),
    "platform_account": ("平台账号", "平台账户"),
    "social_account": ("社交媒体账号", "社交账号"),
    "device": ("设备标识", "设备号"),
    "courier_staff": ("寄递物流从业人员", "从业人员工号"),
    "waybill_prefix": ("运单号前缀",),
    "behaviours": ("失信行为", "炒信行为"),
    "role": ("角色", "参与角色"),
    "services": ("提供的服务", "服务类型"),
    "severity": ("严重程度", "失信程度"),
    "basis": ("认定依据",),
    "document_number": ("文书编号", "文书号"),
    "issuing_authority": ("作出机关", "决定机关"),
    "document_date": ("文书日期", "作出日期", "决定日期"),
    "occurred_from": ("行为开始日期", "发生开始日期"),
    "occurred_to": ("行为结束日期", "发生结束日期"),
    "facts": ("事实", "失信事实", "违法事实"),
    "legal_representative_name": ("法定代表人姓名", "法定代表人"),
    "legal_representative_resident_id": ("法定代表人身份证号", "法定代表人身份证号码"),
    "legal_representative_phone": ("法定代表人手机号", "法定代表人手机号码"),
    "principal_name": ("主要负责人姓名", "主要负责人"),
    "principal_resident_id": ("主要负责人身份证号", "主要负责人身份证号码"),
    "principal_phone": ("主要负责人手机号", "主要负责人手机号码"),
    "directly_responsible_name": ("直接责任人姓名", "直接责任人"),
    "directly_responsible_resident_id": ("直接责任人身份证号", "直接责任人身份证号码"),
    "directly_responsible_phone": ("直接责任人手机号", "直接责任人手机号码"),
    "contact_email": ("联系邮箱", "送达邮箱"),
    "contact_phone": ("联系电话", "联系手机", "送达手机号"),
    "contact_address": ("联系地址", "送达地址", "邮寄地址"),
    "contact_addressee": ("收件人",),
    "brushed_orders": ("刷单笔数", "虚假交易笔数"),
    "points_gained": ("获得信用积分", "刷单获得积分"),
}

# Chinese spellings accepted in cells of code columns, beside the codes themselves. Subject kinds,
# behaviours and severities come from the catalogues (their `zh` names).
_ROLE_ZH = {
    "组织者": Role.organizer,
    "参与者": Role.participant,
    "帮助者": Role.facilitator,
    "协助者": Role.facilitator,
}
_SERVICE_ZH = {
    "账号": Service.account,
    "账户": Service.account,
    "数据": Service.data,
    "技术": Service.technical,
    "物流": Service.logistics,
    "资金": Service.funding,
    "信息发布": Service.information_spreading,
    "信息传播": Service.information_spreading,
}


def _header_key(raw: str) -> str:
    s = unicodedata.normalize("NFKC", raw).replace("\ufeff", "").strip().rstrip("*").strip()
    return re.sub(r"[\s\-]+", "_", s).lower()


_HEADER_LOOKUP: dict[str, str] = {c: c for c in COLUMNS}
for _col, _aliases in CHINESE_ALIASES.items():
    for _alias in _aliases:
        _HEADER_LOOKUP[_header_key(_alias)] = _col


def _value_maps() -> dict[str, dict[str, str]]:
    cat = catalogues()
    return {
        "subject_kind": {k.zh: k.code for k in cat.subject_kinds.values()},
        "behaviours": {b.zh: b.code for b in cat.behaviours.values()},
        "severity": {s.zh: s.code for s in cat.severities.values()},
        "role": {k: v.value for k, v in _ROLE_ZH.items()},
        "services": {k: v.value for k, v in _SERVICE_ZH.items()},
        "basis": {name: b.code for b in cat.bases.values() for name in (b.zh, *b.aliases)},
    }


# --- format detection -------------------------------------------------------------------------------

_XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_CSV_TYPES = {"text/csv", "application/csv", "text/comma-separated-values", "text/tab-separated-values"}
_JSONL_TYPES = {
    "application/jsonl",
    "application/x-jsonlines",
    "application/x-ndjson",
    "application/jsonlines",
}
# Sent for anything: decide by content. Windows browsers send application/vnd.ms-excel for .csv files.
_GENERIC_TYPES = {
    "",
    "application/octet-stream",
    "text/plain",
    "application/vnd.ms-excel",
    "binary/octet-stream",
}
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_GENERIC_EXTENSIONS = {"", ".txt", ".dat"}
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024  # a zip bomb guard: far above 100,000 real rows


def _sniff(content: bytes) -> str:
    if content.startswith(b"PK\x03\x04"):
        return "xlsx"
    head = content[:4096].lstrip(b"\xef\xbb\xbf").lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


def detect_format(content: bytes, filename: str | None, media_type: str | None) -> str:
    """`csv`, `xlsx` or `jsonl`, from the file name's extension, then the media type, then the content.

    Content that is a zip archive is always taken as XLSX (no CSV or JSON Lines file starts with
    `PK\\x03\\x04`). Raises `UploadError` for a type that is known not to be supported.
    """
    if content.startswith(_OLE2_MAGIC):
        raise UploadError(
            "this is a legacy Excel .xls workbook or a password-protected file; save it as .xlsx "
            "(without a password) or as CSV (逗号分隔) and upload again"
        )
    sniffed = _sniff(content)
    ext = ""
    if filename:
        name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
        if "." in name:
            ext = name[name.rfind(".") :]
    mt = (media_type or "").split(";", 1)[0].strip().lower()
    if ext == ".xls":
        raise UploadError("legacy .xls workbooks are not supported; save the sheet as .xlsx or CSV")
    if ext in _EXTENSIONS:
        fmt = _EXTENSIONS[ext]
    elif ext in _GENERIC_EXTENSIONS or ext == ".json":
        fmt = sniffed if ext != ".json" or sniffed != "csv" else "jsonl"
    else:
        raise UploadError(
            f"unsupported file type {ext!r}: upload CSV (.csv), Excel (.xlsx) or JSON Lines (.jsonl)"
        )
    if ext in _GENERIC_EXTENSIONS and mt not in _GENERIC_TYPES:
        if mt in _XLSX_TYPES:
            fmt = "xlsx"
        elif mt in _CSV_TYPES:
            fmt = "csv"
        elif mt in _JSONL_TYPES or mt == "application/json":
            fmt = "jsonl"
        else:
            raise UploadError(
                f"unsupported media type {mt!r}: upload CSV (text/csv), Excel (.xlsx) or JSON Lines "
                "(application/jsonl)"
            )
    if sniffed == "xlsx":
        return "xlsx"
    if fmt == "jsonl" and content[:4096].lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"["):
        raise UploadError(
            "the file is a JSON array; JSON Lines has one entry object per line, without [ ] around them"
        )
    if fmt == "xlsx":
        raise UploadError(
            "the file is named or sent as .xlsx but is not an XLSX workbook (not a zip archive)"
        )
    return fmt


# --- text decoding ----------------------------------------------------------------------------------


def _where(content: bytes, offset: int) -> str:
    line = content.count(b"\n", 0, offset) + 1
    return f"byte 0x{content[offset]:02X} at offset {offset} (line {line})"


_UTF8_LEAD = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_UTF8_EVIDENCE = 8


def _decode(content: bytes, *, allow_gbk: bool) -> tuple[str, str]:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")) or content[:4] in (
        b"\x00\x00\xfe\xff",
        b"\xff\xfe\x00\x00",
    ):
        raise UploadError("the file is UTF-16 or UTF-32 encoded; save it as UTF-8 (or GBK) and upload again")
    nul = content.find(b"\x00")
    if nul >= 0:
        raise UploadError(
            f"the file holds a NUL {_where(content, nul)}: it is UTF-16 text or a binary file; save it as "
            "UTF-8 (or GBK) text"
        )
    try:
        text = content.decode("utf-8-sig")
        return text, ("utf-8-sig" if content.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    prefix = content[: utf8_error.start]
    evidence = sum(1 for _ in itertools.islice(_UTF8_LEAD.finditer(prefix), _UTF8_EVIDENCE))
    looks_utf8 = evidence >= _UTF8_EVIDENCE
    if not allow_gbk or looks_utf8:
        # Text with many non-ASCII characters that are valid UTF-8 up to here is UTF-8 with a bad byte,
        # not GBK: decoding it all as GBK could turn it into valid-looking nonsense (乱码) instead of
        # an error. (GBK text rarely passes for UTF-8 beyond 2-4 characters.)
        raise UploadError(
            f"the file is not valid UTF-8: {_where(content, utf8_error.start)}; save it as UTF-8"
            + (" (the text before that point is UTF-8)" if looks_utf8 and allow_gbk else "")
        )
    gbk_error: UnicodeDecodeError | None = None
    for encoding in ("gbk", "gb18030"):
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            gbk_error = gbk_error or exc
    assert gbk_error is not None
    raise UploadError(
        f"the file is neither UTF-8 ({_where(content, utf8_error.start)}) nor GBK "
        f"({_where(content, gbk_error.start)}); save it as UTF-8 or GBK text"
    )


# --- cells ------------------------------------------------------------------------------------------

_LIST_SPLIT = re.compile(r"[;,|；，、\n]")
_IDENT_SPLIT = re.compile(r"[;；\n]")
_SCIENTIFIC = re.compile(r"[+-]?\d(?:\.\d+)?[eE]\+\d{1,3}")
_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_HINT = "expected a date like 2024-03-15 (also 2024/3/15, 2024年3月15日 or 20240315)"
_PRECISION_LOST = (
    "the cell is a number too long for Excel, which keeps only 15 significant digits, so the last digits "
    "are lost; format the column as text (设置单元格格式 → 文本) and enter the value again"
)


# Columns whose numbers are identifiers: digits lost to floating point cannot be guessed back.
_NUMERIC_SENSITIVE = (
    frozenset(IDENTIFIER_COLUMNS) | {c for c in LIABLE_COLUMNS if not c.endswith("_name")} | {"contact_phone"}
)


class _CellError(Exception):
    def __init__(self, message: str, type_: str) -> None:
        super().__init__(message)
        self.message = message
        self.type = type_


def _number_text(value: int | float, column: str) -> str:
    if isinstance(value, float):
        if not value.is_integer():
            if column in _NUMERIC_SENSITIVE:
                raise _CellError(
                    "the cell is a decimal number, not an identifier; format the column as text",
                    "number_precision_lost",
                )
            return repr(value)
        if abs(value) >= 1e15 and column in _NUMERIC_SENSITIVE:
            raise _CellError(_PRECISION_LOST, "number_precision_lost")
        return str(int(value))
    return str(value)


def _cell_text(value: Any, column: str) -> str | None:
    """A cell as stripped text; `None` when empty. Raises `_CellError` for a mangled number."""
    if value is None:
        return None
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if _SCIENTIFIC.fullmatch(s) and column in _NUMERIC_SENSITIVE:
            # A CSV saved by Excel after it turned a long number into 1.10101E+17.
            raise _CellError(_PRECISION_LOST, "number_precision_lost")
        return s
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return _number_text(value, column)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip() or None


def _cell_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 10_000_000 <= value <= 99_991_231:
        value = str(value)
    if not isinstance(value, str):
        raise _CellError(f"{_DATE_HINT}; format the cell as a date or as text", "date_format")
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)  # the common case, fast
        except ValueError:
            pass
    s = unicodedata.normalize("NFKC", value).strip()
    if not s:
        return None
    m = _DATE.fullmatch(s) or _DATE_COMPACT.fullmatch(s)
    if not m:
        raise _CellError(_DATE_HINT, "date_format")
    y, mo, d = (int(g) for g in m.groups())
    try:
        return date(y, mo, d)
    except ValueError:
        raise _CellError(f"{y:04d}-{mo:02d}-{d:02d} is not a real date", "date_invalid") from None


_THOUSANDS = re.compile(r"[,，\s]")
_COUNT_HINT = "expected a whole number such as 1200 (digits only; 1,200 is read as 1200)"


def _cell_count(value: Any) -> int:
    """A count cell (brushed orders, points gained) as a whole number, or `_CellError`."""
    if isinstance(value, bool):
        raise _CellError(_COUNT_HINT, "int_parsing")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _CellError(_COUNT_HINT, "int_parsing")
    text = _THOUSANDS.sub("", unicodedata.normalize("NFKC", str(value)))
    if not text.isdigit():
        raise _CellError(_COUNT_HINT, "int_parsing")
    return int(text)


def _code(s: str, aliases: dict[str, str]) -> str:
    if s.isascii():
        return s.lower()
    s = unicodedata.normalize("NFKC", s).strip()
    return aliases.get(s) or (s.lower() if s.isascii() else s)


# --- building one entry from a flattened row --------------------------------------------------------


@dataclass
class _RowContext:
    """How the nested entry built from a row maps back to its columns."""

    subject_idents: list[tuple[str, int, int]] = field(default_factory=list)  # (column, position, count)
    person_roles: list[str] = field(default_factory=list)
    person_idents: list[list[tuple[str, int, int]]] = field(default_factory=list)
    filled_liable: list[str] = field(default_factory=list)


_LIABLE_SET = frozenset(LIABLE_COLUMNS)


def _split(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [p.strip() for p in pattern.split(text) if p.strip()]


class _Flattened:
    """Header resolution and row → nested dict for CSV and XLSX."""

    def __init__(self, header: list[Any], row: int) -> None:
        self.header_row = row
        names = ["" if h is None else h if isinstance(h, str) else _cell_text(h, "") or "" for h in header]
        self.columns: list[str | None] = []
        unknown: list[str] = []
        seen: dict[str, str] = {}
        for raw in names:
            key = _header_key(str(raw))
            if not key:
                self.columns.append(None)
                continue
            col = _HEADER_LOOKUP.get(key)
            if col is None:
                hint = difflib.get_close_matches(key, list(_HEADER_LOOKUP), n=1, cutoff=0.75)
                unknown.append(
                    f"{raw.strip()!r}" + (f" (did you mean {_HEADER_LOOKUP[hint[0]]!r}?)" if hint else "")
                )
                self.columns.append(None)
                continue
            if col in seen:
                raise UploadError(
                    f"column {col!r} appears twice (as {seen[col]!r} and {raw.strip()!r})",
                    field="(header)",
                    row=row,
                )
            seen[col] = raw.strip()
            self.columns.append(col)
        if unknown:
            raise UploadError(
                f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                "the columns are listed in docs/bulk-upload.md",
                field="(header)",
                row=row,
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in seen]
        if not any(c in seen for c in IDENTIFIER_COLUMNS):
            missing.append("at least one identifier column (" + ", ".join(IDENTIFIER_COLUMNS) + ")")
        if missing:
            raise UploadError(f"missing required column(s): {', '.join(missing)}", field="(header)", row=row)
        self.present = set(seen)
        self.unnamed = [i for i, c in enumerate(self.columns) if c is None]
        self.values = _value_maps()

    def build(self, cells: list[Any] | tuple[Any, ...]) -> _Built | None:
        """The row as nested `EntryIn` data with its column map and the errors found in the cells
        themselves; `None` for an entirely blank row."""
        pre: list[tuple[str, str, str]] = []  # (column, message, type)
        raw: dict[str, Any] = {}  # column → non-empty cell (strings stripped)
        cells = cells if isinstance(cells, list | tuple) else list(cells)
        for col, value in zip(self.columns, cells, strict=False):
            if value is None or value == "" or col is None:
                continue
            if value.__class__ is str:
                value = value.strip()
                if not value:
                    continue
            raw[col] = value
        for i in (*self.unnamed, *range(len(self.columns), len(cells))):
            value = cells[i] if i < len(cells) else None
            if value is not None and (value.__class__ is not str or value.strip()):
                pre.append(("(row)", f"column {i + 1} has a value but no header", "no_header"))
        if not raw and not pre:
            return None

        def text(col: str) -> str | None:
            v = raw.get(col)
            if v is None or (v.__class__ is str and col not in _NUMERIC_SENSITIVE):
                return v
            try:
                return _cell_text(v, col)
            except _CellError as exc:
                pre.append((col, exc.message, exc.type))
                return None

        ctx = _RowContext()
        data: dict[str, Any] = {}
        subject: dict[str, Any] = {}
        v = text("subject_kind")
        if v is not None:
            subject["kind"] = _code(v, self.values["subject_kind"])
        v = text("subject_name")
        if v is not None:
            subject["name"] = v
        idents: list[dict[str, str]] = []
        ident_cell_error = False
        for col in IDENTIFIER_COLUMNS:
            if col not in raw:
                continue
            v = text(col)
            if v is None:
                ident_cell_error = True
                continue
            parts = _split(v, _IDENT_SPLIT)
            for pos, part in enumerate(parts, start=1):
                idents.append({"type": col, "value": part})
                ctx.subject_idents.append((col, pos, len(parts)))
        if not idents and not ident_cell_error:
            filled = ", ".join(c for c in IDENTIFIER_COLUMNS if c in self.present)
            pre.append(
                ("(identifiers)", f"no identifier: fill at least one of {filled}", "identifiers_missing")
            )
        subject["identifiers"] = idents
        data["subject"] = subject

        for col in ("behaviours", "services"):
            v = text(col)
            if v is not None:
                data[col] = [_code(p, self.values[col]) for p in _split(v, _LIST_SPLIT)]
        for col in ("role", "severity", "basis"):
            v = text(col)
            if v is not None:
                data[col] = _code(v, self.values[col])
        for col in ("document_number", "issuing_authority", "facts"):
            v = text(col)
            if v is not None:
                data[col] = v
        for col in DATE_COLUMNS:
            if col in raw:
                try:
                    data[col] = _cell_date(raw[col])
                except _CellError as exc:
                    pre.append((col, exc.message, exc.type))

        if not _LIABLE_SET.isdisjoint(raw):
            persons = self._persons(raw, text, ctx, pre)
            if persons:
                data["liable_persons"] = persons
        contact = {key: v for col, key in _CONTACT_FIELDS.items() if (v := text(col)) is not None}
        if contact:
            data["contact"] = contact
        gains: dict[str, int] = {}
        for col in GAINS_COLUMNS:
            if col in raw:
                try:
                    gains[col] = _cell_count(raw[col])
                except _CellError as exc:
                    pre.append((col, exc.message, exc.type))
        if gains:
            data["gains"] = gains
        return _Built(data, ctx, pre, ident_cell_error)

    @staticmethod
    def _persons(
        raw: dict[str, Any],
        text: Callable[[str], str | None],
        ctx: _RowContext,
        pre: list[tuple[str, str, str]],
    ) -> list[dict[str, Any]]:
        persons: list[dict[str, Any]] = []
        for role in LiableRole:
            prefix = role.value
            filled = [c for c in (f"{prefix}_name", f"{prefix}_resident_id", f"{prefix}_phone") if c in raw]
            if not filled:
                continue
            ctx.filled_liable.extend(filled)
            n_pre = len(pre)
            name = text(f"{prefix}_name")
            p_idents: list[dict[str, str]] = []
            cols: list[tuple[str, int, int]] = []
            for part in ("resident_id", "phone"):
                col = f"{prefix}_{part}"
                v = text(col)
                if v is None:
                    continue
                values = _split(v, _IDENT_SPLIT)
                for pos, value in enumerate(values, start=1):
                    p_idents.append({"type": part, "value": value})
                    cols.append((col, pos, len(values)))
            if not p_idents:
                if len(pre) == n_pre:  # not already explained by an unreadable cell
                    pre.append(
                        (
                            f"{prefix}_resident_id",
                            "a liable person needs a resident ID or a phone number: "
                            f"fill {prefix}_resident_id or {prefix}_phone",
                            "identifiers_missing",
                        )
                    )
                continue
            person: dict[str, Any] = {"role": prefix, "identifiers": p_idents}
            if name is not None:
                person["name"] = name
            persons.append(person)
            ctx.person_roles.append(prefix)
            ctx.person_idents.append(cols)
        return persons


@dataclass
class _Built:
    data: dict[str, Any]
    ctx: _RowContext
    pre: list[tuple[str, str, str]]  # (column, message, type) found in the cells themselves
    ident_cell_error: bool  # an identifier cell was unreadable: "no identifier" is a consequence, not news


_SUBJECT_IDENT = re.compile(r"subject\.identifiers\[(\d+)\]")
_PERSON = re.compile(r"liable_persons\[(\d+)\](?:\.(\w+))?(?:\[(\d+)\])?")
_LIST_ITEM = re.compile(r"(behaviours|services)\[\d+\]")


def _with_position(message: str, pos: int, count: int) -> str:
    return f"value {pos} of {count} in the cell: {message}" if count > 1 else message


def _column_error(err: dict[str, Any], ctx: _RowContext) -> tuple[str, str]:
    """Map a nested field path back to the column of a flattened row."""
    f: str = err["field"]
    msg: str = err["message"]
    if not f:
        return "(row)", msg
    if f in ("subject.kind", "subject.name"):
        return "subject_" + f.split(".")[1], msg
    m = _SUBJECT_IDENT.match(f)
    if m:
        i = int(m.group(1))
        if i < len(ctx.subject_idents):
            col, pos, count = ctx.subject_idents[i]
            return col, _with_position(msg, pos, count)
    if f.startswith("subject.identifiers"):
        return "(identifiers)", msg
    m = _PERSON.match(f)
    if m:
        j = int(m.group(1))
        if j < len(ctx.person_roles):
            role = ctx.person_roles[j]
            if (
                m.group(2) == "identifiers"
                and m.group(3) is not None
                and int(m.group(3)) < len(ctx.person_idents[j])
            ):
                col, pos, count = ctx.person_idents[j][int(m.group(3))]
                return col, _with_position(msg, pos, count)
            if m.group(2) == "identifiers":
                return f"{role}_resident_id", msg
            return f"{role}_name", msg
    if f == "liable_persons":
        return (ctx.filled_liable[0] if ctx.filled_liable else "legal_representative_name"), msg
    if f.startswith("contact"):
        # contact.email → contact_email; the contact as a whole names its first field in the message.
        key = f.split(".", 1)[1] if "." in f else msg.split(":", 1)[0]
        column = {v: k for k, v in _CONTACT_FIELDS.items()}.get(key, "contact_email")
        return column, msg
    if f.startswith("gains."):
        return f.split(".", 1)[1], msg
    m = _LIST_ITEM.match(f)
    if m:
        return m.group(1), msg
    if f.startswith("subject"):
        return "subject_kind", msg
    return f, msg


# --- validation shared by every format --------------------------------------------------------------

_IDENT_FIELD = re.compile(r"^(subject|liable_persons\[\d+\])\.identifiers\[\d+\](\.value)?$")


def _identifier_errors(owner: Any, kind: str | None, prefix: str) -> list[dict[str, Any]]:
    """Every identifier error of one subject or liable person (the schema stops at the first)."""
    if not isinstance(owner, dict) or not isinstance(owner.get("identifiers"), list):
        return []
    allowed = None
    if kind is not None and kind in catalogues().subject_kinds:
        allowed = catalogues().subject_kinds[kind].identifiers
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i, ident in enumerate(owner["identifiers"]):
        if not isinstance(ident, dict):
            continue
        t, v = ident.get("type"), ident.get("value")
        if t not in IDENTIFIER_COLUMNS or not isinstance(v, str) or not 1 <= len(v.strip()) <= 200:
            continue  # reported by pydantic as a field error
        t = IdentifierType(t)
        if allowed is not None and t not in allowed:
            out.append(
                {
                    "field": f"{prefix}.identifiers[{i}]",
                    "message": f"a subject of kind {kind} cannot have a {t.value} identifier "
                    f"(allowed: {', '.join(a.value for a in allowed)})",
                    "type": "value_error",
                }
            )
            continue
        try:
            value = normalise(t, v)
        except IdentifierError as exc:
            out.append(
                {"field": f"{prefix}.identifiers[{i}].value", "message": str(exc), "type": "value_error"}
            )
            continue
        if (t.value, value) in seen:
            out.append(
                {
                    "field": f"{prefix}.identifiers[{i}]",
                    "message": f"duplicate {t.value} identifier",
                    "type": "value_error",
                }
            )
        seen.add((t.value, value))
    return out


def _validate(data: Any) -> tuple[EntryIn | None, list[dict[str, Any]]]:
    try:
        return EntryIn.model_validate(data), []
    except ValidationError as exc:
        errors = [pydantic_error(e["loc"], e["msg"], e["type"]) for e in exc.errors(include_url=False)]
    if not isinstance(data, dict):
        return None, errors
    # The schema's model validators stop at the first bad identifier; find all of them.
    mine: list[dict[str, Any]] = []
    subject = data.get("subject")
    if isinstance(subject, dict):
        kind = subject.get("kind") if isinstance(subject.get("kind"), str) else None
        mine += _identifier_errors(subject, kind, "subject")
    persons = data.get("liable_persons")
    if isinstance(persons, list):
        for j, person in enumerate(persons):
            mine += _identifier_errors(person, "individual", f"liable_persons[{j}]")
    if mine:
        errors = [
            e for e in errors if not (_IDENT_FIELD.match(e["field"]) and e["type"] == "value_error")
        ] + mine
    return None, errors


def _idents_key(identifiers: list[Any]) -> frozenset[tuple[str, str]]:
    return frozenset((i.type.value, i.value) for i in identifiers)


_KEY_EXCLUDE: Any = {"subject": {"identifiers"}, "services": True, "liable_persons": True}


def _dedup_key(entry: EntryIn) -> tuple[Any, ...]:
    """Equal for two entries with the same normalised content, identifiers and services in any order.

    Every field takes part: the scalar ones through pydantic's JSON (fast, and new fields are
    included without change here), the lists whose order carries no meaning as sets.
    """
    persons = frozenset(
        (p.model_dump_json(exclude={"identifiers"}), _idents_key(p.identifiers)) for p in entry.liable_persons
    )
    return (
        entry.model_dump_json(exclude=_KEY_EXCLUDE),
        _idents_key(entry.subject.identifiers),
        frozenset(entry.services),
        persons,
    )


_YOUNG_GC_EVERY = 5_000


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause automatic garbage collection while a file is parsed.

    Every row leaves a few dozen long-lived objects (the validated entry); with automatic
    collection on, the full collections over that growing heap took about a third of the time of a
    100,000-row upload. `_Collector.count` still collects the young generations every few thousand
    rows, so the cycles of error rows are reclaimed. The collector's state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Collector:
    def __init__(self, fmt: str, encoding: str | None, max_rows: int) -> None:
        self.result = ParsedUpload(format=fmt, encoding=encoding, total_rows=0)
        self.max_rows = max_rows
        self.seen: dict[Any, int] = {}

    def count(self, row: int) -> None:
        self.result.total_rows += 1
        if self.result.total_rows % _YOUNG_GC_EVERY == 0:
            gc.collect(1)  # the cycles error rows leave behind (exceptions ↔ tracebacks); see _gc_paused
        if self.result.total_rows > self.max_rows:
            raise UploadError(
                f"more than {self.max_rows:,} data rows; split the file into smaller uploads", row=row
            )

    def add(self, row: int, entry: EntryIn | None, errors: list[RowError]) -> None:
        if entry is not None and not errors:
            key = _dedup_key(entry)
            first = self.seen.setdefault(key, row)
            if first != row:
                errors = [RowError(row, "(row)", f"duplicate of row {first}", "duplicate")]
            else:
                self.result.entries.append((row, entry))
        self.result.errors.extend(errors)


# --- formats ----------------------------------------------------------------------------------------


def _is_blank(cells: Iterable[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _parse_rows(rows: Iterator[tuple[int, list[Any] | tuple[Any, ...]]], out: _Collector) -> ParsedUpload:
    header: _Flattened | None = None
    for row_no, cells in rows:
        if header is None:
            if not _is_blank(cells):
                header = _Flattened(list(cells), row_no)
            continue
        built = header.build(cells)
        if built is None:
            continue
        out.count(row_no)
        # Errors that only follow from a cell already reported (a dropped date, a mangled number).
        suppress = {c for c, _, _ in built.pre} | ({"(identifiers)"} if built.ident_cell_error else set())
        errors = [RowError(row_no, c, m, t) for c, m, t in built.pre]
        entry, verrs = _validate(built.data)
        for e in verrs:
            col, msg = _column_error(e, built.ctx)
            if col in suppress:
                continue
            if col in header.values and e["type"] in ("value_error", "enum") and "'" in msg:
                msg += f" (also accepted in Chinese: {'、'.join(header.values[col])})"
            errors.append(RowError(row_no, col, msg, e["type"]))
        out.add(row_no, entry, errors)
    if header is None:
        raise UploadError("the file is empty")
    if out.result.total_rows == 0:
        raise UploadError("the file has a header but no data rows", row=header.header_row + 1)
    return out.result


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row_no = 0
    try:
        for cells in reader:
            row_no += 1
            yield row_no, cells
    except csv.Error as exc:
        raise UploadError(f"malformed CSV near line {reader.line_num}: {exc}", row=row_no + 1) from exc


def _parse_csv(content: bytes, max_rows: int) -> ParsedUpload:
    text, encoding = _decode(content, allow_gbk=True)
    return _parse_rows(_csv_rows(text), _Collector("csv", encoding, max_rows))


def _parse_xlsx(content: bytes, max_rows: int) -> ParsedUpload:
    import openpyxl  # a dependency of uploads only

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            if sum(i.file_size for i in zf.infolist()) > MAX_XLSX_UNCOMPRESSED:
                raise UploadError("the workbook expands to more than 512 MiB; split it or upload CSV")
    except zipfile.BadZipFile as exc:
        raise UploadError(f"not a readable XLSX workbook: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise UploadError(f"not a readable XLSX workbook: {type(exc).__name__}: {exc}") from exc
    try:
        if not wb.worksheets:
            raise UploadError("the workbook has no sheet")
        sheet = wb.worksheets[0]
        # Read-only mode trusts the sheet's <dimension> element, which some writers get wrong (e.g.
        # "A1"); rows and columns beyond it would be dropped without a word.
        sheet.reset_dimensions()

        def rows() -> Iterator[tuple[int, tuple[Any, ...]]]:
            try:
                yield from enumerate(sheet.iter_rows(values_only=True), start=1)
            except (KeyError, ValueError, zipfile.BadZipFile) as exc:
                raise UploadError(f"the first sheet cannot be read: {type(exc).__name__}: {exc}") from exc

        return _parse_rows(rows(), _Collector("xlsx", None, max_rows))
    finally:
        wb.close()


def _parse_jsonl(content: bytes, max_rows: int) -> ParsedUpload:
    text, encoding = _decode(content, allow_gbk=False)
    out = _Collector("jsonl", encoding, max_rows)
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        out.count(line_no)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.add(
                line_no,
                None,
                [
                    RowError(
                        line_no, "(row)", f"malformed JSON: {exc.msg} at column {exc.colno}", "json_invalid"
                    )
                ],
            )
            continue
        if not isinstance(obj, dict):
            out.add(
                line_no,
                None,
                [RowError(line_no, "(row)", "each line must be one JSON object {…}", "json_not_object")],
            )
            continue
        entry, verrs = _validate(obj)
        out.add(
            line_no, entry, [RowError(line_no, e["field"] or "(row)", e["message"], e["type"]) for e in verrs]
        )
    if out.result.total_rows == 0:
        raise UploadError("the file is empty")
    return out.result


_PARSERS: dict[str, Callable[[bytes, int], ParsedUpload]] = {
    "csv": _parse_csv,
    "xlsx": _parse_xlsx,
    "jsonl": _parse_jsonl,
}


def parse_upload(
    content: bytes, *, filename: str | None, media_type: str | None, max_rows: int = 100_000
) -> ParsedUpload:
    """Parse and validate one bulk upload of blacklist entries.

    Returns every valid entry with its row number and every error of every row (a row with an error
    contributes no entry; a row identical to an earlier one is reported as `duplicate of row N`).
    Raises `UploadError` when the file as a whole cannot be used.
    """
    if not content or content.isspace():
        raise UploadError("the file is empty")
    fmt = detect_format(content, filename, media_type)
    with _gc_paused():
        return _PARSERS[fmt](content, max_rows)
