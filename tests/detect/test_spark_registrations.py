"""Bulk registrations (恶意注册) on Spark (#21): the same kernels as DuckDB's, byte-identical answers.

Spark runs in ``local[2]``, one session for the test process (tests/detect/conftest.py). Where Java or
pyspark is missing these tests FAIL saying what to install — `make test` never skips them silently.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from fanchaoxin.detect import registrations as reg
from fanchaoxin.detect.cli_registrations import app
from fanchaoxin.simulate.marketplace import generate
from tests.detect.conftest import MASTER, without_run_times

T0 = dt.datetime(2024, 3, 1, 9, 0, 0)
COLUMNS = ["account", "registered_at", "device_id", "ip", "phone", "nickname"]


def _traps() -> list[tuple]:
    """Hand and trap cases: (account, seconds after T0, device, ip, phone, nickname)."""
    rows: list[tuple] = []
    # a farm: two phones, sequential SIM numbers, in one burst
    rows += [
        (
            f"f{k}",
            60 * k,
            "dev-a" if k % 2 else "DEV-B ",
            f"10.0.0.{k}",
            f"+86 139 1234 {5600 + k}",
            f"user{k}x",
        )
        for k in range(8)
    ]
    # an emulator wall: four devices, one burst — groups joined by the burst
    rows += [
        (f"w{k}", 86_400 + 60 * k, f"emu-{k % 4}", f"5.6.7.{k}", None, f"name{k * 101}") for k in range(20)
    ]
    # a campus behind one IP and a family sharing a phone months apart: no farm
    rows += [
        (f"c{k}", 3 * 86_400 + 120 * k, f"dc{k}", "202.120.1.1", None, f"stud{k * 7}y") for k in range(12)
    ]
    rows += [(f"m{k}", 90 * 86_400 * k, "family-dev", f"9.9.9.{k}", None, None) for k in range(3)]
    # phone runs across a range edge of 10,000 numbers (the Spark partitioning's): 2 + 1 numbers,
    # each side alone shorter than --min-run; and a long run across the edge
    rows += [(f"p{k}", 5 * 86_400 + 30 * k, None, None, str(13800029998 + 2 * k), None) for k in range(3)]
    rows += [(f"q{k}", 6 * 86_400 + 30 * k, None, None, _dashed(13800049995 + k), None) for k in range(9)]
    # a nickname run across a range edge, prefixes in other cases and widths
    rows += [(f"n{k}", 7 * 86_400 + 45 * k, None, None, None, f"Shop_{19998 + k}") for k in range(4)]
    rows += [
        (f"s{k}", 7 * 86_400 + 200 + 50 * k, None, None, None, f"{('SHOP-', 'shop.')[k]}{20002 + k}")
        for k in range(2)
    ]
    # ties: two accounts with the same number at the same second, a run around them (which of them
    # links is by content, never by file order); accounts registered in the same second
    rows += [
        ("tie-b", 8 * 86_400, None, None, "13700000002", None),
        ("tie-a", 8 * 86_400, None, None, "13700000002", None),
    ]
    rows += [(f"t{k}", 8 * 86_400 + (k // 3), None, None, str(13700000003 + k), None) for k in range(6)]
    rows += [(f"z{9 - k}", 9 * 86_400, "same-second", None, None, None) for k in range(6)]
    # placeholders and junk never link
    rows += [(f"j{k}", 10 * 86_400 + k, "unknown", "0", "010-12345678", "快乐的小猪") for k in range(6)]
    return rows  # fmt: skip


def _dashed(number: int) -> str:
    s = str(number)
    return f"{s[:3]}-{s[3:7]}-{s[7:]}"


def _write(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for a, s, *rest in rows:
            w.writerow([a, f"{T0 + dt.timedelta(seconds=s):%Y-%m-%d %H:%M:%S}", *rest])
    return path


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


_normalised = without_run_times


def both(tmp_path: Path, source: str, *extra: str, suffix: str = ".json") -> dict[str, str]:
    """The CLI on both engines; assert output, JSON and HTML reports identical; return DuckDB's."""
    got: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}{suffix}"
        rj, rh = tmp_path / f"{engine}.report.json", tmp_path / f"{engine}.report.html"
        args = ["-i", source, "-o", str(out), "--report-json", str(rj), "--report-html", str(rh)]
        res = _invoke([*args, "--engine", engine, "--spark-master", MASTER, *extra])
        assert res.exit_code == 0, (engine, res.output)
        got[engine] = {
            p.name.split(".", 1)[1]: _normalised(p.read_text(encoding="utf-8")) for p in (out, rj, rh)
        }
    for key, want in got["duckdb"].items():
        assert got["spark"][key] == want, key
    return got["duckdb"]


# ------------------------------------------------------------------------------------ the same answers


def test_simulated_marketplace_identical(spark, tmp_path):
    generate(tmp_path / "sim", seed=5, scale=0.05)
    got = both(tmp_path, str(tmp_path / "sim" / "registrations.csv"))
    doc = json.loads(got["json"])
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text(encoding="utf-8"))["registrations"]
    planted = {str(a) for c in truth["clusters"] for a in c["accounts"]}
    found = {a for f in doc["findings"] for a in f["subject_ids"]}
    assert found and len(found & planted) / len(found) >= 0.95


def test_trap_cases_identical(spark, tmp_path):
    src = _write(tmp_path / "traps.csv", _traps())
    got = both(tmp_path, str(src), "--min-size", "2", "--min-score", "0", suffix=".csv")
    doc = json.loads(got["report.json"])
    by_first = {f["subject_ids"][0]: f for f in doc["findings"]}
    assert by_first["p0"]["subject_ids"] == ["p0", "p1", "p2"]  # the run across the range edge
    assert by_first["q0"]["evidence"]["shared"]["phone_runs"] == [
        "+86 138****9995 … +86 138****0003 (9 numbers)"
    ]
    assert by_first["n0"]["evidence"]["shared"]["nickname_runs"] == ["shop19998 … shop20003 (6 names)"]
    assert by_first["z4"]["subject_ids"] == [f"z{k}" for k in range(4, 10)]  # same second: by content
    # tie-a sorts before tie-b: tie-b is the one linked on to the next number
    assert by_first["t0"]["subject_ids"] == ["t0", "t1", "t2", "tie-b", "t3", "t4", "t5"]
    wall = next(f for f in doc["findings"] if f["subject_ids"][0] == "w0")
    assert wall["evidence"]["shared"]["groups_in_one_burst"] == 4
    assert not any(a.startswith(("j", "m", "tie-a")) for f in doc["findings"] for a in f["subject_ids"])
    assert doc["meta"]["stats"]["rows"] == len(_traps())


def _registrations(rows: list[tuple]) -> reg.Registrations:
    cols = list(zip(*rows, strict=True))
    return reg.Registrations(
        *[np.array(c, dtype=np.int64 if i == 1 else object) for i, c in enumerate(cols)]  # type: ignore[arg-type]
    )


def test_row_order_never_matters():
    """The rows in another order (a file's, a partition's arrival): the same findings, the same stats."""
    rows = _traps()
    want_stats: dict[str, int] = {}
    got_stats: dict[str, int] = {}
    want = reg.find_clusters(_registrations(rows), min_size=2, min_score=0, stats=want_stats)
    got = reg.find_clusters(_registrations(rows[::-1]), min_size=2, min_score=0, stats=got_stats)
    assert [f.to_dict() for f in got] == [f.to_dict() for f in want]
    assert got_stats == want_stats and want_stats["links_phone"] > 0


def test_table_by_name(spark, tmp_path):
    src = _write(tmp_path / "traps.csv", _traps())
    spark.read.options(header="true").csv(str(src)).createOrReplaceTempView("trap_registrations")
    outs = {}
    for engine, source in (("duckdb", str(src)), ("spark", "table:trap_registrations")):
        out = tmp_path / f"{engine}.csv"
        res = _invoke(["-i", source, "-o", str(out), "--engine", engine, "--spark-master", MASTER])
        assert res.exit_code == 0, res.output
        outs[engine] = out.read_text(encoding="utf-8")
    assert outs["spark"] == outs["duckdb"] and outs["duckdb"].count("\n") > 1


def test_parquet_with_other_column_names_identical(spark, tmp_path):
    names = ["uid", "created", "dev", "addr", "mobile", "nick"]
    text = _write(tmp_path / "traps.csv", _traps()).read_text(encoding="utf-8").splitlines()
    cols = list(zip(*[line.split(",") for line in text[1:]], strict=True))
    data = {n: [v or None for v in c] for n, c in zip(names, cols, strict=True)}
    pq.write_table(pa.table(data), tmp_path / "traps.parquet")
    mapping = [f"--col={c}={n}" for c, n in zip(COLUMNS, names, strict=True)]
    got = both(tmp_path, str(tmp_path / "traps.parquet"), *mapping)
    assert json.loads(got["json"])["stats"]["rows"] == len(_traps())


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return res.output


def test_missing_path_table_and_columns(spark, tmp_path):
    out = tmp_path / "o.json"
    assert "nothere.csv: no such file" in _error(["-i", str(tmp_path / "nothere.csv"), "-o", str(out)])
    assert "table:no_such_table: no such table" in _error(["-i", "table:no_such_table", "-o", str(out)])
    src = tmp_path / "r.csv"
    src.write_text("account,registered_at,device_id,ip,mobile,nickname\na,2024-01-01 00:00:00,d,,,\n")
    msg = _error(["-i", str(src), "-o", str(out)])
    assert str(src) in msg and "missing required column(s) phone" in msg
    msg = _error(["-i", str(src), "-o", str(out), "--col", "phone=tel"])
    assert "the file's column tel" in msg
    src.write_text("account,registered_at,device_id,ip,phone,nickname\na,yesterday,d,,,\n")
    assert "'yesterday' is not a time" in _error(["-i", str(src), "-o", str(out)])
    assert not out.exists()


def test_partition_kernel_keeps_groups_whole():
    """`spark_link_partition` fed one task at a time, cut into chunks of ~2: the links of the whole."""
    rows = _traps()
    table = reg._rows_table(_registrations(rows))
    p = reg.LinkParams()
    tasks = reg.link_tasks(table, p).sort_by(
        [("kind", "ascending"), ("key", "ascending"), ("bucket", "ascending")]
    )
    whole = reg.link_pairs(tasks, p)
    parts = list(reg.spark_link_partition(tasks.to_batches(max_chunksize=1), params=p, chunk_rows=2))
    pieces = pa.Table.from_batches(parts, schema=reg.LINK_SCHEMA)
    assert len(parts) > 20

    def links(t: pa.Table) -> set[tuple]:
        return {
            r for r in zip(*(t.column(c).to_pylist() for c in ("kind", "a", "b")), strict=True) if r[1] >= 0
        }

    assert links(pieces) == links(whole) and len(links(whole)) > 30
    stats_whole: dict[str, int] = {}
    stats_pieces: dict[str, int] = {}
    want = reg.clusters_from_links(whole, min_size=2, min_score=0, stats=stats_whole)
    got = reg.clusters_from_links(pieces, min_size=2, min_score=0, stats=stats_pieces)
    assert [f.to_dict() for f in got] == [f.to_dict() for f in want] and stats_pieces == stats_whole
