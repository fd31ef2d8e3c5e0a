"""detect/report.py: self-contained, well-formed HTML and a JSON file of the findings."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.report import render_html, write_report
from fanchaoxin.simulate.marketplace import generate


def _findings() -> list[Finding]:
    out = []
    for k in range(30):
        out.append(
            Finding(
                detector="lockstep" if k % 2 else "empty-parcel",
                behaviour="fake_review" if k % 2 else "empty_parcel",
                subject_kind="platform_account",
                subject_ids=[f"u{k}", f"u{k + 1}"],
                score=float(k) / 3,
                summary=f"finding {k} <script>alert('x')</script> & 刷单",
                evidence={
                    "first_seen": f"2024-03-{k % 28 + 1:02d} 10:00:00",
                    "n": np.int64(k),
                    "share": np.float32(0.5),
                    "ids": np.array([1, 2]),
                    "tags": {"b", "a"},
                },
            )
        )
    return out


def _parse(html: str) -> ET.Element:
    assert html.startswith("<!DOCTYPE html>")
    return ET.fromstring(html.removeprefix("<!DOCTYPE html>"))  # XHTML-style: every tag closed


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"https?://", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#)""", html)
    assert "<link" not in html and "@import" not in html


def test_report_html_and_json(tmp_path: Path) -> None:
    fs = _findings()
    html_p, json_p = tmp_path / "r.html", tmp_path / "sub" / "r.json"
    write_report(
        fs, title="测试 report", html_path=html_p, json_path=json_p, meta={"input": "x.csv", "rows": 5}
    )
    html = html_p.read_text(encoding="utf-8")
    root = _parse(html)
    _assert_self_contained(html)
    assert len(list(root.iter("svg"))) == 3  # behaviours, score histogram, timeline
    assert "&lt;script&gt;" in html  # summaries are escaped, not executed
    assert len(list(root.iter("tr"))) >= 30
    doc = json.loads(json_p.read_text(encoding="utf-8"))
    assert doc["title"] == "测试 report" and doc["meta"]["rows"] == 5
    assert doc["counts"] == {"empty_parcel": 15, "fake_review": 15}
    assert [f["subject_ids"] for f in doc["findings"]] == [f.subject_ids for f in fs]
    assert doc["findings"][3]["evidence"]["n"] == 3 and doc["findings"][3]["evidence"]["tags"] == ["a", "b"]


def test_chart_choice_row_limit_and_empty(tmp_path: Path) -> None:
    html = render_html(_findings(), title="t", charts=["scores"], max_rows=5)
    root = _parse(html)
    assert len(list(root.iter("svg"))) == 1
    assert len(root.findall(".//tbody/tr")) == 5
    with pytest.raises(ValueError):
        render_html(_findings(), title="t", charts=["pie"])
    write_report([], title="none", html_path=tmp_path / "e.html", json_path=tmp_path / "e.json")
    empty = (tmp_path / "e.html").read_text(encoding="utf-8")
    _parse(empty)
    assert "No findings" in empty
    assert json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))["findings"] == []


def test_no_times_no_timeline() -> None:
    fs = [
        Finding(
            detector="d",
            behaviour="order_brushing",
            subject_kind="platform_account",
            subject_ids=["s"],
            score=1.0,
            summary="x",
        )
    ]
    html = render_html(fs, title="t")
    assert "no timeline" in html
    _parse(html)


def test_cli_reports_are_self_contained(tmp_path: Path) -> None:
    generate(tmp_path / "sim", seed=5, scale=0.05)
    runner = CliRunner()
    for cmd, inp, out in (
        ("lockstep", "actions.csv", "g.json"),
        ("registrations", "registrations.csv", "c.json"),
        ("parcels", "waybills.csv", "f.csv"),
    ):
        res = runner.invoke(
            app, ["detect", cmd, "--input", str(tmp_path / "sim" / inp), "--output", str(tmp_path / out)]
        )
        assert res.exit_code == 0, res.output
        html = (tmp_path / (out.split(".")[0] + ".report.html")).read_text(encoding="utf-8")
        _parse(html)
        _assert_self_contained(html)
