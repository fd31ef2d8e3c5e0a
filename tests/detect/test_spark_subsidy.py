"""刷单骗补 subsidy brushing on Spark (#21): the one SQL text of detect/subsidy.py, byte-identical answers.

The command runs in-process on both engines (DuckDB, then Spark ``local[2]`` from the session
fixture of conftest.py) and every output is compared byte for byte: the findings file, the JSON
report and the HTML report (only the generation time and the run's seconds are normalised). Data:
the rides simulator (small scale: every kind of planted ring) with and without the optional device /
payment columns and the campaigns file, and hand-made traps — ties broken by trip id, window and
burst boundaries, text order of ids, shared ids, a too-widely shared id, empty optional values,
decimal sums. Where Java or pyspark is missing these tests FAIL saying what to install.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect import subsidy
from fanchaoxin.simulate import rides
from tests.detect.conftest import MASTER, without_run_times

HEADER = [*subsidy.TRIP_COLUMNS, *subsidy.OPTIONAL_COLUMNS]
T0 = dt.datetime(2024, 3, 1, 7, 0, 0)


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["detect", "subsidy-brushing", *args])


_normalised = without_run_times


def both(tmp_path: Path, source: str, *extra: str, suffix: str = ".json") -> dict[str, str]:
    """Run the command on both engines; assert the findings file and both reports identical (but for
    the run's time); return DuckDB's."""
    outputs: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        out, rj, rh = (tmp_path / f"{engine}{s}" for s in (suffix, ".report.json", ".report.html"))
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
        if engine == "spark":
            assert "Spark shuffle:" in res.output
    for key, want in outputs["duckdb"].items():
        assert outputs["spark"][key] == want, key
    return outputs["duckdb"]


# ------------------------------------------------------------------------------------- simulator


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rides") / "city"
    rides.generate(out, seed=3, scale=0.01)  # ~10,000 trips, one ring of every kind
    return out


def test_simulated_rides_identical(spark, sim, tmp_path):
    got = json.loads(
        both(tmp_path, str(sim / "trips.csv"), "--subsidies", str(sim / "subsidies.csv"))["output"]
    )
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    planted = {a for r in truth["rings"] for a in r["drivers"] + r["riders"]}
    flagged = {a for f in got["findings"] for a in f["subject_ids"]}
    assert len(flagged & planted) >= len(planted) * 0.8 and any(
        f["evidence"]["shared"] for f in got["findings"]
    )
    assert got["optional_columns"] == list(subsidy.OPTIONAL_COLUMNS)


def test_simulated_rides_bare_identical(spark, sim, tmp_path):
    """No device or payment columns, no campaigns file: the behaviour alone, the same on both."""
    bare = tmp_path / "bare.csv"
    with (
        (sim / "trips.csv").open(encoding="utf-8", newline="") as src,
        bare.open("w", encoding="utf-8") as dst,
    ):
        w = csv.DictWriter(dst, subsidy.TRIP_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(csv.DictReader(src))
    got = json.loads(both(tmp_path, str(bare))["output"])
    assert got["optional_columns"] == [] and got["findings"]
    assert all(f["evidence"]["shared"] == [] for f in got["findings"])


# ------------------------------------------------------------------------------------------ traps


def _trip(
    i: int,
    d: str,
    r: str,
    minutes: float,
    *,
    back: bool = False,
    km: float = 1.2,
    fare: float = 10.15,
    subsidy_: float = 6.05,
    dur: int = 10,
    rdev: str = "",
    ddev: str = "",
    rpay: str = "",
    dpay: str = "",
    ts_text: str | None = None,
) -> list[str]:
    a, b = ("30.60000", "104.00000"), ("30.61000", "104.01000")
    o, e = (b, a) if back else (a, b)
    start = T0 + dt.timedelta(minutes=minutes)
    end = start + dt.timedelta(minutes=dur)
    st = ts_text if ts_text is not None else f"{start:%Y-%m-%d %H:%M:%S}"
    times = [st, f"{end:%Y-%m-%d %H:%M:%S}"]
    return [str(i), d, r, *times, *o, *e, str(km), str(fare), str(subsidy_), rdev, ddev, rpay, dpay]


def _traps() -> list[list[str]]:
    rows: list[list[str]] = []
    n = iter(range(1, 10_000))
    # one person on both sides: A→B→A loops 5 minutes apart, his phone on both accounts; a second
    # rider account of his shares the wallet of the first (a ring of three)
    for k in range(8):
        rows.append(
            _trip(
                next(n), "司机Z", "乘客甲", k * 15, back=k % 2 == 1, rdev="dev-1", ddev="dev-1", rpay="pay-1"
            )
        )
    for k in range(6):
        rows.append(_trip(next(n), "司机Z", "Émile", 200 + k * 15, back=k % 2 == 1, rpay="pay-1", rdev=""))
    # a commuter and her regular driver: long, unsubsidised, one a day — a candidate, not suspicious
    for k in range(6):
        rows.append(
            _trip(next(n), "D10", "R10", k * 1440 + 60, km=12.0, fare=40.0, subsidy_=0.0, rdev=f"r10-{k % 2}")
        )
    # a driver padding his day to the 15-trip bonus with one rider; the burst gaps sit on 2700 s
    # exactly (a burst) and 2701 s (not); two trips start in the same second (tie: trip id decides)
    others = [f"R{20 + k}" for k in range(11)]
    for k, r in enumerate(others):
        rows.append(_trip(next(n), "D9", r, k * 20, km=6.0, fare=25.0, subsidy_=0.0))
    gaps = [0, 10 + 45, 10 + 45 + 10 + 45 + 1 / 60, 10 + 45 + 10 + 45 + 1 / 60]
    for g in gaps:
        rows.append(_trip(next(n), "D9", "Zed", 240 + g, km=2.9, fare=8.35, subsidy_=4.175))
    rows.append(_trip(next(n), "D9", "Zed", 600, km=3.0, fare=0.3, subsidy_=0.15))
    # a company card paid with by three riders (ignored above --max-shared-accounts 2), candidates all
    for r in ("Q1", "Q2", "Q3"):
        for k in range(5):
            rows.append(
                _trip(next(n), "D7", r, 800 + k * 12 + int(r[1]) * 100, rpay="corp-card", dpay="corp-card")
            )
    # trips starting exactly at a campaign's start (in) and end (out), one time with an offset
    for k, minutes in enumerate([0, 120, 121, 60, 180]):
        text = (
            None if k != 3 else f"{T0 + dt.timedelta(minutes=60) - dt.timedelta(hours=8):%Y-%m-%dT%H:%M:%S}Z"
        )
        rows.append(_trip(next(n), "D8", "R8", 1440 + minutes, km=0.5, fare=5.0, subsidy_=2.5, ts_text=text))
    return rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def _campaigns(path: Path) -> Path:
    return _write(
        path,
        ["campaign_id", "kind", "start_time", "end_time", "threshold_trips"],
        [
            ["C1", "peak", "2024-03-01 07:00:00", "2024-03-01 09:00:00", ""],
            ["C2", "peak", "2024-03-02 07:00:00", "2024-03-02 09:00:00", ""],
            ["C3", "driver_daily_threshold", "2024-03-01 00:00:00", "2024-03-02 00:00:00", "15"],
        ],
    )


def test_trap_cases_identical(spark, tmp_path):
    src = _write(tmp_path / "trips.csv", HEADER, _traps())
    sub = _campaigns(tmp_path / "campaigns.csv")
    got = json.loads(
        both(tmp_path, str(src), "--subsidies", str(sub), "--max-shared-accounts", "2")["output"]
    )
    subjects = [f["subject_ids"] for f in got["findings"]]
    assert ["司机Z", "Émile", "乘客甲"] in subjects  # one ring: the phone and the shared wallet
    ring = got["findings"][subjects.index(["司机Z", "Émile", "乘客甲"])]["evidence"]
    assert {s["id"] for s in ring["shared"]} == {"dev-1", "pay-1"}
    assert all("corp-card" not in json.dumps(f["evidence"]) for f in got["findings"])
    assert got["stats"]["candidate_pairs"] == 8
    # no campaigns file, findings as CSV, a lower bar and a renamed optional column
    renamed = _write(
        tmp_path / "renamed.csv", [h if h != "rider_device" else "phone" for h in HEADER], _traps()
    )
    args = ["--min-pair-score", "0.3", "--col", "rider_device=phone", "--burst-minutes", "44"]
    text = both(tmp_path, str(renamed), *args, suffix=".csv")["output"]
    assert text.startswith("level,detector") and text.count("\n") >= 1 + len(subjects)
    assert "corp-card" in text and "R10" not in text  # shared by 4 ≤ 20 accounts; the commuter is no finding


def test_numeric_ids_and_a_table_by_name(spark, tmp_path):
    """Integer ids are BIGINT on both engines and still ordered as text (10 before 9); a table by name
    (here a temporary view; Hive or Iceberg tables alike) gives the answer the file gives."""
    digits = {"司机Z": "9", "乘客甲": "1000", "Émile": "11", "Zed": "100", "D9": "12"}
    rows = [
        [digits.get(c, c.lstrip("DRQ") or c) if j in (1, 2) else c for j, c in enumerate(r)] for r in _traps()
    ]
    src = _write(tmp_path / "trips.csv", HEADER, rows)
    sub = _campaigns(tmp_path / "campaigns.csv")
    want = tmp_path / "duck.csv"
    res = _invoke(["-i", str(src), "--subsidies", str(sub), "-o", str(want), "--min-pair-score", "0.3"])
    assert res.exit_code == 0, res.output
    spark.read.options(header="true").csv(str(src)).createOrReplaceTempView("trap_trips")
    spark.read.options(header="true").csv(str(sub)).createOrReplaceTempView("trap_campaigns")
    out = tmp_path / "spark.csv"
    args = ["-i", "table:trap_trips", "--subsidies", "table:trap_campaigns", "-o", str(out)]
    res = _invoke([*args, "--min-pair-score", "0.3", "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == want.read_bytes()
    with want.open(encoding="utf-8", newline="") as fh:
        subjects = [r["subject_ids"] for r in csv.DictReader(fh)]
    assert "9;1000;11" in subjects  # drivers first, then riders in text order


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str]) -> str:
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return res.output


def test_missing_path_table_and_columns(spark, tmp_path):
    out = tmp_path / "o.json"
    assert "nothere.csv: no such file" in _error(["-i", str(tmp_path / "nothere.csv"), "-o", str(out)])
    assert "table:no_such_trips: no such table" in _error(["-i", "table:no_such_trips", "-o", str(out)])
    src = _write(tmp_path / "trips.csv", [h if h != "fare" else "price" for h in HEADER], _traps()[:3])
    msg = _error(["-i", str(src), "-o", str(out)])
    assert str(src) in msg and "fare" in msg
    msg = _error(["-i", str(src), "-o", str(out), "--col", "fare=amount"])
    assert "amount" in msg and str(src) in msg
    good = _write(tmp_path / "good.csv", HEADER, _traps()[:3])
    msg = _error(["-i", str(good), "-o", str(out), "--subsidies", str(tmp_path / "nocampaigns.csv")])
    assert "nocampaigns.csv: no such file" in msg
    bad = _write(tmp_path / "campaigns.csv", ["start_time", "stop"], [["2024-03-01 00:00:00", "x"]])
    msg = _error(["-i", str(good), "-o", str(out), "--subsidies", str(bad)])
    assert "campaigns.csv" in msg and "end_time" in msg
    assert not out.exists()


def test_bad_campaign_row_named_alike(spark, tmp_path):
    good = _write(tmp_path / "good.csv", HEADER, _traps()[:3])
    bad = _write(
        tmp_path / "campaigns.csv",
        ["start_time", "end_time", "threshold_trips"],
        [
            ["2024-03-01 07:00:00", "2024-03-01 09:00:00", ""],
            ["2024-03-01 00:00:00", "2024-03-02 00:00:00", "x"],
        ],
    )
    msgs = []
    for engine in ("duckdb", "spark"):
        args = ["-i", str(good), "-o", str(tmp_path / "o.json"), "--subsidies", str(bad)]
        res = _invoke([*args, "--engine", engine, "--spark-master", MASTER])
        assert res.exit_code == 2, res.output
        msgs.append(res.output)
    assert msgs[0] == msgs[1] and "row 2" in msgs[0] and "threshold_trips" in msgs[0]
