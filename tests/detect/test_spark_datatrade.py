"""Personal-data trade on Spark (#21): the same SQL as on DuckDB, byte-identical answers, clear errors.

`fcx detect data-trade` runs in-process on both engines (Spark ``local[2]``, the one session of
tests/detect/conftest.py) on simulator data and on hand-made trap cases, with the optional files and
columns present and absent; the findings file, the JSON report and the HTML report must be the same
byte for byte (the generation time and the elapsed seconds aside). Where Java or pyspark is missing
these tests FAIL saying what to install.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.simulate.data_access import generate
from tests.detect.conftest import MASTER, without_run_times

T0 = datetime(2024, 11, 1, 9)


def _ts(days: float, hours: float = 0) -> str:
    return (T0 + timedelta(days=days, hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["detect", "data-trade", *args])


def _normalised(path: Path) -> str:
    return without_run_times(path.read_text(encoding="utf-8"))


def both(
    tmp_path: Path,
    inputs: dict[str, str],
    *extra: str,
    spark_inputs: dict[str, str] | None = None,
    suffix: str = ".json",
) -> dict[str, str]:
    """Run the command on both engines; assert the findings file and both reports identical (only the
    findings file where the engines read differently named inputs: the reports name them); return
    DuckDB's (``out``, ``json``, ``html``) and its log."""
    got: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        files = spark_inputs if engine == "spark" and spark_inputs is not None else inputs
        out = tmp_path / f"{engine}{suffix}"
        args = ["-o", str(out), "--engine", engine, "--spark-master", MASTER, *extra]
        for option, source in files.items():
            args += [f"--{option}", source]
        res = _invoke(args)
        assert res.exit_code == 0, (engine, res.output)
        stem = out.name[: -len(suffix)]
        got[engine] = {
            "out": _normalised(out),
            "json": _normalised(out.with_name(f"{stem}.report.json")),
            "html": _normalised(out.with_name(f"{stem}.report.html")),
            "log": res.output,
        }
    for key in ("out",) if spark_inputs is not None else ("out", "json", "html"):
        assert got["spark"][key] == got["duckdb"][key], key
    assert "Spark shuffle:" in got["spark"]["log"]
    return got["duckdb"]


def _findings(got: dict[str, str]) -> list[dict[str, Any]]:
    return json.loads(got["json"])["findings"]


# ------------------------------------------------------------------------------------------ simulator


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dt-spark") / "sim"
    generate(out, seed=3, scale=0.05)
    return out


def test_simulated_every_input_identical(spark, sim, tmp_path):
    inputs = {
        "registrations": str(sim / "registrations.csv"),
        "orders": str(sim / "orders.csv"),
        "access-log": str(sim / "access_log.csv"),
        "staff": str(sim / "staff.csv"),
    }
    got = both(tmp_path, inputs)
    found = _findings(got)
    detectors = {f["detector"] for f in found}
    assert detectors == {"data-trade-identifiers", "data-trade-staff"}
    reasons = {r for f in found if f["detector"] == "data-trade-staff" for r in f["evidence"]["reasons"]}
    assert {"excess_access", "night_access", "export_beyond_role", "leak_source"} <= reasons


# ------------------------------------------------------------------------------------------ trap cases


def _hand_files(d: Path) -> dict[str, Path]:
    """tests/detect/test_datatrade.py's household / office / carrier-NAT case, and a staff log with its
    traps: an even number of peers (a median halfway), equal peak days, a staff account listed twice
    in the directory and one only in the log, tickets, night views, exports beyond the role, and an
    owner of a flagged phone viewed before the phone was misused."""
    hashed = "9f86d081884c7d65"  # the owner's resident ID, hashed, bought with the phone
    reg_rows = [
        ["owner", _ts(-365), "13812345678", hashed, "dev-owner", "1.1.1.1"],
        *[[f"bought{k}", _ts(10 + k), "138 1234 5678", hashed, f"dev-b{k}", f"2.2.2.{k}"] for k in range(4)],
        ["mum", _ts(-300), "13900000001", "", "dev-m", "3.3.3.3"],
        ["dad", _ts(-200), "+86 139 0000 0001", "", "dev-d", "3.3.3.3"],
        ["kid", _ts(5), "139-0000-0001", " ", "dev-m", "9.9.9.9"],
        ["gran", _ts(6), "13900000001", "", "dev-g", "3.3.3.3"],
        *[[f"nat{k}", _ts(k), "13700000002", "", f"dev-n{k}", "100.64.0.1"] for k in range(4)],
        *[[f"other{k}", _ts(k), f"1360000{k:04d}", "", f"dev-o{k}", "100.64.0.1"] for k in range(26)],
    ]
    order_rows = [[f"other{k}", f"1360000{k:04d}", _ts(3), "office-tower"] for k in range(20)]
    order_rows += [[f"other{k}", "13600000001", _ts(4), "office-tower"] for k in range(2, 8)]
    log: list[list[Any]] = []
    for day in range(4):
        for s in ("s1", "s2", "s3", "s4"):  # four peers: the median is halfway between two of them
            n = {"s1": 2, "s2": 3, "s3": 4, "s4": 30 if day in (1, 2) else 4}[s]  # s4: two equal peaks
            for c in range(n):
                ticket = "T1" if s == "s1" and c == 0 else ""
                log.append([s, "customer_service", f"c{s}{day}{c}", "view", "", ticket, _ts(day, c / 60)])
        log.append(["s3", "customer_service", f"night{day}", "view", "", "", _ts(day, 14.5)])  # 23:30
        log.append(["s5", "analyst", f"a{day}", "search", "", "", _ts(day, 1)])
        log.append(["s6", "analyst", f"b{day}", "view", "", "", _ts(day, 2)])  # only in the log
    log.append(["s2", "customer_service", "", "export", 500, "", _ts(2, 3)])
    log.append(["s1", "customer_service", "owner", "view", "", "", _ts(0, 5)])  # before bought0 used it
    log.append(["s1", "customer_service", "nat0", "view", "", "", _ts(0, 6)])
    staff_rows = [[s, "customer_service", "CS1"] for s in ("s1", "s2", "s3", "s4")]
    staff_rows += [["s5", "analyst", "BI"], ["s5", "data_admin", "BI2"]]  # listed twice
    return {
        "registrations": _write(
            d / "reg.csv", ["account", "registered_at", "phone", "id_hash", "device_id", "ip"], reg_rows
        ),
        "orders": _write(
            d / "orders.csv", ["buyer", "receiver_phone", "order_time", "receiver_address_hash"], order_rows
        ),
        "access-log": _write(
            d / "access.csv", ["staff", "role", "customer", "action", "rows", "ticket_id", "event_time"], log
        ),
        "staff": _write(d / "staff.csv", ["staff", "role", "team"], staff_rows),
    }


LOW = ["--min-excess", "5", "--excess-ratio", "1.5", "--min-export-rows", "100", "--min-victims", "2"]
LOW += ["--victim-ratio", "1"]


def test_hand_cases_identical(spark, tmp_path):
    files = _hand_files(tmp_path)
    got = both(tmp_path, {k: str(v) for k, v in files.items()}, *LOW)
    by_subject = {f["subject_ids"][0]: f for f in _findings(got)}
    # the owner and the first NAT stranger (the possible owner) are never subjects; a family is no leak
    assert {s for s, f in by_subject.items() if f["detector"] == "data-trade-identifiers"} == {
        "bought0",
        "bought1",
        "bought2",
        "bought3",
        "nat1",
        "nat2",
        "nat3",
    }
    s4 = by_subject["s4"]["evidence"]
    assert "excess_access" in s4["reasons"]
    assert s4["peak_day"] == {"day": "2024-11-02", "unrelated_customers": 30, "peer_median": 4.0}
    assert "export_beyond_role" in by_subject["s2"]["evidence"]["reasons"]
    assert "leak_source" in by_subject["s1"]["evidence"]["reasons"]


def test_optional_files_and_columns_absent_and_a_table_identical(spark, tmp_path):
    """Orders alone (no registrations, no address: the owner is the buyer shipping most, the earliest
    on a tie), a log without role or ticket (roles from the directory), a directory without team; on
    Spark the directory is a table by name: the same findings."""
    orders = [["home", "13812345678", _ts(d)] for d in range(3)]
    orders += [[f"b{k}", "13812345678", _ts(5 + k)] for k in range(4)]
    orders += [[f"q{k}", "13900000009", _ts(1)] for k in (3, 1, 2, 0)]  # all at once: q0 owns it
    order_file = _write(tmp_path / "orders.csv", ["buyer", "receiver_phone", "order_time"], orders)
    log = [
        [f"s{s}", f"c{s}-{c}", "view", "", _ts(0, c / 60)] for s in range(4) for c in range(3 + 9 * (s == 3))
    ]
    access = _write(tmp_path / "access.csv", ["staff", "customer", "action", "rows", "event_time"], log)
    staff = _write(tmp_path / "staff.csv", ["staff", "role"], [[f"s{s}", "agent"] for s in range(4)])
    spark.read.options(header="true").csv(str(staff)).createOrReplaceTempView("dt_test_directory")
    inputs = {"orders": str(order_file), "access-log": str(access), "staff": str(staff)}
    on_spark = {**inputs, "staff": "table:dt_test_directory"}
    got = both(
        tmp_path, inputs, "--min-excess", "5", "--excess-ratio", "1", suffix=".csv", spark_inputs=on_spark
    )
    subjects = {line.split(",")[4] for line in got["out"].splitlines()[1:]}
    assert subjects == {"b0", "b1", "b2", "b3", "q1", "q2", "q3", "s3"}
    assert "13812345678" not in got["out"] and "+86 138******78" in got["out"]


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    return " ".join(res.output.split())


def test_missing_path_table_and_columns(spark, tmp_path):
    out = tmp_path / "o.json"
    assert "nothere.csv: no such file" in _error(["--orders", str(tmp_path / "nothere.csv"), "-o", str(out)])
    assert "table:no_such_table: no such table" in _error(["--orders", "table:no_such_table", "-o", str(out)])
    access = _write(
        tmp_path / "access.csv",
        ["staff", "role", "customer", "op", "rows", "event_time"],
        [["s1", "agent", "c1", "view", "1", _ts(0)]],
    )
    msg = _error(["--access-log", str(access), "-o", str(out)])
    assert str(access) in msg and "missing required column(s) action" in msg
    msg = _error(["--access-log", str(access), "-o", str(out), "--col", "access_log.action=operation"])
    assert "the file's column operation" in msg and str(access) in msg
    reg = _write(tmp_path / "reg.csv", ["account", "registered_at", "device_id"], [["a", _ts(0), "d"]])
    msg = _error(["--registrations", str(reg), "-o", str(out)])
    assert "reg.csv" in msg and "phone or an id_hash" in msg
    bad = _write(tmp_path / "bad.csv", ["buyer", "receiver_phone", "order_time"], [["b", "1", "2024-13-01"]])
    msg = _error(["--orders", str(bad), "-o", str(out)])
    assert "order_time" in msg and "'2024-13-01' is not a time" in msg
    assert not out.exists()
