"""Findings written as CSV never open as spreadsheet formulas, whatever ids the input data held."""

import csv

import numpy as np
import pytest

from fanchaoxin.core.spreadsheet import FORMULA_STARTS, safe_row
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.report import write_findings


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
def test_findings_csv_escapes_ids_and_summaries(tmp_path, start):
    evil = start + 'HYPERLINK("http://evil.example")'
    f = Finding(
        detector="lockstep",
        behaviour="fake_review",
        subject_kind="platform_account",
        subject_ids=[evil, "u2"],
        score=0.9,
        summary=evil,
        evidence={"level": "group"},
    )
    path = tmp_path / "findings.csv"
    write_findings(path, [f], {})
    with path.open(encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh))
    assert row["subject_ids"] == "'" + evil + ";u2"
    assert row["summary"] == "'" + evil
    assert row["score"] == "0.9"


def test_numbers_of_any_kind_stay_numbers():
    assert safe_row([-1, -2.5, np.int64(-3), np.float32(-0.5), True, None, "-1"]) == [
        -1, -2.5, np.int64(-3), np.float32(-0.5), True, None, "'-1"
    ]  # fmt: skip
