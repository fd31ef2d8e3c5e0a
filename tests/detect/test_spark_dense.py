"""`fcx detect dense-blocks --method dcube` on Spark (#21): the same SQL as DuckDB's, byte-identical
blocks.json and reports, clear errors before any work.

Spark runs in ``local[2]`` on the session shared by the detectors' tests (tests/detect/conftest.py);
where Java or pyspark is missing these tests FAIL saying what to install. Each D-Cube round is a Spark
job or two, so the graphs here are small (a few hundred edges, a handful of rounds per block).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fanchaoxin.detect.cli_orders import app
from tests.detect.conftest import MASTER
from tests.detect.test_fraudar import planted


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["dense-blocks", *args])


def _edges_csv(path: Path) -> tuple[Path, set[str]]:
    """A small graph with a planted ring, text ids and a time per edge (repeats included)."""
    r, c, ring, _ = planted(seed=2, m=120, n=40, e=500, size=(10, 6), density=0.9)
    rng = np.random.default_rng(0)
    t = rng.integers(0, 30 * 86400, len(r))
    lines = ["user_id,item,ts"] + [
        f"u{x:03d},p{y:02d},2024-05-{1 + s // 86400:02d} {s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
        for x, y, s in zip(r.tolist(), c.tolist(), t.tolist(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {f"u{x:03d}" for x in ring}


def _normalised(tmp_path: Path, engine: str) -> dict[str, str]:
    doc = json.loads((tmp_path / f"{engine}.json").read_text(encoding="utf-8"))
    doc.pop("generated_at")
    html = (tmp_path / f"{engine}.html").read_text(encoding="utf-8")
    return {
        "blocks": (tmp_path / f"{engine}-blocks.json").read_text(encoding="utf-8"),
        "json": json.dumps(doc, ensure_ascii=False),
        "html": re.sub(r"Generated [^<·]*·", "Generated ·", html),
    }


def _run(tmp_path: Path, engine: str, source: str, *extra: str) -> dict[str, str]:
    args = ["-i", source, "--src", "user_id", "--dst", "item", "-o", str(tmp_path / f"{engine}-blocks.json")]
    args += ["--method", "dcube", "--engine", engine, "--spark-master", MASTER, "--behaviour", "fake_review"]
    args += [
        "--report-json",
        str(tmp_path / f"{engine}.json"),
        "--report-html",
        str(tmp_path / f"{engine}.html"),
    ]
    res = _invoke([*args, *extra])
    assert res.exit_code == 0, (engine, res.output)
    return _normalised(tmp_path, engine)


def test_identical_blocks_and_reports_on_both_engines(spark, tmp_path):
    src, ring = _edges_csv(tmp_path / "edges.csv")
    want = _run(tmp_path, "duckdb", str(src), "--time", "ts", "-k", "2")
    got = _run(tmp_path, "spark", str(src), "--time", "ts", "-k", "2")
    for key, text in want.items():
        assert got[key] == text, key
    blocks = json.loads(want["blocks"])
    assert len(blocks) == 2 and set(blocks[0]["src"]) >= ring and blocks[0]["status"] == "reported"
    assert "first_seen" in blocks[0]["accounts"][0]


def test_a_table_by_name_and_another_measure_identical(spark, tmp_path):
    src, _ = _edges_csv(tmp_path / "edges.csv")
    want = _run(tmp_path, "duckdb", str(src), "--density", "susp", "--policy", "density")
    # a table by name (here a temporary view; Hive or Iceberg tables alike): the same answer
    spark.read.options(header="true").csv(str(src)).createOrReplaceTempView("dense_edges")
    got = _run(tmp_path, "spark", "table:dense_edges", "--density", "susp", "--policy", "density")
    assert got["blocks"] == want["blocks"]
    assert got["html"] == want["html"].replace(str(src), "table:dense_edges")


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--method", "dcube", "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    return res.output


def test_missing_path_table_and_column(spark, tmp_path):
    out = tmp_path / "o.json"
    cols = ["--src", "user_id", "--dst", "item", "-o", str(out)]
    assert "nothere.csv: no such file" in _error(["-i", str(tmp_path / "nothere.csv"), *cols])
    assert "table:no_such_table: no such table" in _error(["-i", "table:no_such_table", *cols])
    src = tmp_path / "e.csv"
    src.write_text("user_id,ip\nu1,1.2.3.4\n", encoding="utf-8")
    msg = _error(["-i", str(src), *cols])
    assert str(src) in msg and "item" in msg
    assert not out.exists()


def test_fraudar_is_refused_on_spark(tmp_path):
    res = _invoke(["-i", "x.csv", "--src", "a", "--dst", "b", "-o", str(tmp_path / "o"), "--engine", "spark"])
    assert res.exit_code == 2 and "FRAUDAR's greedy peeling is sequential" in res.output
