"""Exports never hand a spreadsheet a formula: text starting with = + - @ TAB or CR is escaped."""

import csv
import io

import pytest
from openpyxl import load_workbook

from fanchaoxin.core.spreadsheet import FORMULA_STARTS, safe_cell
from fanchaoxin.stats.export import to_csv, to_xlsx

DANGEROUS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize("text", DANGEROUS, ids=[repr(t[0]) for t in DANGEROUS])
def test_csv_escapes_each_leading_character(text):
    (header, row) = _csv_rows(to_csv([{"name": text, text: "x"}], ["name", text]))
    assert row[0] == "'" + text
    assert header[1] == "'" + text  # a column named by someone's input too


@pytest.mark.parametrize("text", DANGEROUS, ids=[repr(t[0]) for t in DANGEROUS])
def test_xlsx_escapes_each_leading_character(text):
    ws = load_workbook(io.BytesIO(to_xlsx([{"name": text}], ["name"]))).active
    cell = ws["A2"]
    assert cell.data_type == "s"  # text, not a formula
    # XML reads a carriage return back as a line feed; what matters is the apostrophe in front.
    assert cell.value == "'" + text.replace("\r", "\n")


def test_every_leading_character_is_covered():
    assert {t[0] for t in DANGEROUS} == set(FORMULA_STARTS)


def test_harmless_text_and_numbers_are_left_alone():
    rows = [{"name": "北京某某公司", "n": -3, "x": 1.5, "ok": True, "none": None, "mid": "a=b-c"}]
    cols = ["name", "n", "x", "ok", "none", "mid"]
    (_, row) = _csv_rows(to_csv(rows, cols))
    assert row == ["北京某某公司", "-3", "1.5", "true", "", "a=b-c"]
    ws = load_workbook(io.BytesIO(to_xlsx(rows, cols))).active
    assert [c.value for c in ws[2]] == ["北京某某公司", -3, 1.5, True, None, "a=b-c"]
    assert safe_cell(-3) == -3 and safe_cell(None) is None


def test_xlsx_drops_control_characters_xml_cannot_hold():
    ws = load_workbook(
        io.BytesIO(to_xlsx([{"name": "某\x01公司\x1f"}, {"name": "\x01=1+1"}], ["name"]))
    ).active
    assert ws["A2"].value == "某公司"
    assert ws["A3"].value == "'=1+1" and ws["A3"].data_type == "s"
