"""One SQL text on both engines (detect/sql.py) and Spark's typed reader (detect/engines.py), #21.

The jobs' own tests compare whole outputs; these pin the layer under them: the constructs the jobs
use give the same rows on DuckDB and on Spark, temporary tables are created and dropped alike, and
the Spark reader types and refuses values as detect/io.py does.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from fanchaoxin import launch
from fanchaoxin.detect import engines, io
from fanchaoxin.detect.sql import DuckSql, SparkSql

ROWS = [
    (i, f"d{i % 3}", f"r{i % 4}", dt.datetime(2024, 1, 1) + dt.timedelta(minutes=7 * i), 1.25 * i)
    for i in range(40)
]

# each query is written once, in DuckDB's dialect, and must give the same rows on both engines
QUERIES = [
    "SELECT d, r, GROUPING(d) AS gd, count(*) AS n FROM t GROUP BY GROUPING SETS ((d, r), (d), (r)) "
    "HAVING GROUPING(d) + GROUPING(r) > 0 OR count(*) >= 3 ORDER BY ALL",
    "SELECT count(*) FILTER (WHERE fare > 10), CAST(sum(CAST(fare AS DECIMAL(38, 6))) AS DOUBLE) FROM t",
    "SELECT d, r, (date_diff('second', lag(ts) OVER w, ts) BETWEEN 0 AND 1800)::INT AS near, "
    "row_number() OVER (PARTITION BY d, CAST(ts AS DATE) ORDER BY ts, id) AS k "
    "FROM t WINDOW w AS (PARTITION BY r ORDER BY ts, id) ORDER BY d, r, k",
    "SELECT a.id, b.id FROM t a JOIN t b ON (a.d, a.r) < (b.d, b.r) AND a.id = b.id + 1 ORDER BY ALL",
    "SELECT t.id FROM t SEMI JOIN (SELECT d FROM t WHERE id < 3) s USING (d) ORDER BY id",
    "SELECT t.id FROM t ANTI JOIN (SELECT r FROM t WHERE id < 2) s USING (r) ORDER BY id",
    "SELECT d, CAST(epoch(max(ts)) AS BIGINT), strftime(max(ts), '%Y-%m-%d %H:%M:%S'), avg(fare), "
    "list_sort(list(DISTINCT r)) FROM t GROUP BY d ORDER BY d",
    "SELECT TIMESTAMP '2024-01-01 01:00:00' <= min(ts), any_value(d) IS NOT NULL FROM t WHERE id = 9",
]


@pytest.fixture
def engines_both(spark):
    con = duckdb.connect()
    rel = con.sql(
        "SELECT * FROM (VALUES "
        + ", ".join(
            f"({i}, '{d}', '{r}', TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}', {f})" for i, d, r, ts, f in ROWS
        )
        + ") t(id, d, r, ts, fare)"
    )
    df = spark.createDataFrame(ROWS, "id long, d string, r string, ts timestamp_ntz, fare double")
    duck, sp = DuckSql(con), SparkSql(spark)
    duck.table("t", rel)
    sp.table("t", df)
    yield duck, sp
    sp.close()


@pytest.mark.parametrize("query", QUERIES)
def test_one_text_the_same_rows(engines_both, query):
    duck, sp = engines_both
    assert sp.rows(query) == duck.rows(query)


def test_temporary_tables_created_read_and_dropped_alike(engines_both, spark):
    duck, sp = engines_both
    script = (
        "CREATE OR REPLACE TEMP TABLE per_d AS SELECT d, count(*) AS n FROM t GROUP BY d;"
        "CREATE OR REPLACE TEMP VIEW big AS SELECT d FROM per_d WHERE n > 13"
    )
    for engine in (duck, sp):
        engine.run(script)
        assert engine.rows("SELECT d FROM big ORDER BY d") == [("d0",)]
        engine.run("DROP VIEW big; DROP TABLE IF EXISTS per_d")
    assert not spark.catalog.tableExists("per_d")
    with pytest.raises(duckdb.CatalogException):
        duck.rows("SELECT * FROM per_d")


def test_arrow_and_small_tables(engines_both):
    duck, sp = engines_both
    rates = pa.table({"d": ["d0", "d1"], "rate": [0.5, 0.25]})
    query = "SELECT t.d, sum(rate) AS s FROM t JOIN rates USING (d) GROUP BY t.d ORDER BY t.d"
    for engine in (duck, sp):
        engine.small("rates", rates)
    assert (
        sp.arrow(query).to_pylist()
        == duck.arrow(query).to_pylist()
        == [
            {"d": "d0", "s": 7.0},
            {"d": "d1", "s": 3.25},
        ]
    )


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


TYPES = {"n": "BIGINT", "x": "DOUBLE", "ok": "BOOLEAN", "day": "DATE", "at": "TIMESTAMP", "id": "ID"}


def test_the_spark_reader_types_values_as_detect_io(spark, tmp_path):
    src = _csv(
        tmp_path / "typed.csv",
        "id,n,x,ok,day,at,note\n"
        "7,-3,2.5,true,2024-02-29,2024-03-01 08:00:00,a\n"
        "12, 4 ,1e3,false,2024-03-01,2024-03-01T00:00:00Z,\n",
    )
    want = ["id", "n", "x", "ok", "day", "at"]
    df = engines.spark_read_table(
        spark, src, want, types=TYPES, nullable=["x"], epoch_time=False, rest=True, timezone="Asia/Shanghai"
    )
    got = [tuple(r) for r in df.orderBy("id").collect()]
    rel = io.read_table(src, want, types=TYPES, nullable=["x"], timezone="Asia/Shanghai")
    assert got == rel.order("id").fetchall()
    assert got[1][5] == dt.datetime(2024, 3, 1, 8, 0)  # Z converted to Asia/Shanghai, as DuckDB does
    assert df.columns == [*want, "note"]  # the file's other columns follow, as read


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("n", "12.0", "is not an integer"),
        ("x", "two", "is not a number"),
        ("ok", "maybe", "is not true/false"),
        ("day", "2024-02-30", "is not a date YYYY-MM-DD"),
    ],
)
def test_the_spark_reader_names_a_bad_value(spark, tmp_path, column, value, says):
    good = {"id": "1", "n": "1", "x": "1.5", "ok": "true", "day": "2024-01-01", "at": "2024-01-01 00:00:00"}
    bad = dict(good, **{column: value})
    src = _csv(
        tmp_path / "bad.csv",
        ",".join(good) + "\n" + ",".join(good.values()) + "\n" + ",".join(bad.values()) + "\n",
    )
    with pytest.raises(io.InputError) as err:
        engines.spark_read_table(spark, src, list(good), types=TYPES, epoch_time=False)
    assert f"column {column}: {value!r} {says}; 1 such value(s)" in str(err.value)


def test_decimal_sums_reach_python_exactly(engines_both):
    duck, sp = engines_both
    query = "SELECT sum(CAST(fare AS DECIMAL(38, 6))) FROM t"
    assert sp.rows(query) == duck.rows(query) == [(Decimal("975.000000"),)]


def test_a_spark_job_failing_after_the_checks_is_one_line(spark, monkeypatch, capsys):
    try:
        spark.sql("SELECT assert_true(id < 0, 'an executor gave up') FROM range(3)").collect()
    except Exception as exc:
        failed = exc
    assert engines.failure_line(failed).startswith("the Spark job failed: ")
    assert "an executor gave up" in engines.failure_line(failed)
    assert engines.failure_line(ValueError("not Spark's")) is None

    def detect_app(args, prog_name):
        raise failed

    monkeypatch.setitem(launch.STANDALONE, "detect", detect_app)
    with pytest.raises(SystemExit) as ended:
        launch.main(["detect", "lockstep"])
    assert ended.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the Spark job failed: ") and err.count("\n") == 1
    monkeypatch.setitem(
        launch.STANDALONE, "detect", lambda args, prog_name: (_ for _ in ()).throw(KeyError("x"))
    )
    with pytest.raises(KeyError):  # anything else is not hidden
        launch.main(["detect", "lockstep"])
