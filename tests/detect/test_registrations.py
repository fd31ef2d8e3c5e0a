"""`fcx detect registrations`: bulk-registration clusters (恶意注册)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect.registrations import Registrations, find_clusters, nickname_pattern, normalise_phone
from fanchaoxin.simulate.marketplace import generate

runner = CliRunner()
T0 = 1_700_000_000


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reg")
    generate(d, seed=5, scale=0.05)
    return d


def _reg(rows: list[tuple]) -> Registrations:
    cols = list(zip(*rows, strict=True))
    obj = [np.array(c, dtype=object) for c in cols]
    return Registrations(
        account=obj[0],
        time=np.array(cols[1], dtype=np.int64),
        device=obj[2],
        ip=obj[3],
        phone=obj[4],
        nickname=obj[5],
    )


def test_phone_and_nickname_normalisation() -> None:
    for raw in (
        "13812345678",
        "+86 138 1234 5678",
        "+8613812345678",
        "138-1234-5678",
        "0086 13812345678",
        "１３８１２３４５６７８",
    ):
        assert normalise_phone(raw) == 13812345678, raw
    assert normalise_phone("010-12345678") is None and normalise_phone(None) is None
    assert nickname_pattern("Shop_8801") == ("shop", 8801)
    assert nickname_pattern("小店0012") == ("小店", 12)
    assert nickname_pattern("快乐的小猪") is None and nickname_pattern("12345") is None


def test_sequential_phones_and_shared_device_form_one_cluster() -> None:
    farm = [
        (
            f"f{k}",
            T0 + 60 * k,
            "dev-a" if k % 2 else "dev-b",
            f"10.0.0.{k}",
            f"1391234{5600 + k:04d}",
            f"user{k}x",
        )
        for k in range(8)
    ]
    honest = [
        (f"h{k}", T0 + 3600 * k, f"d{k}", f"1.2.3.{k}", f"13{k}99887766"[:11], f"nick{k * 37}")
        for k in range(30)
    ]
    fs = find_clusters(_reg(farm + honest))
    assert len(fs) == 1
    f = fs[0]
    assert sorted(f.subject_ids) == sorted(a for a, *_ in farm)
    assert f.behaviour == "malicious_registration" and f.subject_kind == "platform_account"
    assert f.evidence["link_types"] == ["device", "phone"]
    assert f.evidence["burst"]["share"] == 1.0
    # phones are masked in the evidence
    assert f.evidence["shared"]["phone_runs"] == ["+86 139****5600 … +86 139****5607 (8 numbers)"]
    assert not re.search(r"\d{11}", json.dumps(f.evidence))


def test_emulator_wall_in_one_burst_is_one_cluster() -> None:
    # four emulators, five accounts each, registered interleaved within 20 minutes: four device
    # groups joined by their common burst
    wall = [(f"w{k}", T0 + 60 * k, f"emu-{k % 4}", f"5.6.7.{k}", None, f"name{k * 101}") for k in range(20)]
    honest = [(f"h{k}", T0 + 86_400 + 3600 * k, f"d{k}", "1.1.1.1", None, None) for k in range(10)]
    fs = find_clusters(_reg(wall + honest))
    assert [sorted(f.subject_ids) for f in fs] == [sorted(a for a, *_ in wall)]
    assert fs[0].evidence["link_types"] == ["burst", "device"]
    assert fs[0].evidence["shared"]["groups_in_one_burst"] == 4


def test_nat_ip_alone_and_family_device_are_not_clusters() -> None:
    # 20 strangers behind one campus IP within an hour (one weak link type), and a family sharing a
    # phone months apart: neither is a farm
    names = ["lihua", "sunny_day", "快乐的小猪", "tb887766", "moon"]
    campus = [
        (
            f"c{k}",
            T0 + 120 * k,
            f"dc{k}",
            "202.120.1.1",
            f"13{k:02d}{k * 7919 % 10_000_000:07d}",
            names[k % 5] + "x" * (k // 5),
        )
        for k in range(20)
    ]
    family = [(f"m{k}", T0 + 90 * 86_400 * k, "family-dev", f"9.9.9.{k}", None, None) for k in range(3)]
    fs = find_clusters(_reg(campus + family))
    assert fs == []
    fs = find_clusters(_reg(campus + family), min_score=0)  # visible, with a low score, when asked
    assert fs and max(f.score for f in fs) < 3


def test_cli_finds_planted_clusters(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "clusters.json"
    res = runner.invoke(
        app, ["detect", "registrations", "--input", str(sim / "registrations.csv"), "--output", str(out)]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))["registrations"]
    planted = {str(a) for c in truth["clusters"] for a in c["accounts"]}
    found = {a for f in doc["findings"] for a in f["subject_ids"]}
    assert len(found & planted) / len(planted) >= 0.9
    assert len(found & planted) / len(found) >= 0.95
    campus = {str(a) for c in truth["hard_negatives"]["campus_events"] for a in c["accounts"]}
    assert not campus & found
    for f in doc["findings"]:
        assert f["evidence"]["link_types"] and f["evidence"]["shared"]
    assert (tmp_path / "clusters.report.html").is_file()
    assert doc["stats"]["rows"] == doc["rows"] == truth_rows(sim)


def test_column_mapping_and_empty_attributes(tmp_path: Path) -> None:
    lines = ["uid,ts,dev,addr,mobile,name"]
    lines += [f"a{k},2024-01-01 10:{k:02d}:00,emu-1,,,shop{8800 + k}" for k in range(6)]
    lines += ["b1,2024-01-02 10:00:00,,,,"]  # nothing to link: still read, just no cluster
    p = tmp_path / "r.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["detect", "registrations", "--input", str(p), "--output", str(tmp_path / "o.json")]
    for pair in (
        "account=uid",
        "registered_at=ts",
        "device_id=dev",
        "ip=addr",
        "phone=mobile",
        "nickname=name",
    ):
        args += ["--column", pair]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert doc["rows"] == 7
    assert [sorted(f["subject_ids"]) for f in doc["findings"]] == [[f"a{k}" for k in range(6)]]
    assert doc["findings"][0]["evidence"]["shared"]["nickname_runs"] == ["shop8800 … shop8805 (6 names)"]
    res = runner.invoke(
        app,
        [
            "detect",
            "registrations",
            "--input",
            str(p),
            "--column",
            "bogus",
            "--output",
            str(tmp_path / "o.json"),
        ],
    )
    assert res.exit_code == 2


def test_bad_rows_are_named(tmp_path: Path) -> None:
    head = "account,registered_at,device_id,ip,phone,nickname\n"
    p = tmp_path / "r.csv"
    p.write_text(
        head + "a,2024-01-01 00:00:00,d,1.1.1.1,13800000000,x\nb,yesterday,d,1.1.1.1,13800000001,y\n",
        encoding="utf-8",
    )
    res = runner.invoke(
        app, ["detect", "registrations", "--input", str(p), "--output", str(tmp_path / "o.json")]
    )
    assert res.exit_code == 2
    assert "data row 2" in res.output and "registered_at" in res.output and "Traceback" not in res.output
    p.write_text(head + ",2024-01-01 00:00:00,d,1.1.1.1,13800000000,x\n", encoding="utf-8")
    res = runner.invoke(
        app, ["detect", "registrations", "--input", str(p), "--output", str(tmp_path / "o.json")]
    )
    assert res.exit_code == 2 and "data row 1" in res.output and "account" in res.output


def truth_rows(sim: Path) -> int:
    return json.loads((sim / "truth.json").read_text(encoding="utf-8"))["files"]["registrations.csv"]
