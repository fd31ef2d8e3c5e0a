"""Reading an enterprise's own data (CSV, Parquet or JSON Lines) for the detectors, strictly.

`read_table` returns a **lazy DuckDB relation** (`duckdb.DuckDBPyRelation`) whose columns carry the
requested types. The whole file has been scanned and validated once before it returns, so anything
wrong with the input surfaces here as an `InputError` — never later as a DuckDB error half-way through
a detector, and never as rows quietly dropped (per DESIGN.md §5: a bulk input answers with a per-row
error, never a partial silent import). Each later query on the relation re-reads the file, streaming:
memory stays flat however big the file is, which is what lets a detector sort 10⁸ orders on DuckDB.
Every error names the file, and where it is about one value the data row, the physical line (CSV and
JSON Lines) and the column *as the file spells it*.

Formats: Parquet by its magic bytes or a ``.parquet``/``.pq`` suffix; JSON Lines by a ``.jsonl``,
``.ndjson`` or ``.json`` suffix; anything else is CSV.

Column mappings (``columns``, from ``--col NAME=COLUMN``)
- ``columns`` maps the name a detector reads to the column the file has (``{"orderid": "order_id"}``).
  The relation carries the detector's names; the file's column a mapping names must exist (an error
  names both), and every error about its values names the file's column, the one a person can find.
  A file column that happens to carry a name the mapping gives to another column is left out of the
  relation (the mapping says which one the detector means).

CSV rules
- Encoding: UTF-8 (with or without BOM) is tried first, strictly over the whole file; then GBK (the
  encoding Chinese spreadsheet software still writes by default), which is transcoded to a temporary
  UTF-8 copy. Anything else (UTF-16, Latin-1 that is not accidentally valid GBK, binary) is an error
  naming the first undecodable byte. Latin-1 text can happen to be valid GBK (``M\\xfcller`` decodes
  as ``M黮ler``): no byte-level test can tell those apart, so such a file is read as GBK.
- The first line is the header. The delimiter is the first of ``, TAB ; |`` under which the header
  holds every required column (after mapping: the file's names are looked for). Quotes are RFC 4180
  (``"`` doubled inside a quoted field).
- Blank lines are skipped (DuckDB does so); row numbers in errors count data rows, 1-based, so
  ``data row 1`` is the first record after the header, and the physical file line is named too.
- An empty field is NULL; a NULL in a required column is an error unless the column is in `nullable`.

JSON Lines rules
- UTF-8, one JSON object per line; blank lines are skipped. The keys of the first object are the
  file's columns (as a CSV header is). A line that is not a JSON object is an error naming the line;
  a required key missing from a line is an error naming the line and the key; ``null`` is an empty
  value. Values are read as text and typed by the rules below (a JSON number ``1577808000`` is the
  text ``1577808000``, so epoch seconds work as numbers or strings); an object or array in a column
  the detector reads is an error (other keys keep it as its JSON text). A ``.json`` file must hold
  JSON Lines too (a JSON array or a pretty-printed document is refused with that hint). The lines
  are parsed by DuckDB's JSON reader, which also tolerates a trailing comma.
- Row numbers count objects (non-blank lines), and the physical line is named too.

Types (the `types` argument maps a column to one of these names; columns without one stay VARCHAR,
or keep their Parquet type):
- ``"VARCHAR"`` — the text as read (Parquet values are cast to text).
- ``"ID"`` — an identifier: BIGINT when *every* value is a canonical integer of at most 18 digits
  (no sign but ``-``, no leading zeros — so ``007`` and ``7`` are never merged), otherwise VARCHAR.
  Lets ids sort numerically when they are numbers, and keeps them exact when they are not.
- ``"BIGINT"`` — an integer written as digits with an optional sign (``12.0`` or ``1e3`` are errors:
  DuckDB alone would accept them).
- ``"DOUBLE"``, ``"BOOLEAN"`` — as DuckDB casts them.
- ``"TIMESTAMP"`` — a **naive local time in `timezone`** (default Asia/Shanghai), to the second: the
  detectors compute on local wall-clock time (the Shopee rule's windows, "night-time" signals). A text
  value is read in whichever of these forms it has:

  * ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DDTHH:MM:SS`` without an offset: taken as already local
    time in `timezone` and kept as written (not checked against a daylight-saving gap);
  * the same with an ISO 8601 offset ``Z``, ``±HH:MM``, ``±HHMM`` or ``±HH``: converted to `timezone`;
  * epoch seconds, 9 or 10 digits (1973-03-03 … 2286-11-20 UTC), converted to `timezone`;
  * epoch milliseconds, 12 or 13 digits (the same span); they must be whole seconds (``…000``).

  The forms never overlap, so each value is unambiguous on its own and a column may mix them (an
  export that writes ``Z`` on some rows only is read correctly). What could be misread is refused:
  11 digits (seconds after 2286 or milliseconds before 1973?), fewer than 9 or more than 13, a sign.
  Fractional seconds are an error rather than rounded (a window detector must not move an order)
  unless they are all zeros (``00:00:00.000``). In a zone with daylight saving the local times of
  the hour that repeats in autumn are ambiguous after conversion: a detector sees them as written on
  the wall clock, which is why the default zone (no daylight saving since 1991) suits Chinese data.
  Parquet: a TIMESTAMP column without zone is local time as it stands; TIMESTAMP WITH TIME ZONE (an
  instant, e.g. pandas' tz-aware times) is converted to `timezone`; an integer column is epoch seconds
  (or milliseconds) by the digit rule above; a DATE is midnight; sub-second parts are errors.
  `timezone` must be an IANA zone name (``Asia/Shanghai``, ``UTC``, ``America/New_York``); an
  unknown name, or an abbreviation such as ``CST`` (China? US Central?), is an error. The time-zone
  rules are those of the ICU library built into DuckDB, so no Python loop touches the rows. A column
  of plain naive times is validated by the same single test per value as before other forms were
  read; only a column holding other forms costs a second scan (to learn which forms it holds).
- ``"DATE"`` — ``YYYY-MM-DD``.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["InputError", "connect", "read_table"]

_TYPES = ("VARCHAR", "ID", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP", "DATE")
_DELIMITERS = (",", "\t", ";", "|")
_CHUNK = 1 << 24  # 16 MiB: big enough for C-speed decoding, small enough to keep memory flat
_INT_RE = "[+-]?[0-9]+"
_ID_RE = "-?(0|[1-9][0-9]{0,17})"  # up to 18 digits: always within BIGINT
_INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "HUGEINT")

# Temporary UTF-8 copies of GBK files (and DuckDB spill directories) must live as long as the lazy
# relations that use them; the TemporaryDirectory finalisers remove them at interpreter exit.
_KEEP: list[tempfile.TemporaryDirectory[str]] = []


class InputError(Exception):
    """Input data the detectors refuse: message for a person, plus where the problem is.

    `row` is the 1-based data row (first record after the header is 1) or None when the problem is
    not one row (missing column, encoding, empty file); `column` the column name (or None); `line` the
    physical file line where known; `value` the offending text where there is one. For duplicate
    keys `rows` lists the rows involved.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        value: Any = None,
        line: int | None = None,
        rows: list[int] | None = None,
    ) -> None:
        super().__init__(message)
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        self.value = value
        self.line = line
        self.rows = rows


def _q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """Quote an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------- CSV


def _scan_decode(path: Path, encoding: str, sink: io.TextIOBase | None = None) -> tuple[int, int] | None:
    """Decode the whole file strictly; None if it decodes, else (byte offset, line) of the first bad byte.

    Streams in chunks so a file of many GiB costs one pass and little memory; when `sink` is given the
    decoded text is written to it (the GBK → UTF-8 transcoding).
    """
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    newlines = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            pending = len(dec.getstate()[0])
            try:
                text = dec.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                # exc.start counts from the bytes still buffered from the previous chunk
                bad = offset - pending + exc.start
                rel = max(bad - offset, 0)
                return bad, newlines + chunk[:rel].count(b"\n") + 1
            if sink is not None and text:
                sink.write(text)
            if final:
                return None
            offset += len(chunk)
            newlines += chunk.count(b"\n")


def _utf8_path(path: Path) -> Path:
    """The path of a UTF-8 version of `path`: itself, or a transcoded temporary copy of a GBK file."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        raise InputError(
            f"{path}: looks like UTF-16 or a binary file (NUL bytes); save it as UTF-8 or GBK CSV",
            path=path,
        )
    utf8_err = _scan_decode(path, "utf-8-sig")
    if utf8_err is None:
        return path
    tmp = tempfile.TemporaryDirectory(prefix="fcx-gbk-")
    out = Path(tmp.name) / (path.stem + ".utf8.csv")
    with out.open("w", encoding="utf-8", newline="") as sink:
        gbk_err = _scan_decode(path, "gbk", sink)
    if gbk_err is not None:
        tmp.cleanup()
        off, line = utf8_err
        with path.open("rb") as fh:
            fh.seek(off)
            byte = fh.read(1)
        raise InputError(
            f"{path}: encoding is neither UTF-8 nor GBK (byte 0x{byte.hex()} at offset {off}, line {line}"
            " is invalid UTF-8, and the file is not valid GBK either); save it as UTF-8",
            path=path,
            line=line,
        )
    _KEEP.append(tmp)
    return out


def _header(path: Path, wanted: Sequence[str]) -> tuple[list[str], str]:
    """Header fields and delimiter: the first delimiter under which every wanted column is present.

    When none has them all, the split with the most fields (the likeliest delimiter) is returned and
    the caller names what is missing.
    """
    with path.open("rb") as fh:
        raw = fh.readline(1 << 20)
    text = raw.decode("utf-8-sig").rstrip("\r\n")
    if not text.strip():
        raise InputError(f"{path}: the first line (the header) is empty", path=path, line=1)
    best: tuple[list[str], str] | None = None
    for delim in _DELIMITERS:
        fields = [f.strip() for f in next(csv.reader([text], delimiter=delim))]
        if all(c in fields for c in wanted):
            return fields, delim
        if best is None or len(fields) > len(best[0]):
            best = (fields, delim)
    assert best is not None
    return best


def _csv_source(path: Path, fields: list[str], delim: str) -> str:
    cols = "{" + ", ".join(f"{_lit(f)}: 'VARCHAR'" for f in fields) + "}"
    # auto_detect off: the sniffer guesses types from a sample and may guess the dialect wrong on a
    # ragged file; everything is read as text and typed by our own strict expressions.
    return (
        f"read_csv({_lit(str(path))}, header = true, auto_detect = false, columns = {cols}, "
        f"delim = {_lit(delim)}, quote = '\"', escape = '\"', strict_mode = true)"
    )


_LINE_RE = re.compile(r"CSV Error on Line: (\d+)")


def _csv_error(path: Path, exc: duckdb.Error, what: str = "CSV") -> InputError:
    msg = str(exc)
    m = _LINE_RE.search(msg)
    first = msg.split("\n")
    detail = next((ln for ln in first[1:] if ln and not ln.startswith(("Original Line", "Possible"))), "")
    if m:
        line = int(m.group(1))
        return InputError(
            f"{path}: line {line} cannot be parsed as {what}: {detail.strip() or first[0]}",
            path=path,
            line=line,
        )
    return InputError(f"{path}: cannot be read as {what}: {first[0]}", path=path)


def _file_line_of_row(path: Path, delim: str, row: int) -> int | None:
    """Physical line where data row `row` starts (blank lines skipped, as DuckDB does)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim)
        seen = -1  # the header is record 0
        start = 1
        for rec in reader:
            if rec:
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
    return None


# --------------------------------------------------------------------------------------- JSON Lines


def _jsonl_raw(path: Path) -> str:
    """The file one physical line per row, as `__line` (a blank line is a NULL row: row i is line i)."""
    # A JSON text never holds a raw control character, so chr(1) as the delimiter never splits a
    # valid line, and an invalid line that holds one is refused as not JSON like any other.
    return (
        f"read_csv({_lit(str(path))}, header = false, auto_detect = false, "
        "columns = {'__line': 'VARCHAR'}, delim = chr(1), quote = '', escape = '', strict_mode = true)"
    )


_BLANK = "(__line IS NULL OR trim(__line) = '')"


def _jpath(key: str) -> str:
    return _lit('$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _jsonl_fields(path: Path) -> list[str]:
    """The keys of the first object (the file's columns, as a CSV header), in the order written."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                first = json.loads(text)
            except ValueError:
                first = None
            if not isinstance(first, dict):
                hint = ""
                if text.lstrip().startswith("["):
                    hint = "; a JSON array is not read: write JSON Lines, one object per line"
                elif text.strip() == "{":
                    hint = "; a pretty-printed document is not read: write JSON Lines, one object per line"
                raise InputError(
                    f"{path}: line {n} is not a JSON object{hint}", path=path, line=n, value=text.strip()[:80]
                )
            if not first:
                raise InputError(f"{path}: line {n}: the first object has no keys", path=path, line=n)
            return [str(k) for k in first]
    raise InputError(f"{path}: the file holds only blank lines", path=path)


def _jsonl_source(path: Path, fields: Sequence[str]) -> str:
    """SQL over the non-blank lines: one VARCHAR column per key (strings unquoted, numbers as text)."""
    paths = "[" + ", ".join(_jpath(k) for k in fields) + "]"
    cols = ", ".join(f"__s[{i}] AS {_q(k)}" for i, k in enumerate(fields, start=1))
    return (
        f"(SELECT {cols} FROM (SELECT json_extract_string(__line, {paths}) AS __s "
        f"FROM {_jsonl_raw(path)} WHERE NOT {_BLANK}))"
    )


def _check_jsonl(
    con: duckdb.DuckDBPyConnection, path: Path, required: Sequence[str], typed: Sequence[str]
) -> None:
    """One scan of the raw lines: every non-blank line an object, with every required key.

    A required or typed key holding an object or array is refused too (other keys keep such values
    as their JSON text).
    """
    raw = f"(SELECT row_number() OVER () AS __n, __line FROM {_jsonl_raw(path)})"
    obj = "CASE WHEN json_valid(__line) THEN json_type(__line) = 'OBJECT' ELSE false END"
    keys = list(dict.fromkeys([*required, *typed]))
    paths = "[" + ", ".join(_jpath(k) for k in keys) + "]"
    # the keys are extracted in one parse per line, and only from lines that are objects; a missing
    # key extracts as NULL, a JSON null as the JSON value null
    conds: list[tuple[str, str | None, str]] = [("line", None, f"NOT {_BLANK} AND NOT ({obj})")]
    for i, k in enumerate(keys, start=1):
        if k in required:
            conds.append(("missing", k, f"__ok AND __v[{i}] IS NULL"))
        conds.append(("nested", k, f"__ok AND coalesce(json_type(__v[{i}]) IN ('OBJECT', 'ARRAY'), false)"))
    aggs = ", ".join(f"min(__n) FILTER (WHERE {c})" for _, _, c in conds)
    try:
        firsts = con.sql(
            f"SELECT {aggs} FROM (SELECT __n, __line, __ok, "
            f"CASE WHEN __ok THEN json_extract(__line, {paths}) END AS __v "
            f"FROM (SELECT __n, __line, NOT {_BLANK} AND {obj} AS __ok FROM {raw}))"
        ).fetchall()[0]
    except duckdb.Error as exc:
        raise _csv_error(path, exc, what="JSON Lines") from exc
    found = [(n, kind, key) for n, (kind, key, _) in zip(firsts, conds, strict=True) if n is not None]
    if not found:
        return
    line, kind, key = min(found, key=lambda f: f[0])
    text = con.sql(f"SELECT __line FROM {raw} WHERE __n = {line}").fetchall()[0][0]
    if kind == "line":
        raise InputError(
            f"{path}: line {line} is not a JSON object (JSON Lines: one object per line)",
            path=path,
            line=line,
            value=text[:200],
        )
    row = _jsonl_row_of_line(path, line)
    where = f"data row {row} (line {line})"
    if kind == "missing":
        raise InputError(
            f"{path}: {where}: the required key {key} is missing", path=path, row=row, line=line, column=key
        )
    raise InputError(
        f"{path}: {where}, column {key}: an object or array is not a value",
        path=path,
        row=row,
        line=line,
        column=key,
    )


def _jsonl_row_of_line(path: Path, line: int) -> int:
    """Data row (non-blank lines counted) of physical line `line`."""
    row = 0
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for n, text in enumerate(fh, start=1):
            row += bool(text.strip())
            if n == line:
                break
    return row


def _jsonl_line_of_row(path: Path, row: int) -> int | None:
    """Physical line of data row `row` (the row-th non-blank line)."""
    seen = 0
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for n, text in enumerate(fh, start=1):
            if text.strip():
                seen += 1
                if seen == row:
                    return n
    return None


# -------------------------------------------------------------------------------------------- types


# Forms of a TIMESTAMP written as text (module docstring). Bits, so that the validation scan can
# tell which forms a column holds and the relation's expression keeps only those: a file of naive
# times pays for nothing else.
_NAIVE, _NAIVE_FRAC0, _WITH_OFFSET, _EPOCH_S, _EPOCH_MS = 1, 2, 4, 8, 16
_ALL_FORMS = 31
_DATETIME_RE = "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}"
_ZERO_FRACTION_RE = "\\.0{1,9}"
_OFFSET_RE = "(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
_FRACTION_RE = re.compile(r"[0-9]:[0-9]{2}\.[0-9]*[1-9]")


def _time_forms(c: str, zone: str) -> list[tuple[int, str, str]]:
    """(bit, SQL condition that the text `c` has the form, SQL for its naive local time) per form."""
    z = _lit(zone)
    n = f"CAST({c} AS BIGINT)"
    return [
        # the LIKE shape test is cheap and strict (no fraction, zone or missing seconds, which the cast
        # alone would accept); the cast then checks the digits make a real time
        (
            _NAIVE,
            f"({c} LIKE '____-__-__ __:__:__' OR {c} LIKE '____-__-__T__:__:__')",
            f"TRY_CAST({c} AS TIMESTAMP)",
        ),
        (
            _NAIVE_FRAC0,
            f"regexp_full_match({c}, '{_DATETIME_RE}{_ZERO_FRACTION_RE}')",
            f"TRY_CAST({c} AS TIMESTAMP)",
        ),
        (
            _WITH_OFFSET,
            f"regexp_full_match({c}, '{_DATETIME_RE}({_ZERO_FRACTION_RE})?{_OFFSET_RE}')",
            f"timezone({z}, TRY_CAST({c} AS TIMESTAMPTZ))",
        ),
        (_EPOCH_S, f"regexp_full_match({c}, '[0-9]{{9,10}}')", f"timezone({z}, to_timestamp({n}))"),
        (
            _EPOCH_MS,
            f"regexp_full_match({c}, '[0-9]{{12,13}}')",
            f"CASE WHEN {n} % 1000 = 0 THEN timezone({z}, to_timestamp({n} // 1000)) END",
        ),
    ]


def _time_text_expr(col: str, zone: str, forms: int) -> str:
    """The naive local time of a text column, for the forms in the bit set `forms` (others give NULL)."""
    c = _q(col)
    present = [(cond, typed) for bit, cond, typed in _time_forms(c, zone) if bit & forms] or [
        (cond, typed) for bit, cond, typed in _time_forms(c, zone) if bit == _NAIVE
    ]
    return "CASE " + " ".join(f"WHEN {cond} THEN {typed}" for cond, typed in present) + " END"


def _time_code(col: str, zone: str) -> str:
    """Per value: the bit of its form when it parses, 0 when it does not, NULL when it is NULL."""
    c = _q(col)
    whens = " ".join(
        f"WHEN {cond} THEN CASE WHEN ({typed}) IS NULL THEN 0 ELSE {bit} END"
        for bit, cond, typed in _time_forms(c, zone)
    )
    return f"CASE WHEN {c} IS NULL THEN NULL {whens} ELSE 0 END"


def _parse_expr(
    col: str,
    src_type: str,
    target: str,
    id_int: bool | None,
    *,
    zone: str,
    path: Path,
    forms: int = _ALL_FORMS,
) -> tuple[str, str]:
    """(typed SQL expression, SQL condition that is true where a non-NULL value does not parse).

    For a text TIMESTAMP `forms` is the bit set of forms to read (all, unless the scan found fewer).
    """
    c = _q(col)
    src = src_type.upper()
    is_text = src == "VARCHAR"
    is_int = src in _INT_TYPES or src in ("UBIGINT",)
    if target == "VARCHAR":
        return f"CAST({c} AS VARCHAR)", "false"
    if target == "ID":
        if is_int or not is_text:
            return f"CAST({c} AS VARCHAR)" if not is_int else f"CAST({c} AS BIGINT)", "false"
        return (f"CAST({c} AS BIGINT)" if id_int else c), "false"
    if target == "BIGINT":
        if is_int:
            expr = f"TRY_CAST({c} AS BIGINT)"
        elif is_text:
            expr = (
                f"CASE WHEN regexp_full_match(trim({c}), '{_INT_RE}') THEN TRY_CAST(trim({c}) AS BIGINT) END"
            )
        else:
            expr = f"CASE WHEN {c} = round({c}) THEN TRY_CAST({c} AS BIGINT) END"
    elif target == "DOUBLE":
        expr = f"TRY_CAST({c} AS DOUBLE)"
    elif target == "BOOLEAN":
        expr = f"TRY_CAST({c} AS BOOLEAN)"
    elif target == "TIMESTAMP":
        z = _lit(zone)
        if is_text:
            expr = _time_text_expr(col, zone, forms)
        elif src.startswith("TIMESTAMP") or src == "DATE":
            # nanosecond types are tested in nanoseconds: a cast to microseconds could hide a fraction
            whole = (
                f"epoch_ns({c}) % 1000000000 = 0"
                if src.endswith("_NS")
                else f"CAST({c} AS TIMESTAMP) = date_trunc('second', CAST({c} AS TIMESTAMP))"
                if "TIME ZONE" not in src and not src.startswith("TIMESTAMPTZ")
                else f"{c} = date_trunc('second', {c})"
            )
            if "TIME ZONE" in src or src.startswith("TIMESTAMPTZ"):  # an instant: to the zone's wall clock
                expr = f"CASE WHEN {whole} THEN timezone({z}, CAST({c} AS TIMESTAMPTZ)) END"
            else:
                expr = f"CASE WHEN {whole} THEN CAST({c} AS TIMESTAMP) END"
        elif is_int:  # epoch seconds (or milliseconds) by the same digit rule as text
            n = f"TRY_CAST({c} AS BIGINT)"
            expr = (
                f"CASE WHEN {n} BETWEEN 100000000 AND 9999999999 THEN timezone({z}, to_timestamp({n})) "
                f"WHEN {n} BETWEEN 100000000000 AND 9999999999999 AND {n} % 1000 = 0 "
                f"THEN timezone({z}, to_timestamp({n} // 1000)) END"
            )
        else:
            raise InputError(
                f"{path}: column {col}: a {src_type} column cannot be read as a time", path=path, column=col
            )
    elif target == "DATE":
        expr = f"CAST(try_strptime(trim({c}), '%Y-%m-%d') AS DATE)" if is_text else f"TRY_CAST({c} AS DATE)"
    else:  # pragma: no cover - guarded by read_table
        raise ValueError(target)
    return expr, f"({c} IS NOT NULL AND ({expr}) IS NULL)"


_WHAT = {
    "BIGINT": "an integer",
    "DOUBLE": "a number",
    "BOOLEAN": "true/false",
    "TIMESTAMP": "a time (YYYY-MM-DD HH:MM:SS, ISO 8601 with an offset, or epoch seconds)",
    "DATE": "a date YYYY-MM-DD",
}


def _time_hint(value: str | None) -> str:
    """Why a time was refused, where the value shows it."""
    v = (value or "").strip()
    if _FRACTION_RE.search(v):
        return " (fractional seconds are refused: a window detector must not move an event)"
    if v.isdigit():
        if len(v) in (12, 13):
            return " (epoch milliseconds must be whole seconds: a window detector must not move an event)"
        return (
            f" ({len(v)} digits: epoch seconds have 9 or 10 digits, epoch milliseconds 12 or 13; "
            "other lengths could be misread)"
        )
    return ""


# Zone names are checked against ICU's list once per process.
_ZONES: set[str] = set()


def _check_zone(con: duckdb.DuckDBPyConnection, timezone: str) -> str:
    """`timezone` if it is an IANA zone name ICU knows; else an InputError with close names."""
    if not _ZONES:
        _ZONES.update(r[0] for r in con.sql("SELECT name FROM pg_timezone_names()").fetchall())
    # Area/Location names, and UTC: ICU also takes abbreviations, but CST is US Central there and
    # China Standard Time to most users of this tool, so a bare abbreviation is never guessed at.
    if timezone in _ZONES and ("/" in timezone or timezone == "UTC"):
        return timezone
    names = [*sorted(z for z in _ZONES if "/" in z), "UTC"]
    close = difflib.get_close_matches(timezone, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise InputError(
        f"unknown time zone {timezone!r}: give an IANA zone name such as Asia/Shanghai, UTC or "
        f"America/New_York (abbreviations like CST are ambiguous){hint}",
        value=timezone,
    )


# ------------------------------------------------------------------------------------------- public


def connect(*, memory_fraction: float = 0.5) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for a detector run.

    DuckDB's own default is 80 % of RAM and spilling to ``.tmp`` in the working directory; here the
    cap leaves room for the detector's numpy working set beside it, and spills go to a private
    temporary directory (removed at exit), so a 10⁸-row sort degrades to disk instead of failing.
    """
    tmp = tempfile.TemporaryDirectory(prefix="fcx-duckdb-")
    _KEEP.append(tmp)
    config: dict[str, str | bool | int | float | list[str]] = {"temp_directory": tmp.name}
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        config["memory_limit"] = f"{max(int(total * memory_fraction) >> 20, 256)}MB"
    except (ValueError, OSError, AttributeError):  # no sysconf: keep DuckDB's default cap
        pass
    con = duckdb.connect(config=config)
    # DuckDB's own progress bar writes to stdout on any query over 2 s; the commands report progress
    # themselves, and a library must not write into a caller's stdout
    con.execute("SET enable_progress_bar = false")
    return con


def read_table(
    path: str | Path,
    required_columns: Iterable[str],
    *,
    types: Mapping[str, str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    nullable: Iterable[str] = (),
    unique: Iterable[str] = (),
    allow_empty: bool = False,
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
) -> duckdb.DuckDBPyRelation:
    """Read a CSV, Parquet or JSON Lines file strictly and return a lazy, typed DuckDB relation over it.

    `required_columns` must all be present; `types` maps column → one of the type names in the module
    docstring; `nullable` lists required columns that may be empty; `unique` lists columns whose values
    must not repeat (e.g. order ids: a repeat is an error naming the rows); `allow_empty` accepts a
    file with a header and no data rows. All of these use the detector's names; `columns` maps a
    detector's name to the file's column where they differ, and `timezone` (an IANA name) is the zone
    of naive times and the zone times with an offset and epoch times are converted to. The relation
    belongs to `con` (a fresh one from `connect()` if None) and has every column of the file, required
    ones first in the order asked (under the detector's names), then the rest.

    Raises InputError — never returns a relation that will fail later on bad values.
    """
    path = Path(path)
    mapping = {str(k): str(v) for k, v in (columns or {}).items() if k != v}
    targets = list(mapping.values())
    if len(set(targets)) != len(targets):
        twice = next(t for t in targets if targets.count(t) > 1)
        raise ValueError(f"the file's column {twice!r} is mapped to more than one name")
    as_file = mapping  # detector name → file column, where they differ

    def fc(name: str) -> str:
        return as_file.get(name, name)

    required = [fc(c) for c in dict.fromkeys(required_columns)]
    types = {fc(col): t.upper() for col, t in (types or {}).items()}
    for col, t in types.items():
        if t not in _TYPES:
            raise ValueError(f"unknown type {t!r} for column {col!r}; one of {', '.join(_TYPES)}")
    nullable_set = {fc(c) for c in nullable}
    unique = [fc(c) for c in dict.fromkeys(unique)]
    con = con if con is not None else connect()
    zone = _check_zone(con, timezone)
    if not path.is_file():
        raise InputError(f"{path}: no such file", path=path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (no header, no data)", path=path)

    with path.open("rb") as fh:
        magic = fh.read(4)
    suffix = path.suffix.lower()
    kind = (
        "parquet"
        if magic == b"PAR1" or suffix in (".parquet", ".pq")
        else "jsonl"
        if suffix in (".jsonl", ".ndjson", ".json")
        else "csv"
    )
    wanted = list(dict.fromkeys(required + targets))
    delim = ","
    src_path = path
    if kind == "parquet":
        source = f"read_parquet({_lit(str(path))})"
        try:
            schema = con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"{path}: cannot be read as Parquet: {first}", path=path) from exc
        src_types = {r[0]: r[1] for r in schema}
        fields = list(src_types)
        _check_columns(path, fields, required, mapping, "the file has")
    elif kind == "jsonl":
        err = _scan_decode(path, "utf-8-sig")
        if err is not None:
            raise InputError(
                f"{path}: JSON Lines must be UTF-8 (byte offset {err[0]}, line {err[1]} is not)",
                path=path,
                line=err[1],
            )
        fields = _jsonl_fields(path)
        _check_columns(path, fields, required, mapping, "the first object has keys")
        _check_jsonl(con, path, required, list(types))
        source = _jsonl_source(path, fields)
        src_types = dict.fromkeys(fields, "VARCHAR")
    else:
        src_path = _utf8_path(path)
        fields, delim = _header(src_path, wanted)
        _check_columns(path, fields, required, mapping, "the header has")
        dup = sorted({f for f in fields if fields.count(f) > 1})
        if dup:
            raise InputError(f"{path}: column name(s) repeated in the header: {', '.join(dup)}", path=path)
        fields = [f or f"column{i}" for i, f in enumerate(fields)]
        source = _csv_source(src_path, fields, delim)
        src_types = dict.fromkeys(fields, "VARCHAR")

    unknown = [c for c in list(types) + unique if c not in src_types]
    if unknown:
        raise InputError(f"{path}: missing column(s) {', '.join(unknown)}", path=path, column=unknown[0])

    # One validation scan computes everything at once: row count, per column the number of values
    # that do not parse and of NULLs, whether ID columns are all integers, which forms a text time
    # column holds, and whether the `unique` columns repeat (distinct 64-bit hashes: equal counts
    # prove uniqueness; fewer send us to the exact check, which also rules out a hash collision).
    aggs = ["count(*)"]
    checks: list[tuple[str, str, str]] = []  # (column, kind, condition)
    null_cols = [c for c in required if c not in nullable_set]
    aggs += [f"count(*) - count({_q(c)})" for c in null_cols]  # cheaper than a FILTER per column
    id_cols = [c for c, t in types.items() if t == "ID" and src_types[c].upper() == "VARCHAR"]
    for col in id_cols:
        # canonical integers only ("007", "+7", "7.0" are not): then BIGINT loses nothing
        aggs.append(f"coalesce(bool_and(regexp_full_match({_q(col)}, '{_ID_RE}')), true)")
    for col in unique:
        aggs.append(f"count({_q(col)}) - count(DISTINCT hash({_q(col)}))")
    # Text times: the scan counts the values that are not plain naive times (the common case, tested
    # exactly as before #20 so such files pay nothing more); only when a column has others does a
    # second scan code each value (its form's bit, 0 if it does not parse) for the form set and the
    # true error count.
    time_cols = [c for c, t in types.items() if t == "TIMESTAMP" and src_types[c].upper() == "VARCHAR"]
    codes = {col: f"__form{i}" for i, col in enumerate(time_cols)}
    scan_conds: list[str] = []
    for col, t in types.items():
        if t == "ID":
            continue
        if col in codes:
            checks.append((col, t, f"{_q(codes[col])} = 0"))
            bit, like, typed = _time_forms(_q(col), zone)[0]
            assert bit == _NAIVE
            scan_conds.append(f"{_q(col)} IS NOT NULL AND (CASE WHEN {like} THEN {typed} END) IS NULL")
            continue
        _, bad = _parse_expr(col, src_types[col], t, None, zone=zone, path=path)
        if bad != "false":
            checks.append((col, t, bad))
            scan_conds.append(bad)
    aggs += [f"count(*) FILTER (WHERE {cond})" for cond in scan_conds]

    def coded(src: str, cols: Iterable[str] = time_cols) -> str:
        names = ", ".join(f"{_time_code(col, zone)} AS {_q(codes[col])}" for col in cols)
        return f"(SELECT *, {names} FROM {src})" if names else src

    def scan(sql: str) -> list[Any]:
        try:
            return list(con.sql(sql).fetchall()[0])
        except duckdb.Error as exc:
            if kind == "parquet":
                raise InputError(f"{path}: cannot be read: {str(exc).splitlines()[0]}", path=path) from exc
            raise _csv_error(path, exc, "CSV" if kind == "csv" else "JSON Lines") from exc

    stats = scan(f"SELECT {', '.join(aggs)} FROM {source}")
    n_rows = stats.pop(0)
    nulls = {col: stats.pop(0) for col in null_cols}
    id_int = {col: stats.pop(0) for col in id_cols}
    maybe_repeated = [col for col in unique if stats.pop(0)]
    checks = [(col, "null", f"{_q(col)} IS NULL") for col in null_cols] + checks
    bad_counts = [nulls[c] for c in null_cols] + stats
    forms = dict.fromkeys(time_cols, _NAIVE)
    other_forms = [
        col for (col, _, _), n in zip(checks[len(null_cols) :], stats, strict=True) if col in codes and n
    ]
    if other_forms:
        more = scan(
            "SELECT "
            + ", ".join(
                f"coalesce(bit_or({_q(codes[col])}), 0), count(*) FILTER (WHERE {_q(codes[col])} = 0)"
                for col in other_forms
            )
            + f" FROM {coded(source, other_forms)}"
        )
        for col in other_forms:
            forms[col] = more.pop(0)
            i = next(i for i, (c, k, _) in enumerate(checks) if c == col and k != "null")
            bad_counts[i] = more.pop(0)
    if n_rows == 0 and not allow_empty:
        raise InputError(f"{path}: the file has a header but no data rows", path=path)

    if any(bad_counts):
        numbered = coded(_row_source(source, kind))
        line_of = (
            (lambda row: None)
            if kind == "parquet"
            else (lambda row: _jsonl_line_of_row(path, row))
            if kind == "jsonl"
            else (lambda row: _file_line_of_row(src_path, delim, row))
        )
        _raise_first_bad(con, path, numbered, line_of, checks, bad_counts, as_file)

    exprs = []
    as_name = {v: k for k, v in as_file.items()}  # file column → detector name
    shadowed = set(as_file) - set(as_file.values())  # detector names that a file column also carries
    order: list[str] = required + [f for f in fields if f not in required and f not in shadowed]
    for col in order:
        if col in types:
            expr, _ = _parse_expr(
                col,
                src_types[col],
                types[col],
                id_int.get(col),
                zone=zone,
                path=path,
                forms=forms.get(col, 0),
            )
        else:
            expr = _q(col)
        exprs.append(f"{expr} AS {_q(as_name.get(col, col))}")
    select = ", ".join(exprs)
    rel = con.sql(f"SELECT {select} FROM {source}")

    for col in maybe_repeated:
        with_rows = f"SELECT __row, {select} FROM {_row_source(source, kind)}"
        _check_unique(con, rel, path, with_rows, col, as_name.get(col, col))
    return rel


def _check_columns(
    path: Path, fields: Sequence[str], required: Sequence[str], mapping: Mapping[str, str], has: str
) -> None:
    """A mapped column the file lacks is named with its mapping; then any missing required column."""
    for name, col in mapping.items():
        if col not in fields:
            raise InputError(
                f"{path}: column {name} is to be read from the file's column {col}, which the file does not "
                f"have; {has} {', '.join(fields)}",
                path=path,
                column=col,
            )
    missing = [c for c in required if c not in fields]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {', '.join(missing)}; {has} {', '.join(fields)}",
            path=path,
            column=missing[0],
        )


def _row_source(source: str, kind: str) -> str:
    if kind == "parquet":
        numbered = source[:-1] + ", file_row_number = true)"
        return f"(SELECT file_row_number + 1 AS __row, * EXCLUDE (file_row_number) FROM {numbered})"
    # read_csv has no file_row_number; row_number() OVER () follows the file order (DuckDB keeps
    # insertion order for a window without ORDER BY). Only used on the error path.
    return f"(SELECT row_number() OVER () AS __row, * FROM {source})"


def _raise_first_bad(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    numbered: str,
    line_of: Callable[[int], int | None],
    checks: list[tuple[str, str, str]],
    bad_counts: Sequence[int],
    as_file: Mapping[str, str],
) -> None:
    failing = [(c, k, cond) for (c, k, cond), n in zip(checks, bad_counts, strict=True) if n]
    cases = " ".join(f"WHEN {cond} THEN {i}" for i, (_, _, cond) in enumerate(failing))
    where = " OR ".join(f"({cond})" for _, _, cond in failing)
    row, which = con.sql(
        f"SELECT __row, CASE {cases} END FROM {numbered} WHERE {where} ORDER BY __row LIMIT 1"
    ).fetchall()[0]
    col, kind, _ = failing[which]
    value = con.sql(f"SELECT CAST({_q(col)} AS VARCHAR) FROM {numbered} WHERE __row = {row}").fetchall()[0][0]
    line = line_of(row)
    where_txt = f"data row {row}" + (f" (line {line})" if line else "")
    total = sum(bad_counts)
    more = f"; {total - 1} more problem value(s) in the file" if total > 1 else ""
    names = _column_text(col, as_file)
    if kind == "null":
        msg = f"{path}: {where_txt}, column {names}: empty value in a required column{more}"
    else:
        hint = _time_hint(value) if kind == "TIMESTAMP" else ""
        msg = f"{path}: {where_txt}, column {names}: {value!r} is not {_WHAT[kind]}{hint}{more}"
    raise InputError(msg, path=path, row=row, column=col, value=value, line=line)


def _column_text(col: str, as_file: Mapping[str, str]) -> str:
    """The file's column as errors name it, with the detector's name where a mapping renamed it."""
    name = next((k for k, v in as_file.items() if v == col), None)
    return f"{col} (read as {name})" if name is not None else col


def _check_unique(
    con: duckdb.DuckDBPyConnection,
    rel: duckdb.DuckDBPyRelation,
    path: Path,
    with_rows: str,
    file_col: str,
    col: str,
) -> None:
    """`col` (the relation's name of the file's `file_col`) must not repeat."""
    c = _q(col)
    dup = rel.aggregate(f"{c}, count(*) AS __n", c).filter("__n > 1")
    n_dup = dup.aggregate("count(*)").fetchall()[0][0]
    if not n_dup:
        return
    # Only on the error path: number the rows (a second scan) for the first few repeated values.
    rows = con.sql(
        f"WITH d AS (SELECT {c} FROM ({dup.limit(5).sql_query()})) "
        f"SELECT CAST(t.{c} AS VARCHAR), list(t.__row ORDER BY t.__row) FROM ({with_rows}) t "
        f"SEMI JOIN d ON t.{c} = d.{c} GROUP BY t.{c} ORDER BY min(t.__row)"
    ).fetchall()
    parts = [f"{v!r} at data rows {', '.join(map(str, r))}" for v, r in rows]
    more = f" (and {n_dup - len(rows)} more repeated value(s))" if n_dup > len(rows) else ""
    first_rows = list(rows[0][1])
    names = file_col if file_col == col else f"{file_col} (read as {col})"
    raise InputError(
        f"{path}: column {names} must be unique but values repeat: {'; '.join(parts)}{more}",
        path=path,
        row=first_rows[1],
        column=file_col,
        value=rows[0][0],
        rows=first_rows,
    )
