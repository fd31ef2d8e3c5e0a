"""Lockstep groups (CopyCatch) on Spark (#21): the same prune SQL and search as DuckDB's, byte-identical
outputs and reports, clear errors.

Spark runs in ``local[2]``, one session for the test process (tests/detect/conftest.py). Where Java or
pyspark is missing these tests FAIL saying what to install — `make test` never skips them silently.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect import lockstep
from fanchaoxin.detect.sql import DuckSql, SparkSql
from fanchaoxin.simulate.marketplace import generate
from tests.detect.conftest import MASTER, without_run_times

T0 = dt.datetime(2024, 3, 1, 12, 0, 0)


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["detect", "lockstep", *args])


_normalised = without_run_times


def both(tmp_path: Path, source: str, *extra: str, suffix: str = ".csv") -> dict[str, str]:
    """Run the CLI on both engines; assert the findings file and both reports identical; return DuckDB's."""
    outputs: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}{suffix}"
        rj, rh = tmp_path / f"{engine}.json.report", tmp_path / f"{engine}.html"
        args = ["-i", source, "-o", str(out), "--report-json", str(rj), "--report-html", str(rh)]
        res = _invoke([*args, "--engine", engine, "--spark-master", MASTER, *extra])
        assert res.exit_code == 0, (engine, res.output)
        doc = json.loads(rj.read_text(encoding="utf-8"))
        doc.pop("generated_at")
        outputs[engine] = {
            "output": _normalised(out.read_text(encoding="utf-8")),
            "json": _normalised(json.dumps(doc, ensure_ascii=False)),
            "html": _normalised(rh.read_text(encoding="utf-8")),
        }
    for key, want in outputs["duckdb"].items():
        assert outputs["spark"][key] == want, key
    return outputs["duckdb"]


def _hand_rows() -> list[tuple[str, str, str]]:
    """Two crews of six in lockstep on four items each (equal scores: ties broken by the first account
    by text order), one member acting twice, fans of the same items on other days (no synchrony), and
    background noise that takes the prune more than one round. Labels whose text order is not their
    numeric order and CJK labels."""
    rng = random.Random(7)
    rows: list[tuple[str, str, str]] = []

    def at(seconds: int) -> str:
        return f"{T0 + dt.timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}"

    crews = {
        "p": ["u10", "u2", "u3", "买家1", "u5", "U6"],
        "q": ["b1", "b2", "b10", "卖家", "b5", "b6"],
    }
    for prefix, users in crews.items():
        for k in range(4):
            centre = k * 86_400 + (3600 if prefix == "q" else 0)
            for user in users:
                rows.append((user, f"{prefix}{k}", at(centre + rng.randint(-300, 300))))
    rows.append(("u2", "p1", at(86_400 + 60)))  # an action repeated within the window
    for f in range(6):
        for k in range(4):
            rows.append((f"fan{f}", f"p{k}", at(k * 86_400 + (f + 1) * 7 * 86_400)))
    for _ in range(300):
        user, item = f"n{rng.randint(1, 60)}", f"x{rng.randint(1, 25)}"
        rows.append((user, item, at(rng.randint(0, 20 * 86_400))))
    rng.shuffle(rows)
    return rows


def _write(path: Path, rows: list[tuple[str, str, str]], header: str = "userid,itemid,event_time") -> Path:
    path.write_text(header + "\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ the same answers


def test_simulated_marketplace_identical(spark, tmp_path):
    generate(tmp_path / "sim", seed=5, scale=0.05)
    got = both(tmp_path, str(tmp_path / "sim" / "actions.csv"), suffix=".json")
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text(encoding="utf-8"))["lockstep"]["groups"]
    assert len(json.loads(got["output"])["findings"]) == len(truth)  # the planted groups are found


def test_hand_and_trap_cases_identical(spark, tmp_path):
    src = _write(tmp_path / "actions.csv", _hand_rows(), header="用户,商品,时间")
    cols = ["--user", "用户", "--item", "商品", "--time", "时间", "--min-items", "3", "--window", "1800"]
    got = both(tmp_path, str(src), *cols, "--rho", "1.0")
    lines = got["output"].splitlines()
    assert len(lines) == 3  # header and the two crews, not the fans nor the noise
    # equal scores (24): the crew whose first account comes first in text order ("U6" < "b1") first
    assert ";".join(["U6", "u10", "u2", "u3", "u5", "买家1"]) in lines[1]
    assert ";".join(["b1", "b10", "b2", "b5", "b6", "卖家"]) in lines[2]
    # a table by name (here a temporary view; Hive or Iceberg tables alike): the same answer
    spark.read.options(header="true").csv(str(src)).createOrReplaceTempView("hand_actions")
    out = tmp_path / "table.csv"
    spark_args = ["--engine", "spark", "--spark-master", MASTER]
    res = _invoke(["-i", "table:hand_actions", "-o", str(out), *cols, "--rho", "1.0", *spark_args])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == got["output"]


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return res.output


def test_missing_path_table_and_columns(spark, tmp_path):
    out = tmp_path / "o.csv"
    assert "nothere.csv: no such file" in _error(["-i", str(tmp_path / "nothere.csv"), "-o", str(out)])
    assert "table:no_such_table: no such table" in _error(["-i", "table:no_such_table", "-o", str(out)])
    src = tmp_path / "actions.csv"
    src.write_text("userid,item,event_time\n1,1,2024-03-01 00:00:00\n", encoding="utf-8")
    msg = _error(["-i", str(src), "-o", str(out)])
    assert str(src) in msg and "itemid" in msg
    src.write_text("userid,itemid,event_time\n1,1,2024-03-01 00:00:00\n", encoding="utf-8")
    msg = _error(["-i", str(src), "-o", str(out), "--col", "time=ts"])
    assert str(src) in msg and "the file's column ts" in msg
    assert not out.exists()


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_bad_time_is_named(spark, tmp_path, engine):
    src = tmp_path / "actions.csv"
    src.write_text("userid,itemid,event_time\n1,2,2024-03-01 00:00:00\n1,3,2024/03/01\n", encoding="utf-8")
    res = _invoke(
        ["-i", str(src), "-o", str(tmp_path / "o.csv"), "--engine", engine, "--spark-master", MASTER]
    )
    assert res.exit_code == 2, res.output
    assert "event_time" in res.output and "2024/03/01" in res.output and "Traceback" not in res.output


def _reference_core(pairs: set[tuple[str, str]], m: int, n: int) -> set[tuple[str, str]]:
    """The (n, m)-core by repeated deletion, in plain Python (the rule the prune SQL implements)."""
    while True:
        users: dict[str, int] = {}
        items: dict[str, int] = {}
        for u, i in pairs:
            users[u] = users.get(u, 0) + 1
            items[i] = items.get(i, 0) + 1
        kept = {(u, i) for u, i in pairs if users[u] >= n and items[i] >= m}
        if kept == pairs:
            return kept
        pairs = kept


def test_prune_sql_identical_on_a_cascade(spark):
    # a 3×3 block survives; a path u0–i0–u1–i1–… unravels from both ends, a step a round
    pairs = {(f"k{a}", f"j{b}") for a in range(3) for b in range(3)}
    for k in range(5):
        pairs |= {(f"u{k}", f"i{k}"), (f"u{k + 1}", f"i{k}")}
    pairs |= {("u0", "j0")}  # one path end touches the block
    rows = [*sorted(pairs), ("k0", "j0")]  # a repeated action counts once
    table = pa.table({"u": [u for u, _ in rows], "i": [i for _, i in rows], "t": list(range(len(rows)))})
    want = _reference_core(pairs, 2, 2)
    assert want == {p for p in pairs if p[0].startswith("k")}
    got = {}
    for name, sql in (("duckdb", DuckSql(duckdb.connect())), ("spark", SparkSql(spark))):
        sql.table(
            "lockstep_actions",
            sql.con.from_arrow(table) if name == "duckdb" else spark.createDataFrame(table.to_pandas()),
        )
        rounds: list[int] = []
        final = lockstep.prune_sql(sql, 2, 2, lambda k, n, rounds=rounds: rounds.append(n))
        got[name] = ({(u, i) for u, i in sql.rows(f"SELECT u, i FROM {final}")}, rounds)
        lockstep.drop(sql, final)
        lockstep.drop(sql, "lockstep_actions", "VIEW")
    assert got["duckdb"] == got["spark"]
    assert got["duckdb"][0] == want and len(got["duckdb"][1]) >= 3
