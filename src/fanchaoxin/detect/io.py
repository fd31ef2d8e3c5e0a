"""Reading an enterprise's own data (CSV or Parquet) for the detectors, strictly.

`read_table` returns a **lazy DuckDB relation** (`duckdb.DuckDBPyRelation`) whose columns carry the
requested types. The whole file has been scanned and validated once before it returns, so anything
wrong with the input surfaces here as an `InputError` — never later as a DuckDB error half-way through
a detector, and never as rows quietly dropped (per DESIGN.md §5: a bulk input answers with a per-row
error, never a partial silent import). Each later query on the relation re-reads the file, streaming:
memory stays flat however big the file is, which is what lets a detector sort 10⁸ orders on DuckDB.

CSV rules
- Encoding: UTF-8 (with or without BOM) is tried first, strictly over the whole file; then GBK (the
  encoding Chinese spreadsheet software still writes by default), which is transcoded to a temporary
  UTF-8 copy. Anything else (UTF-16, Latin-1 that is not accidentally valid GBK, binary) is an error
  naming the first undecodable byte. Latin-1 text can happen to be valid GBK (``M\\xfcller`` decodes
  as ``M黮ler``): no byte-level test can tell those apart, so such a file is read as GBK.
- The first line is the header. The delimiter is the first of ``, TAB ; |`` under which the header
  holds every required column. Quotes are RFC 4180 (``"`` doubled inside a quoted field).
- Blank lines are skipped (DuckDB does so); row numbers in errors count data rows, 1-based, so
  ``data row 1`` is the first record after the header, and the physical file line is named too.
- An empty field is NULL; a NULL in a required column is an error unless the column is in `nullable`.

Types (the `types` argument maps a column to one of these names; columns without one stay VARCHAR,
or keep their Parquet type):
- ``"VARCHAR"`` — the text as read (Parquet values are cast to text).
- ``"ID"`` — an identifier: BIGINT when *every* value is a canonical integer of at most 18 digits
  (no sign but ``-``, no leading zeros — so ``007`` and ``7`` are never merged), otherwise VARCHAR.
  Lets ids sort numerically when they are numbers, and keeps them exact when they are not.
- ``"BIGINT"`` — an integer written as digits with an optional sign (``12.0`` or ``1e3`` are errors:
  DuckDB alone would accept them).
- ``"DOUBLE"``, ``"BOOLEAN"`` — as DuckDB casts them.
- ``"TIMESTAMP"`` — exactly ``YYYY-MM-DD HH:MM:SS`` (or with ``T``), 1-second resolution, no zone;
  fractional seconds are an error rather than rounded (a window detector must not move an order).
  A Parquet TIMESTAMP column is accepted when it has no sub-second part.
- ``"DATE"`` — ``YYYY-MM-DD``.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
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


def _header(path: Path, required: Sequence[str]) -> tuple[list[str], str]:
    """Header fields and delimiter: the first delimiter under which every required column is present."""
    with path.open("rb") as fh:
        raw = fh.readline(1 << 20)
    text = raw.decode("utf-8-sig").rstrip("\r\n")
    if not text.strip():
        raise InputError(f"{path}: the first line (the header) is empty", path=path, line=1)
    best: tuple[list[str], str] | None = None
    for delim in _DELIMITERS:
        fields = [f.strip() for f in next(csv.reader([text], delimiter=delim))]
        if all(c in fields for c in required):
            return fields, delim
        if best is None or len(fields) > len(best[0]):
            best = (fields, delim)
    assert best is not None
    fields = best[0]
    missing = [c for c in required if c not in fields]
    raise InputError(
        f"{path}: missing required column(s) {', '.join(missing)}; the header has {', '.join(fields)}",
        path=path,
        column=missing[0],
    )


def _csv_source(path: Path, fields: list[str], delim: str) -> str:
    cols = "{" + ", ".join(f"{_lit(f)}: 'VARCHAR'" for f in fields) + "}"
    # auto_detect off: the sniffer guesses types from a sample and may guess the dialect wrong on a
    # ragged file; everything is read as text and typed by our own strict expressions.
    return (
        f"read_csv({_lit(str(path))}, header = true, auto_detect = false, columns = {cols}, "
        f"delim = {_lit(delim)}, quote = '\"', escape = '\"', strict_mode = true)"
    )


_LINE_RE = re.compile(r"CSV Error on Line: (\d+)")


def _csv_error(path: Path, exc: duckdb.Error) -> InputError:
    msg = str(exc)
    m = _LINE_RE.search(msg)
    first = msg.split("\n")
    detail = next((ln for ln in first[1:] if ln and not ln.startswith(("Original Line", "Possible"))), "")
    if m:
        line = int(m.group(1))
        return InputError(
            f"{path}: line {line} cannot be parsed as CSV: {detail.strip() or first[0]}", path=path, line=line
        )
    return InputError(f"{path}: cannot be read as CSV: {first[0]}", path=path)


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


# -------------------------------------------------------------------------------------------- types


def _parse_expr(col: str, src_type: str, target: str, id_int: bool | None) -> tuple[str, str]:
    """(typed SQL expression, SQL condition that is true where a non-NULL value does not parse)."""
    c = _q(col)
    src = src_type.upper()
    is_text = src == "VARCHAR"
    is_int = src in _INT_TYPES
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
        if is_text:
            # the shape test is cheap and strict (no fraction, zone or missing seconds, which the
            # cast alone would accept); the cast then checks the digits make a real time
            shape = f"({c} LIKE '____-__-__ __:__:__' OR {c} LIKE '____-__-__T__:__:__')"
            expr = f"CASE WHEN {shape} THEN TRY_CAST({c} AS TIMESTAMP) END"
        elif (src.startswith("TIMESTAMP") and "TIME ZONE" not in src) or src == "DATE":
            ts = f"CAST({c} AS TIMESTAMP)"
            expr = f"CASE WHEN {ts} = date_trunc('second', {ts}) THEN {ts} END"
        else:
            raise InputError(f"column {col}: a {src_type} column cannot be read as TIMESTAMP", column=col)
    elif target == "DATE":
        expr = f"CAST(try_strptime(trim({c}), '%Y-%m-%d') AS DATE)" if is_text else f"TRY_CAST({c} AS DATE)"
    else:  # pragma: no cover - guarded by read_table
        raise ValueError(target)
    return expr, f"({c} IS NOT NULL AND ({expr}) IS NULL)"


_WHAT = {
    "BIGINT": "an integer",
    "DOUBLE": "a number",
    "BOOLEAN": "true/false",
    "TIMESTAMP": "a time YYYY-MM-DD HH:MM:SS",
    "DATE": "a date YYYY-MM-DD",
}


# ------------------------------------------------------------------------------------------- public


def connect(*, memory_fraction: float = 0.5) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for a detector run.

    DuckDB's own default is 80 % of RAM and spilling to ``.tmp`` in the working directory; here the
    cap leaves room for the detector's numpy working set beside it, and spills go to a private
    temporary directory (removed at exit), so a 10⁸-row sort degrades to disk instead of failing.
    """
    tmp = tempfile.TemporaryDirectory(prefix="fcx-duckdb-")
    _KEEP.append(tmp)
    config = {"temp_directory": tmp.name}
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        config["memory_limit"] = f"{max(int(total * memory_fraction) >> 20, 256)}MB"
    except (ValueError, OSError, AttributeError):  # no sysconf: keep DuckDB's default cap
        pass
    return duckdb.connect(config=config)


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
    """Read a CSV or Parquet file strictly and return a lazy, typed DuckDB relation over it.

    `required_columns` must all be present; `types` maps column → one of the type names in the module
    docstring; `nullable` lists required columns that may be empty; `unique` lists columns whose values
    must not repeat (e.g. order ids: a repeat is an error naming the rows); `allow_empty` accepts a
    file with a header and no data rows. The relation belongs to `con` (a fresh one from `connect()`
    if None) and has every column of the file, required ones first in the order asked, then the rest.

    Raises InputError — never returns a relation that will fail later on bad values.
    """
    if columns:  # #20 (being written): --col NAME=COLUMN mappings and --timezone
        raise NotImplementedError("column mappings are being written (#20)")
    del timezone
    path = Path(path)
    required = list(dict.fromkeys(required_columns))
    types = dict(types or {})
    for col, t in types.items():
        if t.upper() not in _TYPES:
            raise ValueError(f"unknown type {t!r} for column {col!r}; one of {', '.join(_TYPES)}")
        types[col] = t.upper()
    if not path.is_file():
        raise InputError(f"{path}: no such file", path=path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (no header, no data)", path=path)
    con = con if con is not None else connect()

    with path.open("rb") as fh:
        magic = fh.read(4)
    is_parquet = magic == b"PAR1" or path.suffix.lower() in (".parquet", ".pq")
    delim = ","
    src_path = path
    if is_parquet:
        source = f"read_parquet({_lit(str(path))})"
        try:
            schema = con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"{path}: cannot be read as Parquet: {first}", path=path) from exc
        src_types = {r[0]: r[1] for r in schema}
        fields = list(src_types)
        missing = [c for c in required if c not in src_types]
        if missing:
            raise InputError(
                f"{path}: missing required column(s) {', '.join(missing)}; the file has {', '.join(fields)}",
                path=path,
                column=missing[0],
            )
    else:
        src_path = _utf8_path(path)
        fields, delim = _header(src_path, required)
        dup = sorted({f for f in fields if fields.count(f) > 1})
        if dup:
            raise InputError(f"{path}: column name(s) repeated in the header: {', '.join(dup)}", path=path)
        fields = [f or f"column{i}" for i, f in enumerate(fields)]
        source = _csv_source(src_path, fields, delim)
        src_types = dict.fromkeys(fields, "VARCHAR")

    unknown = [c for c in types if c not in src_types]
    if unknown:
        raise InputError(f"{path}: missing column(s) {', '.join(unknown)}", path=path, column=unknown[0])

    # One validation scan computes everything at once: row count, per column the number of values
    # that do not parse and of NULLs, whether ID columns are all integers, and whether the `unique`
    # columns repeat (distinct 64-bit hashes: equal counts prove uniqueness; fewer send us to the exact
    # check, which also rules out a hash collision).
    nullable_set = set(nullable)
    unique = list(dict.fromkeys(unique))
    for col in unique:
        if col not in src_types:
            raise InputError(f"{path}: missing column {col}", path=path, column=col)
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
    for col, t in types.items():
        if t == "ID":
            continue
        _, bad = _parse_expr(col, src_types[col], t, None)
        if bad != "false":
            checks.append((col, t, bad))
    aggs += [f"count(*) FILTER (WHERE {cond})" for _, _, cond in checks]
    try:
        stats = list(con.sql(f"SELECT {', '.join(aggs)} FROM {source}").fetchall()[0])
    except duckdb.Error as exc:
        if is_parquet:
            raise InputError(f"{path}: cannot be read: {str(exc).splitlines()[0]}", path=path) from exc
        raise _csv_error(path, exc) from exc
    n_rows = stats.pop(0)
    nulls = {col: stats.pop(0) for col in null_cols}
    id_int = {col: stats.pop(0) for col in id_cols}
    maybe_repeated = [col for col in unique if stats.pop(0)]
    checks = [(col, "null", f"{_q(col)} IS NULL") for col in null_cols] + checks
    bad_counts = [nulls[c] for c in null_cols] + stats
    if n_rows == 0 and not allow_empty:
        raise InputError(f"{path}: the file has a header but no data rows", path=path)

    if any(bad_counts):
        _raise_first_bad(con, path, src_path, source, delim, is_parquet, checks, bad_counts)

    exprs = []
    order = required + [f for f in fields if f not in required]
    for col in order:
        if col in types:
            expr, _ = _parse_expr(col, src_types[col], types[col], id_int.get(col))
        else:
            expr = _q(col)
        exprs.append(f"{expr} AS {_q(col)}")
    select = ", ".join(exprs)
    rel = con.sql(f"SELECT {select} FROM {source}")

    for col in maybe_repeated:
        _check_unique(con, rel, path, f"SELECT __row, {select} FROM {_row_source(source, is_parquet)}", col)
    return rel


def _row_source(source: str, is_parquet: bool) -> str:
    if is_parquet:
        numbered = source[:-1] + ", file_row_number = true)"
        return f"(SELECT file_row_number + 1 AS __row, * EXCLUDE (file_row_number) FROM {numbered})"
    # read_csv has no file_row_number; row_number() OVER () follows the file order (DuckDB keeps
    # insertion order for a window without ORDER BY). Only used on the error path.
    return f"(SELECT row_number() OVER () AS __row, * FROM {source})"


def _raise_first_bad(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    src_path: Path,
    source: str,
    delim: str,
    is_parquet: bool,
    checks: list[tuple[str, str, str]],
    bad_counts: Sequence[int],
) -> None:
    failing = [(c, k, cond) for (c, k, cond), n in zip(checks, bad_counts, strict=True) if n]
    cases = " ".join(f"WHEN {cond} THEN {i}" for i, (_, _, cond) in enumerate(failing))
    where = " OR ".join(f"({cond})" for _, _, cond in failing)
    numbered = _row_source(source, is_parquet)
    row, which = con.sql(
        f"SELECT __row, CASE {cases} END FROM {numbered} WHERE {where} ORDER BY __row LIMIT 1"
    ).fetchall()[0]
    col, kind, _ = failing[which]
    value = con.sql(f"SELECT CAST({_q(col)} AS VARCHAR) FROM {numbered} WHERE __row = {row}").fetchall()[0][0]
    line = None if is_parquet else _file_line_of_row(src_path, delim, row)
    where_txt = f"data row {row}" + (f" (line {line})" if line else "")
    total = sum(bad_counts)
    more = f"; {total - 1} more problem value(s) in the file" if total > 1 else ""
    if kind == "null":
        msg = f"{path}: {where_txt}, column {col}: empty value in a required column{more}"
    else:
        msg = f"{path}: {where_txt}, column {col}: {value!r} is not {_WHAT[kind]}{more}"
    raise InputError(msg, path=path, row=row, column=col, value=value, line=line)


def _check_unique(
    con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation, path: Path, with_rows: str, col: str
) -> None:
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
    raise InputError(
        f"{path}: column {col} must be unique but values repeat: {'; '.join(parts)}{more}",
        path=path,
        row=first_rows[1],
        column=col,
        value=rows[0][0],
        rows=first_rows,
    )
