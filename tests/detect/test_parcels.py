"""`fcx detect parcels`: empty-parcel waybills, senders and couriers (合谋寄递空包裹)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect.parcels import Params, load_waybills, waybill_signals
from fanchaoxin.simulate.marketplace import generate

runner = CliRunner()
HEAD = (
    "waybill,courier,sender,weight_kg,pickup_time,sign_time,origin_city,dest_city,distance_km,transit_scans\n"
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("parcels")
    generate(d, seed=5, scale=0.05)
    return d


def _file(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "w.csv"
    p.write_text(HEAD + "".join(r + "\n" for r in rows), encoding="utf-8")
    return p


def test_signals(tmp_path: Path) -> None:
    p = _file(
        tmp_path,
        [
            # empty: 10 g, no scans, signed 2 h after pick-up for 1,200 km
            "E1,ZTO-1,shopA,0.01,2024-03-01 10:00:00,2024-03-01 12:00:00,杭州,北京,1200,0",
            # a document: light, but scanned and on time
            "D1,ZTO-1,shopB,0.08,2024-03-01 10:00:00,2024-03-03 09:00:00,杭州,北京,1200,6",
            # signed before pick-up
            "X1,ZTO-1,shopB,1.5,2024-03-02 10:00:00,2024-03-01 10:00:00,杭州,上海,200,3",
            # not signed yet, weight unknown: no transit or weight signal is invented
            "U1,ZTO-1,shopB,,2024-03-01 10:00:00,,杭州,北京,1200,0",
            # same-city, fast and scan-less but 1.2 kg: fine
            "S1,ZTO-1,shopB,1.2,2024-03-01 10:00:00,2024-03-01 13:00:00,杭州,杭州,12,0",
        ],
    )
    w = load_waybills(p)
    sig = waybill_signals(w, Params())
    score = dict(zip(w.waybill.tolist(), sig["score"].tolist(), strict=True))
    assert score["E1"] == pytest.approx(1.0)
    assert score["D1"] < 0.3
    assert sig["transit"][2] == 1.0
    assert sig["weight"][3] == 0.0 and sig["transit"][3] == 0.0 and sig["scans"][3] == 1.0
    assert score["S1"] < 0.5


def test_cli_finds_planted_empty_parcels(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "findings.csv"
    res = runner.invoke(
        app, ["detect", "parcels", "--input", str(sim / "waybills.csv"), "--output", str(out)]
    )
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) == {
        "level",
        "detector",
        "behaviour",
        "subject_kind",
        "subject_ids",
        "score",
        "summary",
        "evidence",
    }
    assert {r["behaviour"] for r in rows} == {"empty_parcel"}
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))["empty_parcels"]
    flagged = {json.loads(r["evidence"])["waybill"] for r in rows if r["level"] == "waybill"}
    planted = set(truth["waybills"])
    assert len(flagged & planted) / len(planted) >= 0.75
    assert len(flagged & planted) / len(flagged) >= 0.85
    senders = {r["subject_ids"] for r in rows if r["level"] == "sender"}
    couriers = {r["subject_ids"] for r in rows if r["level"] == "courier"}
    assert senders and senders <= {str(s) for s in truth["senders"]}
    assert couriers == set(truth["couriers"])
    assert {r["subject_kind"] for r in rows if r["level"] == "courier"} == {"courier_staff"}
    report = json.loads((tmp_path / "findings.report.json").read_text(encoding="utf-8"))
    assert len(report["findings"]) == len(rows)


def test_json_output_and_courier_kind(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    res = runner.invoke(
        app,
        [
            "detect",
            "parcels",
            "--input",
            str(sim / "waybills.csv"),
            "--output",
            str(out),
            "--courier-kind",
            "courier_company",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    kinds = {f["subject_kind"] for f in doc["findings"] if f["evidence"]["level"] == "courier"}
    assert kinds == {"courier_company"}


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    ok = "A1,ZTO-1,shopA,0.5,2024-03-01 10:00:00,2024-03-02 10:00:00,杭州,北京,1200,4"
    p = _file(tmp_path, [ok, "A2,ZTO-1,shopA,heavy,2024-03-01 10:00:00,,杭州,北京,1200,4"])
    res = runner.invoke(app, ["detect", "parcels", "--input", str(p), "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "data row 2" in res.output and "weight_kg" in res.output and "'heavy'" in res.output
    p = _file(tmp_path, [ok, "A3,ZTO-1,shopA,0.5,2024-03-01 10:00:00,2024/03/02,杭州,北京,1200,4"])
    res = runner.invoke(app, ["detect", "parcels", "--input", str(p), "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "sign_time" in res.output and "data row 2" in res.output
    p = _file(tmp_path, [ok, ok])
    res = runner.invoke(app, ["detect", "parcels", "--input", str(p), "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "waybill" in res.output and "repeat" in res.output
    p = _file(tmp_path, [ok, "A4,ZTO-1,shopA,0.5,2024-03-01 10:00:00,2024-03-02 10:00:00,杭州,北京,1200,2.5"])
    res = runner.invoke(app, ["detect", "parcels", "--input", str(p), "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "transit_scans" in res.output


def test_gbk_waybills(tmp_path: Path) -> None:
    p = tmp_path / "gbk.csv"
    rows = [
        f"E{k},韵达-{k % 2},店铺甲,0.01,2024-03-01 10:00:00,2024-03-01 12:00:00,杭州,北京,1200,0"
        for k in range(4)
    ]
    rows += [
        f"N{k},韵达-{k % 2},店铺乙,1.5,2024-03-01 10:00:00,2024-03-03 12:00:00,杭州,北京,1200,5"
        for k in range(200)
    ]
    p.write_bytes((HEAD + "\n".join(rows) + "\n").encode("gbk"))
    out = tmp_path / "o.json"
    res = runner.invoke(app, ["detect", "parcels", "--input", str(p), "--output", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {f["subject_ids"][0] for f in doc["findings"] if f["evidence"]["level"] == "sender"} == {"店铺甲"}
    assert doc["missing_values"] == {"weight_kg": 0, "transit_scans": 0, "distance_km": 0, "sign_time": 0}
