"""Empty parcels on Spark (#21): the same job as on DuckDB, byte-identical answers, clear errors.

Spark runs in ``local[2]``, one session for the whole test run (tests/detect/conftest.py). Where Java or
pyspark is missing these tests FAIL saying what to install — `make test` never skips them silently.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path

from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.simulate.marketplace import generate
from tests.detect.conftest import MASTER
from tests.detect.test_parcels import HEAD


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["detect", "parcels", *args])


def _normalised(path: Path) -> str:
    """An output or report without what differs from run to run: the time it was made and took."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        doc = json.loads(text)
        doc.pop("generated_at", None)
        for meta in (doc, doc.get("meta", {})):
            meta.pop("seconds", None)
        return json.dumps(doc, ensure_ascii=False)
    text = re.sub(r"Generated [^<·]*·", "Generated ·", text)
    return re.sub(r"<th>seconds</th><td>[^<]*</td>", "<th>seconds</th><td></td>", text)


def both(tmp_path: Path, source: str, *extra: str, output: str = "findings.json") -> dict[str, str]:
    """Run the CLI on both engines; assert the findings (`output`: .json or .csv), the JSON report and
    the HTML report identical; return DuckDB's."""
    outputs: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        d = tmp_path / engine
        d.mkdir(exist_ok=True)
        args = ["-i", source, "-o", str(d / output), "--engine", engine, "--spark-master", MASTER, *extra]
        res = _invoke([*args, "--report-json", str(d / "r.json"), "--report-html", str(d / "r.html")])
        assert res.exit_code == 0, (engine, res.output)
        outputs[engine] = {name: _normalised(d / name) for name in (output, "r.json", "r.html")}
    for key, want in outputs["duckdb"].items():
        assert outputs["spark"][key] == want, key
    return outputs["duckdb"]


# ------------------------------------------------------------------------------------ the same answers


def test_simulated_waybills_identical(spark, tmp_path):
    generate(tmp_path / "sim", seed=5, scale=0.05)
    got = both(tmp_path, str(tmp_path / "sim" / "waybills.csv"), output="findings.csv")
    levels = [json.loads(line)["level"] for line in _evidence(got["findings.csv"])]
    assert levels.count("waybill") > 20 and "sender" in levels and "courier" in levels


def _evidence(csv_text: str) -> list[str]:
    return [r["evidence"] for r in csv.DictReader(io.StringIO(csv_text))]


def trap_rows() -> list[str]:
    """Honest traffic and the cases that could make the engines part: unknown values, a parcel signed
    before pick-up, flagged waybills picked up in the same second (ordered by waybill), text ids that
    sort differently as numbers, Chinese ids, a colluding courier explained by no sender, 空包网
    senders converging on one courier, times with offsets and in epoch seconds."""
    rng = random.Random(21)
    rows = []
    for i in range(700):  # honest: 40 senders, 6 couriers, some light documents and scanner outages
        s, c = f"s{rng.randint(1, 40)}", f"ZTO-{rng.randint(1, 6)}"
        weight = rng.choice(["0.08", "0.3", "1.2", "2.5", ""]) if rng.random() < 0.3 else "0.9"
        scans = "0" if rng.random() < 0.04 else str(rng.randint(2, 7))
        day, hour = rng.randint(1, 20), rng.randint(8, 18)
        sign = "" if rng.random() < 0.05 else f"2024-03-{day + 2:02d} {hour:02d}:30:00"
        dist = "" if rng.random() < 0.03 else str(rng.choice([12, 180, 1200]))
        rows.append(
            f"H{i:04d},{c},{s},{weight},2024-03-{day:02d} {hour:02d}:00:00,{sign},杭州,北京,{dist},{scans}"
        )
    for i in range(15):  # a brushing shop: empty parcels via its colluder 韵达-9, real ones via ZTO-1
        rows.append(f"E{i},韵达-9,店铺甲,0.01,2024-03-05 10:00:00,2024-03-05 12:00:00,杭州,北京,1200,0")
    for i in range(30):
        rows.append(f"R{i},ZTO-1,店铺甲,1.1,2024-03-05 10:00:00,2024-03-07 10:00:00,杭州,北京,1200,5")
    for k in range(4):  # 空包网 customers: only empty parcels, via ZTO-8 and others
        for i in range(9):
            t = ["2024-03-06T09:00:00+08:00", "1709686800", "2024-03-06 01:00:00Z", "2024-03-06 09:00:00"][k]
            rows.append(f"K{k}{i},ZTO-{8 + i % 3},kb{k},0.02,{t},,上海,广州,1300,0")
    rows.append("X1,ZTO-2,s2,1.5,2024-03-02 10:00:00,2024-03-01 10:00:00,杭州,上海,200,3")  # signed before
    rows.append("U1,ZTO-2,s10,,2024-03-01 10:00:00,,杭州,北京,,0")  # unknown weight, distance, sign
    return rows


def test_trap_cases_identical(spark, tmp_path):
    src = tmp_path / "w.csv"
    src.write_text(HEAD + "".join(r + "\n" for r in trap_rows()), encoding="utf-8")
    got = both(tmp_path, str(src))
    doc = json.loads(got["findings.json"])
    by_level: dict[str, list] = {}
    for f in doc["findings"]:
        by_level.setdefault(f["evidence"]["level"], []).append(f)
    assert "店铺甲" in {f["subject_ids"][0] for f in by_level["sender"]}
    couriers = {f["subject_ids"][0]: f["evidence"]["test"] for f in by_level["courier"]}
    assert couriers["韵达-9"] == "given its senders" and couriers["ZTO-8"] == "4 senders"  # not explained
    waybills = [f["evidence"]["waybill"] for f in by_level["waybill"]]
    assert waybills[waybills.index("E0") : waybills.index("E0") + 15] == sorted(f"E{i}" for i in range(15))
    assert doc["missing_values"]["sign_time"] > 0 and doc["missing_values"]["distance_km"] > 0


def test_table_by_name_and_column_mapping(spark, tmp_path):
    """A table by name (here a temporary view; Hive or Iceberg tables alike), with --col: the answer
    of the file on DuckDB."""
    src = tmp_path / "w.csv"
    src.write_text(HEAD.replace("waybill,", "wb,", 1) + "".join(r + "\n" for r in trap_rows()), "utf-8")
    out = {e: tmp_path / f"{e}.csv" for e in ("duckdb", "spark")}
    res = _invoke(["-i", str(src), "-o", str(out["duckdb"]), "--col", "waybill=wb"])
    assert res.exit_code == 0, res.output
    spark.read.options(header="true").csv(str(src)).createOrReplaceTempView("trap_waybills")
    args = ["-i", "table:trap_waybills", "-o", str(out["spark"]), "--col", "waybill=wb"]
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 0, res.output
    assert out["spark"].read_bytes() == out["duckdb"].read_bytes()


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    return res.output


def test_missing_path_table_column_and_bad_values(spark, tmp_path):
    out = tmp_path / "o.csv"
    assert "nothere.csv: no such file" in _error(["-i", str(tmp_path / "nothere.csv"), "-o", str(out)])
    assert "table:no_such_table: no such table" in _error(["-i", "table:no_such_table", "-o", str(out)])
    src = tmp_path / "w.csv"
    ok = "A1,ZTO-1,shopA,0.5,2024-03-01 10:00:00,2024-03-02 10:00:00,杭州,北京,1200,4"
    src.write_text(HEAD.replace(",sender,", ",shop,") + ok + "\n", encoding="utf-8")
    msg = _error(["-i", str(src), "-o", str(out)])
    assert str(src) in msg and "sender" in msg and "missing" in msg
    src.write_text(HEAD + ok + "\n" + ok.replace("A1,", "A2,").replace("0.5", "heavy") + "\n", "utf-8")
    msg = _error(["-i", str(src), "-o", str(out)])
    assert "weight_kg" in msg and "'heavy'" in msg
    assert not out.exists()
