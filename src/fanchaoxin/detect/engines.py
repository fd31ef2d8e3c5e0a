"""The engine a detector runs on: DuckDB on one machine (the default) or Apache Spark on a cluster (#21).

``--engine spark`` runs a job on Spark (``--spark-master``, default ``local[*]``; under ``spark-submit``
the master spark-submit was given). Before any work `spark_session` checks what a Spark job needs and
fails with one line naming what is wrong: Java missing, pyspark missing, the master unreachable
(a bounded TCP check, never a hang). `spark_read_table` then reads the input, also strictly: a path
Spark reads (local, ``hdfs://``, ``s3a://`` …; CSV, Parquet or JSON Lines by suffix, as
fanchaoxin.detect.io) or a table by name (``table:db.orders``), with ``--col NAME=COLUMN`` mappings,
and errors naming the file and column for a missing path, table or column, an empty value, a bad time
or a repeated unique value.

Values are typed by the rules of detect/io.py, so that both engines see the same data:

- ``ID``: a 64-bit integer when every value is a canonical integer of at most 18 digits, else text
  (Parquet integer columns stay integers);
- ``TIMESTAMP`` (the column ``t``: epoch seconds of the *naive local time* in `timezone`, the clock
  the detectors' windows run on), each value by its form as on DuckDB: text ``YYYY-MM-DD HH:MM:SS``
  or ``YYYY-MM-DDTHH:MM:SS`` (an all-zero fraction allowed) as written; the same with an offset
  ``Z``, ``±HH:MM``, ``±HHMM`` or ``±HH``, epoch seconds (9–10 digits) and whole epoch milliseconds
  (12–13 digits) converted to `timezone`; integer columns by the same digit rule; Parquet timestamps
  without a zone as they stand, with a zone converted to `timezone`. Not checked on Spark yet: a
  Parquet timestamp's sub-second part (DuckDB refuses it; Spark drops it).

pyspark is imported only inside the functions that run a Spark job (`fcx detect --help` stays fast).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import zoneinfo
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "EngineError",
    "failure_line",
    "shuffle_bytes",
    "shuffle_line",
    "spark_read_table",
    "spark_session",
]

_ID_RE = "^-?(0|[1-9][0-9]{0,17})$"  # as detect/io.py: canonical integers only, within BIGINT
# the text time forms of detect/io.py (`_time_forms`), each value read by the form it has
_DATETIME_RE = "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.0{1,9})?"
_OFFSET_RE = "(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
_NAIVE_RE = f"^{_DATETIME_RE}$"
_WITH_OFFSET_RE = f"^{_DATETIME_RE}{_OFFSET_RE}$"
_EPOCH_S_RE = "^[0-9]{9,10}$"
_EPOCH_MS_RE = "^[0-9]{12,13}$"
_CONNECT_TIMEOUT_S = 5.0
TABLE_PREFIX = "table:"


class EngineError(Exception):
    """What the chosen engine needs and does not have (Java, pyspark, a reachable master)."""


def _check_pyspark() -> None:
    if importlib.util.find_spec("pyspark") is None:
        raise EngineError(
            "--engine spark needs pyspark, which is not installed: pip install 'fanchaoxin[spark]'"
        )


def _check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return
    if shutil.which("java") is None:
        raise EngineError(
            "--engine spark needs Java (17), which is not installed (no `java` on PATH, no JAVA_HOME): "
            "apt-get install openjdk-17-jre-headless"
        )


def _reachable(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
            return
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise EngineError(
            f"Spark master {what} cannot be reached ({host}:{port}: {reason} within {_CONNECT_TIMEOUT_S:g} s)"
        ) from exc


def _check_master(master: str) -> None:
    """A bounded check that the master answers: ``local…`` always does; ``spark://h:p[,h2:p2]`` and
    ``k8s://https://h:p`` must accept a TCP connection within a few seconds; ``yarn`` needs
    HADOOP_CONF_DIR or YARN_CONF_DIR (the cluster's address is there)."""
    if master.startswith("local"):
        return
    if master.startswith("spark://"):
        hosts = master[len("spark://") :].split(",")
        for hp in hosts:
            host, _, port = hp.rpartition(":")
            if not host or not port.isdigit():
                raise EngineError(f"Spark master {master}: write spark://HOST:PORT")
            _reachable(host, int(port), master)
        return
    if master.startswith("k8s://"):
        url = urlparse(master[len("k8s://") :])
        if not url.hostname:
            raise EngineError(f"Spark master {master}: write k8s://https://HOST:PORT")
        _reachable(url.hostname, url.port or (443 if url.scheme == "https" else 80), master)
        return
    if master == "yarn":
        if not (os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")):
            raise EngineError("Spark master yarn needs HADOOP_CONF_DIR or YARN_CONF_DIR set")
        return
    raise EngineError(f"unknown Spark master {master!r}: local[N], spark://HOST:PORT, k8s://…, or yarn")


def spark_session(master: str = "local[*]", *, conf: Mapping[str, str] | None = None) -> Any:
    """A SparkSession on `master`, after checking (before any work) pyspark, Java and the master.

    Under spark-submit (PYSPARK_GATEWAY_PORT set) the default ``local[*]`` is not forced on top of
    the master spark-submit was given. The session clock is UTC: the detectors' epoch seconds are
    those of naive local times, as DuckDB's ``epoch(TIMESTAMP)``.
    """
    _check_pyspark()
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if not submitted:
        _check_java()
        _check_master(master)
    from pyspark.sql import SparkSession

    if master.startswith("local") and not submitted:
        # local workers run this interpreter (its numpy, pyarrow and fanchaoxin), not whatever
        # `python3` is on PATH; on a cluster PYSPARK_PYTHON names the executors' interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("fcx detect")
    if not (submitted and master == "local[*]"):
        builder = builder.master(master)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # TIMESTAMP means a naive local time, as DuckDB's: the same SQL, the same values
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        **(conf or {}),
    }
    for k, v in settings.items():
        builder = builder.config(k, v)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EngineError(f"Spark could not start on {master}: {first}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    if master.startswith("local") and not submitted and spark.sparkContext.getCheckpointDir() is None:
        # reliable checkpoints (jobs that iterate, detect/dcube.py) survive a lost task; on a cluster
        # the data team sets spark.checkpoint.dir on shared storage (docs/cluster.md)
        where = tempfile.mkdtemp(prefix="fcx-spark-checkpoints-")
        atexit.register(shutil.rmtree, where, True)
        spark.sparkContext.setCheckpointDir(where)
    return spark


def _kind(path: str, local: Path | None) -> str:
    """csv, parquet or json, as detect/io.py tells them: Parquet by its magic bytes or suffix, JSON Lines
    by suffix, else CSV (a local directory: by its first data file; a remote path: by its suffix)."""
    p = local if local is not None else Path(urlparse(path).path)
    if local is not None and local.is_dir():
        files = sorted(f for f in local.iterdir() if f.is_file() and not f.name.startswith(("_", ".")))
        if files:
            p = files[0]
    if local is not None and p.is_file():
        with p.open("rb") as fh:
            if fh.read(4) == b"PAR1":
                return "parquet"
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "json"
    return "csv"


def _local(path: str) -> Path | None:
    if "://" not in path:
        return Path(path)
    if path.startswith("file://"):
        return Path(urlparse(path).path)
    return None


def failure_line(exc: BaseException) -> str | None:
    """One line for a Spark job that failed after the checks (storage gone, a task failing more often
    than Spark retries it, an executor out of memory) — None for an exception that is not Spark's."""
    if type(exc).__module__.split(".")[0] not in ("pyspark", "py4j"):
        return None
    return f"the Spark job failed: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    """The telling line of a Spark (JVM) error: its innermost cause, without the class or SQLSTATE."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("\t")]
    causes = [ln.removeprefix("Caused by: ") for ln in lines if ln.startswith("Caused by: ")]
    text = causes[-1] if causes else (lines[0] if lines else type(exc).__name__)
    head, sep, rest = text.partition(": ")
    if sep and "." in head and " " not in head:  # a Java class name
        text = rest
    return text.split(" SQLSTATE:")[0].strip()[:300]


def _load(spark: Any, source: str, wanted: list[str]) -> tuple[Any, str, str]:
    """(DataFrame with the file's columns as read, what the columns are called in errors, kind)."""
    from pyspark.errors import AnalysisException

    from fanchaoxin.detect.io import InputError

    if source.startswith(TABLE_PREFIX):
        name = source[len(TABLE_PREFIX) :]
        if not spark.catalog.tableExists(name):
            raise InputError(f"{source}: no such table in the Spark catalogue", path=source)
        return spark.table(name), "the table has", "table"
    local = _local(source)
    if local is not None:
        if not local.exists():
            raise InputError(f"{source}: no such file", path=source)
        if local.is_file() and local.stat().st_size == 0:
            raise InputError(f"{source}: the file is empty (no header, no data)", path=source)
    kind = _kind(source, local)
    reader = spark.read
    try:
        if kind == "parquet":
            return reader.parquet(source), "the file has", kind
        if kind == "json":
            json_reader = reader.options(primitivesAsString="true", mode="FAILFAST")
            return json_reader.json(source), "the first object has keys", kind
        delim = ","
        if local is not None and local.is_file():
            from fanchaoxin.detect.io import _header

            delim = _header(local, wanted)[1]  # as DuckDB's reader picks it
        # FAILFAST: a ragged row is an error, as on DuckDB (strict_mode), never a row quietly padded
        csv_reader = reader.options(
            header="true", inferSchema="false", delimiter=delim, quote='"', escape='"', mode="FAILFAST"
        )
        df = csv_reader.csv(source)
        df = df.toDF(*[c.lstrip("\ufeff").strip() for c in df.columns])  # header names as DuckDB reads them
        return df, "the header has", kind
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or ["?"])[0]
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in first:
            raise InputError(f"{source}: no such file", path=source) from exc
        raise InputError(f"{source}: cannot be read as {kind}: {first}", path=source) from exc
    except Exception as exc:  # e.g. a malformed JSON line met while inferring the schema
        raise InputError(f"{source}: cannot be read as {kind}: {_reason(exc)}", path=source) from exc


def _text_time(F: Any, text: Any, zone: str) -> Any:
    """Epoch seconds of the naive local time in `zone` of a text time, by the forms of detect/io.py:
    ``YYYY-MM-DD[ T]HH:MM:SS`` (an all-zero fraction allowed) as written; the same with an offset
    ``Z``/``±HH:MM``/``±HHMM``/``±HH``, epoch seconds (9–10 digits) or whole epoch milliseconds
    (12–13 digits) converted to `zone`. NULL where the value has none of these forms."""
    # the first 19 characters are the wall-clock time in every datetime form; as UTC (the session clock)
    wall = F.unix_seconds(
        F.try_to_timestamp(F.regexp_replace(F.substring(text, 1, 19), "T", " "), F.lit("yyyy-MM-dd HH:mm:ss"))
    )
    offset = F.regexp_extract(text, _OFFSET_RE + "$", 1)
    hours = F.regexp_extract(offset, "^[+-]([0-9]{2})", 1)
    minutes = F.regexp_extract(offset, "^[+-][0-9]{2}:?([0-9]{2})$", 1)
    sign = F.when(offset.startswith("-"), F.lit(-1)).otherwise(F.lit(1))
    offset_s = sign * (
        F.coalesce(hours.try_cast("long"), F.lit(0)) * 3600
        + F.coalesce(minutes.try_cast("long"), F.lit(0)) * 60
    )  # "Z": no hours, no minutes
    digits = text.try_cast("long")
    instant = (
        F.when(text.rlike(_WITH_OFFSET_RE), wall - offset_s)
        .when(text.rlike(_EPOCH_S_RE), digits)
        .when(text.rlike(_EPOCH_MS_RE) & text.endswith("000"), F.floor(digits / 1000))
    )  # whole milliseconds only: a fraction of a second is an error, never rounded
    local = F.unix_seconds(F.from_utc_timestamp(F.timestamp_seconds(instant), zone))
    every_form = F.when(text.rlike(_NAIVE_RE), wall).otherwise(local)
    # the common form first: a 19-character `YYYY-MM-DD HH:MM:SS` parses with one strict formatter call
    # (half the cost of the regular expressions above); coalesce tries the rest only where it failed
    strict = F.try_to_timestamp(text, F.lit("yyyy-MM-dd HH:mm:ss"))
    plain = F.when(F.length(text) == 19, F.unix_seconds(strict))
    return F.coalesce(plain, every_form)


def spark_read_table(
    spark: Any,
    source: str,
    required_columns: Iterable[str],
    *,
    types: Mapping[str, str],
    unique: Iterable[str] = (),
    nullable: Iterable[str] = (),
    allow_empty: bool = False,
    columns: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
    epoch_time: bool = True,
    rest: bool = False,
) -> Any:
    """Read `source` on Spark, validated in one pass before any detection work; the DataFrame has the
    required columns under the detector's names, typed as detect/io.py types them (``VARCHAR``,
    ``ID``, ``BIGINT``, ``DOUBLE``, ``BOOLEAN``, ``DATE``, ``TIMESTAMP``).

    With `epoch_time` (order brushing's kernel) the one ``TIMESTAMP`` column becomes a column ``t`` of
    epoch seconds (see the module docstring); without it every ``TIMESTAMP`` column keeps its name as
    Spark's ``TIMESTAMP_NTZ`` — the naive local time DuckDB's ``TIMESTAMP`` holds, so that the same SQL
    (fanchaoxin.detect.sql) sees the same values on both engines. `nullable` lists required columns
    that may be empty, `allow_empty` accepts a file without data rows, and `rest` keeps the file's
    other columns after the required ones, as read (as detect/io.py does).

    Raises fanchaoxin.detect.io.InputError naming the file (or table) and the file's column.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from fanchaoxin.detect.io import InputError, _check_columns, _column_text

    mapping = {str(k): str(v) for k, v in (columns or {}).items() if k != v}
    required = list(dict.fromkeys(required_columns))

    def fc(name: str) -> str:
        return mapping.get(name, name)

    try:
        zoneinfo.ZoneInfo(timezone)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise InputError(f"unknown time zone {timezone!r}: give an IANA name such as Asia/Shanghai") from exc
    df, has, _ = _load(spark, source, [fc(c) for c in required])
    fields = list(df.columns)
    _check_columns(source, fields, [fc(c) for c in required], mapping, has)  # type: ignore[arg-type]
    dtypes = {f.name: f.dataType for f in df.schema.fields}

    # one pass: rows, empty values, ID columns all integers, bad times (count and one example), repeats
    nullable_set = set(nullable)
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for c in required:
        if c not in nullable_set:
            aggs.append(F.sum(F.col(fc(c)).isNull().cast("long")).alias(f"__null_{c}"))
    id_text = [c for c, t in types.items() if t == "ID" and isinstance(dtypes[fc(c)], T.StringType)]
    for c in id_text:
        aggs.append(F.min(F.col(fc(c)).rlike(_ID_RE).cast("int")).alias(f"__int_{c}"))
    times: dict[str, Any] = {}
    for c, t in types.items():
        if t != "TIMESTAMP":
            continue
        col = F.col(fc(c))
        dtype = dtypes[fc(c)]
        if isinstance(dtype, (T.StringType, T.IntegralType)):
            times[c] = _text_time(F, col.cast("string"), timezone)
        elif isinstance(dtype, T.TimestampNTZType):
            times[c] = F.unix_seconds(col.cast("timestamp"))  # the session clock is UTC: as written
        elif isinstance(dtype, T.TimestampType):
            times[c] = F.unix_seconds(F.from_utc_timestamp(col, timezone))  # an instant, to local time
        else:
            raise InputError(
                f"{source}: column {_column_text(fc(c), mapping)} is {dtype.simpleString()}; the Spark "
                "engine reads times as text, integers (epoch) or Parquet timestamps",
                path=source,
                column=fc(c),
            )
        bad = col.isNotNull() & times[c].isNull()
        aggs.append(F.sum(bad.cast("long")).alias(f"__bad_{c}"))
        aggs.append(F.first(F.when(bad, col.cast("string")), ignorenulls=True).alias(f"__ex_{c}"))
    values: dict[str, Any] = {}  # the other typed columns (BIGINT, DOUBLE, BOOLEAN, DATE)
    for c, t in types.items():
        if t not in _VALUE_TYPES:
            continue
        col = F.col(fc(c))
        values[c] = _typed_value(F, T, col, dtypes[fc(c)], t)
        bad = col.isNotNull() & values[c].isNull()
        aggs.append(F.sum(bad.cast("long")).alias(f"__bad_{c}"))
        aggs.append(F.first(F.when(bad, col.cast("string")), ignorenulls=True).alias(f"__ex_{c}"))
    unique = list(dict.fromkeys(unique))
    for c in unique:
        aggs.append(F.count_distinct(F.col(fc(c))).alias(f"__distinct_{c}"))
    try:
        stats = df.agg(*aggs).collect()[0].asDict()
    except Exception as exc:  # Spark's reader (a malformed row under FAILFAST) or storage failed
        raise InputError(f"{source}: cannot be read: {_reason(exc)}", path=source) from exc
    n_rows = stats["__rows"]
    if n_rows == 0 and not allow_empty:
        raise InputError(f"{source}: the file has a header but no data rows", path=source)
    for c in required:
        if c not in nullable_set and stats[f"__null_{c}"]:
            raise InputError(
                f"{source}: column {_column_text(fc(c), mapping)}: {stats[f'__null_{c}']} empty value(s) "
                "in a required column",
                path=source,
                column=fc(c),
            )
    for c in times:
        n_bad = stats[f"__bad_{c}"]
        if n_bad:
            value = stats[f"__ex_{c}"]
            raise InputError(
                f"{source}: column {_column_text(fc(c), mapping)}: {value!r} is not a time (YYYY-MM-DD "
                f"HH:MM:SS, ISO 8601 with an offset, or epoch seconds); {n_bad} such value(s)",
                path=source,
                column=fc(c),
                value=value,
            )
    for c in values:
        n_bad = stats[f"__bad_{c}"]
        if n_bad:
            value = stats[f"__ex_{c}"]
            raise InputError(
                f"{source}: column {_column_text(fc(c), mapping)}: {value!r} is not {_WHAT[types[c]]}; "
                f"{n_bad} such value(s)",
                path=source,
                column=fc(c),
                value=value,
            )
    for c in unique:
        if stats[f"__distinct_{c}"] != n_rows:
            dup = df.groupBy(fc(c)).count().filter("count > 1").orderBy(fc(c)).limit(5).collect()
            parts = ", ".join(f"{r[0]!r} ({r[1]} times)" for r in dup)
            raise InputError(
                f"{source}: column {_column_text(fc(c), mapping)} must be unique but values repeat: {parts}",
                path=source,
                column=fc(c),
                value=dup[0][0] if dup else None,
            )

    out = []
    for c in required:
        t = types.get(c)
        col = F.col(fc(c))
        integers = stats[f"__int_{c}"] == 1 if c in id_text else isinstance(dtypes[fc(c)], T.IntegralType)
        if t == "ID" and integers:
            col = col.cast("long")
        if t == "TIMESTAMP":
            if epoch_time:
                out.append(times[c].alias("t"))
            else:
                out.append(F.timestamp_seconds(times[c]).cast("timestamp_ntz").alias(c))
        elif t in _VALUE_TYPES:
            out.append(values[c].alias(c))
        elif t == "VARCHAR" or (t == "ID" and not integers):
            out.append(col.cast("string").alias(c))
        else:
            out.append(col.alias(c))
    if rest:
        taken = {fc(c) for c in required}
        # a file column whose name --col gives to another column is dropped, as detect/io.py drops it
        # (column names are case-insensitive on both engines)
        shadowed = {k.lower() for k in mapping} - {v.lower() for v in mapping.values()}
        out += [F.col(f"`{n}`") for n in fields if n not in taken and n.lower() not in shadowed]
    return df.select(*out)


_VALUE_TYPES = ("BIGINT", "DOUBLE", "BOOLEAN", "DATE")
_WHAT = {
    "BIGINT": "an integer",
    "DOUBLE": "a number",
    "BOOLEAN": "true/false",
    "DATE": "a date YYYY-MM-DD",
}


def _typed_value(F: Any, T: Any, col: Any, dtype: Any, target: str) -> Any:
    """`col` as `target`, NULL where a non-empty value does not parse — the rules of detect/io.py."""
    text = isinstance(dtype, T.StringType)
    if target == "BIGINT":
        if isinstance(dtype, T.IntegralType):
            return col.cast("long")
        if text:
            trimmed = F.trim(col)
            return F.when(trimmed.rlike("^[+-]?[0-9]+$"), trimmed.try_cast("long"))
        return F.when(col == F.round(col), col.try_cast("long"))
    if target == "DOUBLE":
        return F.trim(col).try_cast("double") if text else col.try_cast("double")
    if target == "BOOLEAN":
        return F.trim(col).try_cast("boolean") if text else col.try_cast("boolean")
    # DATE
    if text:
        return F.try_to_timestamp(F.trim(col), F.lit("yyyy-MM-dd")).cast("date")
    return col.try_cast("date")


def shuffle_bytes(spark: Any) -> tuple[int, int] | None:
    """(bytes written, bytes read) by this session's shuffles so far — what a job moves between
    machines, the figure a data team sizes a cluster's network and disks by. From Spark's own status
    store (the numbers its UI shows); None where this Spark does not expose it."""
    try:
        jvm, gateway = spark._jvm, spark.sparkContext._gateway
        store = spark.sparkContext._jsc.sc().statusStore()
        every = jvm.java.util.ArrayList()  # no status filter: all stages
        no_quantiles = gateway.new_array(jvm.double, 0)
        stages = store.stageList(every, False, False, no_quantiles, jvm.java.util.ArrayList())
        written = read = 0
        it = stages.iterator()
        while it.hasNext():
            stage = it.next()
            written += int(stage.shuffleWriteBytes())
            read += int(stage.shuffleReadBytes())
        return written, read
    except Exception:
        return None


def shuffle_line(spark: Any) -> str | None:
    """One line for the job's log: the shuffle volume (see `shuffle_bytes`)."""
    got = shuffle_bytes(spark)
    if got is None:
        return None
    return f"Spark shuffle: {got[0] / 2**20:,.1f} MiB written, {got[1] / 2**20:,.1f} MiB read"
