"""Order brushing on Spark (#21): the same kernel as DuckDB's, byte-identical answers, clear errors.

Spark runs in ``local[2]``, one session for the module (a start costs seconds). Where Java or pyspark
is missing these tests FAIL saying what to install — `make test` never skips them silently.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fanchaoxin.detect import brushing, engines
from fanchaoxin.detect.cli_orders import app
from fanchaoxin.simulate.marketplace import generate
from tests.detect.conftest import MASTER
from tests.detect.test_brushing import HAND, T0, write_orders


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["order-brushing", *args])


def _normalised_html(path: Path) -> str:
    return re.sub(r"Generated [^<·]*·", "Generated ·", path.read_text(encoding="utf-8"))


def both(tmp_path: Path, source: str, *extra: str, reports: bool = True) -> dict[str, str]:
    """Run the CLI on both engines in both formats; assert every output identical; return DuckDB's."""
    outputs: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        got: dict[str, str] = {}
        for fmt in ("shopee", "detail"):
            out = tmp_path / f"{engine}-{fmt}.csv"
            args = [
                "-i",
                source,
                "-o",
                str(out),
                "--format",
                fmt,
                "--engine",
                engine,
                "--spark-master",
                MASTER,
            ]
            if reports and fmt == "detail":
                rj, rh = tmp_path / f"{engine}.json", tmp_path / f"{engine}.html"
                args += ["--report-json", str(rj), "--report-html", str(rh)]
            res = _invoke([*args, *extra])
            assert res.exit_code == 0, (engine, res.output)
            got[fmt] = out.read_bytes().decode("utf-8")
            if reports and fmt == "detail":
                doc = json.loads(rj.read_text(encoding="utf-8"))
                doc.pop("generated_at")
                got["json"] = json.dumps(doc, ensure_ascii=False)
                got["html"] = _normalised_html(rh)
        outputs[engine] = got
    for key, want in outputs["duckdb"].items():
        assert outputs["spark"][key] == want, key
    return outputs["duckdb"]


# ------------------------------------------------------------------------------------ the same answers


def test_hand_cases_identical(spark, tmp_path):
    src = write_orders(tmp_path / "orders.csv", HAND)
    got = both(tmp_path, str(src))
    assert got["shopee"] == "shopid,userid\n3,0\n9,0\n10,100\n20,200&201\n"
    assert json.loads(got["json"])["meta"]["brushing_shops"] == 2
    # a table by name (here a temporary view; Hive or Iceberg tables alike): the same answer
    spark.read.options(header="true").csv(str(src)).createOrReplaceTempView("hand_orders")
    out = tmp_path / "table.csv"
    args = ["-i", "table:hand_orders", "-o", str(out), "--format", "shopee", "--engine", "spark"]
    res = _invoke([*args, "--spark-master", MASTER])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == got["shopee"]


def test_simulated_marketplace_identical(spark, tmp_path):
    generate(tmp_path / "sim", seed=5, scale=0.05)
    got = both(tmp_path, str(tmp_path / "sim" / "orders.csv"))
    assert got["detail"].count("\n") > 2  # the simulator plants brushing shops: some are found


TRAPS = {
    # W = 3600 s: only the window starting one second after the first order holds B×3 alone
    "just_after": [(1, 1, "A", 0), (2, 1, "B", 1805), (3, 1, "B", 1805), (4, 1, "B", 1805), (5, 1, "C", 3610)],
    "early_left": [(1, 1, 1, 0), (2, 1, 2, 3600), (3, 1, 2, 3600), (4, 1, 2, 3600)],
    "both_ends": [(1, 1, 1, 0), (2, 1, 1, 1800), (3, 1, 1, 3600), (4, 2, 1, 0), (5, 2, 1, 1800), (6, 2, 1, 3601)],
    "same_second": [(1, 5, 1, 0), (2, 5, 1, 0), (3, 5, 1, 0), (4, 5, 2, 0), (5, 5, 2, 0), (6, 5, 2, 0)],
    "leading_zeros": [(1, "007", "01", 0), (2, "007", "01", 1), (3, "007", "01", 2), (4, "7", "1", 0)],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TRAPS))
def test_trap_cases_identical(spark, tmp_path, case):
    src = write_orders(tmp_path / "orders.csv", TRAPS[case])
    both(tmp_path, str(src), reports=False)


def _forms(t: int, i: int) -> str:
    """The time T0 + t (naive, Asia/Shanghai) in the i-th of io.py's text forms."""
    local = T0 + dt.timedelta(seconds=t)
    utc = local - dt.timedelta(hours=8)
    epoch = int(utc.replace(tzinfo=dt.UTC).timestamp())
    return [
        f"{local:%Y-%m-%d %H:%M:%S}",
        f"{local:%Y-%m-%dT%H:%M:%S}",
        f"{local:%Y-%m-%d %H:%M:%S}.000",
        f"{local:%Y-%m-%dT%H:%M:%S}+08:00",
        f"{utc:%Y-%m-%dT%H:%M:%S}Z",
        f"{local - dt.timedelta(hours=13, minutes=30):%Y-%m-%d %H:%M:%S}-0530",
        f"{local:%Y-%m-%dT%H:%M:%S}+08",
        str(epoch),
        str(epoch * 1000),
    ][i % 9]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_time_forms_identical(spark, tmp_path, zone):
    lines = ["orderid,shopid,userid,event_time"]
    lines += [f"{o},{s},{u},{_forms(t, i)}" for i, (o, s, u, t) in enumerate(HAND)]
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = both(tmp_path, str(tmp_path / "orders.csv"), "--timezone", zone)
    if zone == "Asia/Shanghai":  # every form names the same instant as HAND's naive times
        assert got["shopee"] == "shopid,userid\n3,0\n9,0\n10,100\n20,200&201\n"


@pytest.mark.parametrize("dialect", ["bom_crlf_blank_line", "tab", "spaced_header"])
def test_csv_dialects_identical(spark, tmp_path, dialect):
    text = write_orders(tmp_path / "plain.csv", HAND).read_text(encoding="utf-8")
    if dialect == "bom_crlf_blank_line":
        text = "\ufeff" + text.replace("\n", "\r\n").replace("\r\n3,", "\r\n\r\n3,", 1)
    elif dialect == "tab":
        text = text.replace(",", "\t")
    else:
        text = text.replace("orderid,shopid", "orderid, shopid ", 1)
    (tmp_path / "orders.csv").write_bytes(text.encode("utf-8"))
    got = both(tmp_path, str(tmp_path / "orders.csv"), reports=False)
    assert got["shopee"] == "shopid,userid\n3,0\n9,0\n10,100\n20,200&201\n"


def test_text_ids_and_parameters_identical(spark, tmp_path):
    rng = random.Random(3)
    rows = []
    for i in range(3000):
        shop, user = f"s{rng.randint(1, 40)}", f"u{rng.randint(1, 30)}"
        rows.append((i, shop, user, rng.randint(0, 6) * 1800 + rng.randint(0, 3)))
    src = write_orders(tmp_path / "orders.csv", rows)
    got = both(tmp_path, str(src))
    shops = [line.split(",")[0] for line in got["shopee"].splitlines()[1:]]
    assert shops == sorted(shops) and shops.index("s10") < shops.index("s2")  # text order
    both(tmp_path, str(src), "--rate", "1.5", "--window", "99", "--timezone", "UTC", reports=False)


def test_one_shop_larger_than_a_chunk_on_spark(spark, tmp_path):
    rows = [(i, 1, i % 3, i * 600) for i in range(40)] + [(100 + i, 2, 7, i) for i in range(3)]
    src = write_orders(tmp_path / "orders.csv", rows)
    df = engines.spark_read_table(
        spark,
        str(src),
        brushing.REQUIRED_COLUMNS,
        types={"orderid": "ID", "shopid": "ID", "userid": "ID", "event_time": "TIMESTAMP"},
    )
    chunks = list(brushing.detect_order_brushing_spark(df, chunk_rows=8))
    assert [s for c in chunks for s in c.shop_ids.to_pylist()] == [1, 2]
    assert [(s.shopid, s.users, s.order_ids) for c in chunks for s in c.shops] == [
        (2, [(7, 3)], [100, 101, 102])
    ]


def test_column_mapping_parquet_and_json_lines_identical(spark, tmp_path):
    names = ["order_id", "shop", "buyer", "created_at"]
    times = [(T0 + dt.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S") for *_, t in HAND]
    cols = list(zip(*[r[:3] for r in HAND], strict=True))
    table = pa.table({names[0]: cols[0], names[1]: cols[1], names[2]: cols[2], names[3]: times})
    mapping = ["--col", "orderid=order_id", "--col", "shopid=shop", "--col", "userid=buyer"]
    mapping += ["--col", "event_time=created_at"]
    pq.write_table(table, tmp_path / "orders.parquet")
    want = both(tmp_path, str(tmp_path / "orders.parquet"), *mapping)
    assert want["shopee"] == "shopid,userid\n3,0\n9,0\n10,100\n20,200&201\n"
    naive = pa.array([T0 + dt.timedelta(seconds=t) for *_, t in HAND], pa.timestamp("s"))
    pq.write_table(table.set_column(3, names[3], naive), tmp_path / "typed.parquet")
    assert both(tmp_path, str(tmp_path / "typed.parquet"), *mapping)["shopee"] == want["shopee"]
    lines = [
        json.dumps(dict(zip(names, [*r[:3], tt], strict=True))) for r, tt in zip(HAND, times, strict=True)
    ]
    (tmp_path / "orders.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert both(tmp_path, str(tmp_path / "orders.jsonl"), *mapping)["shopee"] == want["shopee"]


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    return res.output


def test_missing_path_table_and_columns(spark, tmp_path):
    out = tmp_path / "o.csv"
    assert "nothere.csv: no such file" in _error(["-i", str(tmp_path / "nothere.csv"), "-o", str(out)])
    assert "table:no_such_table: no such table" in _error(["-i", "table:no_such_table", "-o", str(out)])
    src = tmp_path / "orders.csv"
    src.write_text("orderid,shopid,buyer,event_time\n1,1,1,2020-01-01 00:00:00\n", encoding="utf-8")
    msg = _error(["-i", str(src), "-o", str(out)])
    assert str(src) in msg and "missing required column(s) userid" in msg
    msg = _error(["-i", str(src), "-o", str(out), "--col", "userid=user_id"])
    assert "the file's column user_id" in msg and str(src) in msg
    assert not out.exists()


def test_bad_values_are_named(spark, tmp_path):
    out = tmp_path / "o.csv"
    src = write_orders(tmp_path / "dup.csv", [(1, 1, 1, 0), (2, 1, 1, 1), (1, 1, 2, 2)])
    msg = _error(["-i", str(src), "-o", str(out)])
    assert "orderid must be unique" in msg and "'1'" in msg
    src = tmp_path / "time.csv"
    src.write_text("orderid,shopid,userid,ts\n1,1,1,2020/01/01 00:00\n", encoding="utf-8")
    msg = _error(["-i", str(src), "-o", str(out), "--col", "event_time=ts"])
    assert "column ts (read as event_time)" in msg and "'2020/01/01 00:00' is not a time" in msg
    src.write_text("orderid,shopid,userid,ts\n1,1,1,1577808000123\n", encoding="utf-8")  # not whole seconds
    assert "'1577808000123' is not a time" in _error(
        ["-i", str(src), "-o", str(out), "--col", "event_time=ts"]
    )
    src = tmp_path / "empty.csv"
    src.write_text("orderid,shopid,userid,event_time\n1,,1,2020-01-01 00:00:00\n", encoding="utf-8")
    assert "column shopid: 1 empty value(s)" in _error(["-i", str(src), "-o", str(out)])
    src = tmp_path / "ragged.csv"
    src.write_text("orderid,shopid,userid,event_time\n1,1,1,2020-01-01 00:00:00,9\n", encoding="utf-8")
    assert "Malformed CSV record: 1,1,1,2020-01-01 00:00:00,9" in _error(["-i", str(src), "-o", str(out)])
    assert not out.exists()


def test_unreachable_master_fails_fast(spark, tmp_path):  # spark: fails saying what is missing
    src = write_orders(tmp_path / "orders.csv", HAND)
    res = _invoke(
        [
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.csv"),
            "--engine",
            "spark",
            "--spark-master",
            "spark://127.0.0.1:9",
        ]
    )
    assert res.exit_code == 2
    assert "Spark master spark://127.0.0.1:9 cannot be reached" in res.output


def test_missing_java_and_pyspark_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(engines.EngineError, match="openjdk-17-jre-headless"):
        engines._check_java()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    with pytest.raises(engines.EngineError, match=re.escape("pip install 'fanchaoxin[spark]'")):
        engines.spark_session(MASTER)
