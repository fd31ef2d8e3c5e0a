"""Bulk uploads (批量报送): CSV / XLSX / JSON Lines → validated entries and a per-row error report.

No database: `parse_upload` is pure.
"""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from fanchaoxin.blacklist.uploads import (
    CHINESE_ALIASES,
    COLUMNS,
    ParsedUpload,
    UploadError,
    detect_format,
    parse_upload,
)
from fanchaoxin.core.identifiers import org_code_check_char, resident_id_check_digit, uscc_check_char

USCC = "91110000600037341L"
RID = "11010519491231002X"
LEGACY_RID = "310115600101123"  # 15-digit 一代证, upgraded to 18 characters
PHONE = "13812345678"


def make_uscc(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    org = "".join(rng.choice(alphabet) for _ in range(8))
    first17 = "91" + "310115" + org + org_code_check_char(org)
    return first17 + uscc_check_char(first17)


def make_rid(rng: random.Random) -> str:
    first17 = "310115" + f"{1960 + rng.randrange(40)}0{1 + rng.randrange(9)}1{rng.randrange(10)}" + "123"
    return first17 + resident_id_check_digit(first17)


def row(**kw: str) -> dict[str, str]:
    base = {
        "subject_kind": "unit",
        "subject_name": "上海某某网络科技有限公司",
        "uscc": USCC,
        "behaviours": "order_brushing",
        "role": "organizer",
        "severity": "serious",
        "basis": "enterprise_finding",
        "facts": "组织刷单炒信，虚假交易1200笔",
    }
    base.update(kw)
    return base


def rows_of_units(n: int, seed: int = 1) -> list[dict[str, str]]:
    """`n` valid, distinct rows (small test helper; the benchmark has a richer generator)."""
    rng = random.Random(seed)
    return [row(uscc=make_uscc(rng), subject_name=f"公司{i}") for i in range(n)]


def to_csv(rows: list[dict[str, str]], header: list[str] | None = None, delimiter: str = ",") -> str:
    cols = header or list(dict.fromkeys(c for r in rows for c in r))
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return out.getvalue()


def parse_csv(text: str | bytes, **kw) -> ParsedUpload:  # type: ignore[no-untyped-def]
    content = text.encode() if isinstance(text, str) else text
    return parse_upload(content, filename="entries.csv", media_type="text/csv", **kw)


def errors_of(p: ParsedUpload) -> list[tuple[int, str, str | None]]:
    return [(e.row, e.field, e.type) for e in p.errors]


# --- encodings ----------------------------------------------------------------------------------------

CHINESE_CSV = (
    "主体类型,主体名称,统一社会信用代码,手机号,失信行为,角色,严重程度,认定依据,文书编号,作出机关,文书日期,事实\r\n"
    "单位,杭州某某贸易有限公司,91110000600037341L,13812345678,刷单炒信；虚假评价,组织者,严重,行政处罚,"
    "杭市监处〔2023〕12号,杭州市市场监督管理局,2023年5月6日,组织刷手虚构交易\r\n"
)


def test_utf8_bom_and_gbk_parse_the_same() -> None:
    results = {}
    for encoding in ("utf-8", "utf-8-sig", "gbk"):
        p = parse_csv(CHINESE_CSV.encode(encoding))
        assert p.format == "csv"
        assert p.encoding == encoding
        assert p.errors == []
        assert p.total_rows == 1
        results[encoding] = [(n, e.model_dump()) for n, e in p.entries]
    assert results["utf-8"] == results["utf-8-sig"] == results["gbk"]
    ((n, entry),) = parse_csv(CHINESE_CSV).entries
    assert n == 2
    assert entry.subject.kind == "unit"
    assert entry.subject.identifiers[1].value == "+8613812345678"
    assert entry.behaviours == ["fake_review", "order_brushing"]
    assert (entry.role, entry.severity, entry.basis) == ("organizer", "serious", "administrative_penalty")
    assert entry.document_date == date(2023, 5, 6)


def test_utf16_is_refused() -> None:
    with pytest.raises(UploadError, match="UTF-16"):
        parse_csv(CHINESE_CSV.encode("utf-16"))
    with pytest.raises(UploadError, match="UTF-16"):  # no BOM: caught by its NUL bytes
        parse_csv(CHINESE_CSV.encode("utf-16-le"))


def test_bytes_invalid_in_utf8_and_gbk_name_the_offset_and_line() -> None:
    content = to_csv([row(subject_name="ACME Ltd", facts="brushing")]).encode() + b"unit,caf\xe9\xff,x\r\n"
    with pytest.raises(UploadError) as exc:
        parse_csv(content)
    assert "neither UTF-8" in exc.value.message
    assert "line 3" in exc.value.message and "offset" in exc.value.message


def test_utf8_with_a_stray_byte_is_not_read_as_gbk() -> None:
    # Valid GBK as a whole, so a plain fallback would import 乱码; but UTF-8 up to the stray GBK cell.
    text = to_csv([row(subject_name="单位单位单位", facts="单位单位单位")])
    content = text.encode() + b"unit," + "公司".encode("gbk") + b",x\r\n"
    content.decode("gbk")
    with pytest.raises(UploadError, match=r"not valid UTF-8.*line 3"):
        parse_csv(content)


# --- header -----------------------------------------------------------------------------------------


def test_chinese_headers_and_values() -> None:
    p = parse_csv(CHINESE_CSV)
    assert p.ok and len(p.entries) == 1
    every_alias = [a for aliases in CHINESE_ALIASES.values() for a in aliases]
    assert len(every_alias) == len(set(every_alias))
    assert set(CHINESE_ALIASES) == set(COLUMNS)


def test_header_names_are_forgiving_about_case_spaces_and_required_marks() -> None:
    text = to_csv([row()]).replace("subject_kind", "Subject Kind").replace("facts", "facts*")
    assert parse_csv(text).ok


def test_unknown_column_is_refused_with_a_suggestion() -> None:
    with pytest.raises(UploadError) as exc:
        parse_csv(to_csv([row(usc=USCC)]))
    assert exc.value.field == "(header)" and exc.value.row == 1
    assert "'usc'" in exc.value.message and "did you mean 'uscc'" in exc.value.message


def test_missing_required_column() -> None:
    r = row()
    del r["severity"]
    with pytest.raises(UploadError, match=r"missing required column.*severity"):
        parse_csv(to_csv([r]))
    r = row()
    del r["uscc"]
    with pytest.raises(UploadError, match="at least one identifier column"):
        parse_csv(to_csv([r]))


def test_same_column_twice_is_refused() -> None:
    text = to_csv([row()]).replace("subject_name", "主体类型", 1)
    with pytest.raises(UploadError, match="appears twice"):
        parse_csv(text)


def test_empty_file_and_header_only() -> None:
    with pytest.raises(UploadError, match="empty"):
        parse_csv(b"")
    with pytest.raises(UploadError, match="empty"):
        parse_csv("\r\n \r\n")
    with pytest.raises(UploadError, match="no data rows"):
        parse_csv(to_csv([]).replace("\r\n", "") + ",".join(row()) + "\r\n")


# --- row errors -------------------------------------------------------------------------------------


def test_invalid_identifier_names_the_column() -> None:
    p = parse_csv(to_csv([row(), row(uscc="91110000600037341A", subject_name="另一家公司")]))
    assert len(p.entries) == 1
    (err,) = p.errors
    assert (err.row, err.field, err.type) == (3, "uscc", "value_error")
    assert "rule uscc.check_char" in err.message


def test_every_error_of_a_row_is_reported() -> None:
    p = parse_csv(
        to_csv(
            [row(uscc="91110000600037341A", phone="123", behaviours="order_brushing;bogus", severity="huge")]
        )
    )
    assert p.entries == []
    fields = {e.field for e in p.errors}
    assert fields == {"uscc", "phone", "behaviours", "severity"}
    assert all(e.row == 2 for e in p.errors)


def test_several_values_in_one_identifier_cell() -> None:
    p = parse_csv(to_csv([row(phone=f"{PHONE}；13900000000", email="a@example.com")]))
    assert p.ok
    idents = [(i.type.value, i.value) for i in p.entries[0][1].subject.identifiers]
    assert idents == [
        ("uscc", USCC),
        ("phone", "+8613812345678"),
        ("phone", "+8613900000000"),
        ("email", "a@example.com"),
    ]
    p = parse_csv(to_csv([row(phone=f"{PHONE};12")]))
    (err,) = p.errors
    assert err.field == "phone" and err.message.startswith("value 2 of 2 in the cell:")


def test_unknown_behaviour_code() -> None:
    p = parse_csv(to_csv([row(behaviours="order_brushing, brushing")]))
    (err,) = p.errors
    assert err.field == "behaviours"
    assert "unknown behaviour code 'brushing'" in err.message


def test_impossible_and_unreadable_dates_name_the_column() -> None:
    p = parse_csv(to_csv([row(occurred_from="2026-02-30"), row(occurred_to="last week", subject_name="乙")]))
    assert errors_of(p) == [(2, "occurred_from", "date_invalid"), (3, "occurred_to", "date_format")]
    assert "2026-02-30 is not a real date" in p.errors[0].message


def test_date_spellings() -> None:
    for spelling in ("2023-05-06", "2023/5/6", "2023年5月6日", "20230506", "2023/5/6 0:00"):
        p = parse_csv(to_csv([row(document_date=spelling)]))
        assert p.ok, (spelling, p.errors)
        assert p.entries[0][1].document_date == date(2023, 5, 6)


def test_administrative_basis_without_document_number() -> None:
    p = parse_csv(to_csv([row(basis="administrative_penalty", issuing_authority="上海市市场监督管理局")]))
    (err,) = p.errors
    assert (err.field, err.row) == ("document_number", 2)
    assert "required for basis administrative_penalty" in err.message


def test_identifier_the_subject_kind_cannot_have() -> None:
    p = parse_csv(
        to_csv([row(subject_kind="website", uscc="", domain="shuadan.example.cn", resident_id=RID)])
    )
    (err,) = p.errors
    assert err.field == "resident_id"
    assert "a subject of kind website cannot have a resident_id identifier" in err.message


def test_row_without_any_identifier() -> None:
    p = parse_csv(to_csv([row(uscc="")]))
    assert errors_of(p) == [(2, "(identifiers)", "identifiers_missing")]


def test_value_in_a_column_without_header() -> None:
    text = to_csv([row()]).replace("\r\n", ",\r\n", 1).rstrip("\r\n") + ",stray\r\n"
    p = parse_csv(text)
    assert errors_of(p) == [(2, "(row)", "no_header")]


def test_liable_persons_columns() -> None:
    p = parse_csv(
        to_csv(
            [
                row(
                    legal_representative_name="张三",
                    legal_representative_resident_id=RID,
                    principal_name="李四",
                    principal_phone=PHONE,
                )
            ]
        )
    )
    assert p.ok, p.errors
    persons = p.entries[0][1].liable_persons
    assert [(x.role.value, x.name, x.identifiers[0].type.value) for x in persons] == [
        ("legal_representative", "张三", "resident_id"),
        ("principal", "李四", "phone"),
    ]
    p = parse_csv(
        to_csv([row(legal_representative_name="张三", legal_representative_resident_id=RID[:-1] + "1")])
    )
    assert [(e.field, e.type) for e in p.errors] == [("legal_representative_resident_id", "value_error")]
    p = parse_csv(to_csv([row(legal_representative_name="张三")]))
    assert [(e.field, e.type) for e in p.errors] == [
        ("legal_representative_resident_id", "identifiers_missing")
    ]
    p = parse_csv(
        to_csv(
            [
                row(
                    subject_kind="individual",
                    uscc="",
                    resident_id=RID,
                    directly_responsible_name="王五",
                    directly_responsible_phone=PHONE,
                )
            ]
        )
    )
    assert [e.field for e in p.errors] == ["directly_responsible_name"]


def test_scientific_notation_from_excel_in_a_csv() -> None:
    p = parse_csv(to_csv([row(subject_kind="individual", uscc="", resident_id="1.10105E+17")]))
    assert errors_of(p) == [(2, "resident_id", "number_precision_lost")]


# --- rows -------------------------------------------------------------------------------------------


def test_duplicate_rows() -> None:
    rows = [row(phone=PHONE), row(subject_name="另一家"), row(phone=PHONE)]
    p = parse_csv(to_csv(rows))
    assert [n for n, _ in p.entries] == [2, 3]
    assert errors_of(p) == [(4, "(row)", "duplicate")]
    assert p.errors[0].message == "duplicate of row 2"
    # The same normalised content: identifiers in another order, spelled differently.
    p = parse_csv(
        to_csv(
            [
                row(phone=f"{PHONE};13900000000", behaviours="fake_review;order_brushing"),
                row(
                    uscc=USCC.lower(),
                    phone="139 0000 0000；+86 138-1234-5678",
                    behaviours="刷单炒信、虚假评价",
                ),
            ]
        )
    )
    assert [e.message for e in p.errors] == ["duplicate of row 2"]


def test_blank_rows_are_skipped_and_row_numbers_stay_those_of_the_sheet() -> None:
    header, first = to_csv([row()]).split("\r\n", 1)
    text = f"{header}\r\n\r\n,,,\r\n{first}"
    text += to_csv([row(uscc="91110000600037341A", facts="第一行\n第二行")]).split("\r\n", 1)[
        1
    ]  # one row, 2 lines
    text += to_csv([row(subject_name="丙")]).split("\r\n", 1)[1]
    p = parse_csv(text)
    assert p.total_rows == 3
    assert [n for n, _ in p.entries] == [4, 6]
    assert errors_of(p) == [(5, "uscc", "value_error")]


def test_too_many_rows() -> None:
    text = to_csv(rows_of_units(6))
    assert len(parse_csv(text, max_rows=6).entries) == 6
    with pytest.raises(UploadError, match="more than 5 data rows") as exc:
        parse_csv(text, max_rows=5)
    assert exc.value.row == 7


def test_tab_separated() -> None:
    p = parse_csv(to_csv([row()], delimiter="\t"))
    assert p.ok and len(p.entries) == 1


# --- XLSX -------------------------------------------------------------------------------------------


def xlsx(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.create_sheet("ignored").append(["not", "read"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_round_trip() -> None:
    header = [
        "主体类型",
        "主体名称",
        "身份证号",
        "手机号",
        "失信行为",
        "角色",
        "严重程度",
        "认定依据",
        "文书日期",
        "事实",
    ]
    content = xlsx(
        [
            header,
            ["individual", "张三", RID, 13812345678, "fake_review", "participant", "minor",
             "enterprise_finding", datetime(2023, 5, 6), "虚假评价"],
            [None] * len(header),
            ["individual", "李四", 1.10105194912310e17, 13900000000.0, "fake_review", "participant", "minor",
             "enterprise_finding", None, "虚假评价"],
            ["individual", "王五", int(LEGACY_RID), None, "fake_review", "participant", "minor",
             "enterprise_finding", 20230506, 12345],
        ]
    )  # fmt: skip
    p = parse_upload(content, filename="名单.xlsx", media_type=None)
    assert (p.format, p.encoding, p.total_rows) == ("xlsx", None, 3)
    (n, entry), (n2, entry2) = p.entries
    assert n == 2
    assert [i.value for i in entry.subject.identifiers] == [RID, "+8613812345678"]
    assert entry.document_date == date(2023, 5, 6)
    assert n2 == 5 and entry2.facts == "12345" and entry2.document_date == date(2023, 5, 6)
    assert entry2.subject.identifiers[0].value == "31011519600101123" + resident_id_check_digit(
        "31011519600101123"
    )
    (err,) = p.errors
    assert (err.row, err.field, err.type) == (4, "resident_id", "number_precision_lost")
    assert "format the column as text" in err.message


def test_xlsx_with_a_wrong_dimension_is_read_whole() -> None:
    content = xlsx([list(row()), list(row().values()), [], list(row(subject_name="乙").values())])
    src, out = zipfile.ZipFile(io.BytesIO(content)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:H4"' in data
                data = data.replace(b'<dimension ref="A1:H4"', b'<dimension ref="A1:B1"')
            dst.writestr(item, data)
    p = parse_upload(out.getvalue(), filename=None, media_type=None)
    assert p.ok and [n for n, _ in p.entries] == [2, 4]


def test_not_an_xlsx() -> None:
    with pytest.raises(UploadError, match="not an XLSX"):
        parse_upload(b"a,b\r\n", filename="x.xlsx", media_type=None)
    with pytest.raises(UploadError, match="not a readable XLSX"):
        parse_upload(b"PK\x03\x04garbage", filename="x.xlsx", media_type=None)


# --- JSON Lines -------------------------------------------------------------------------------------


def entry_json(**kw: object) -> dict[str, object]:
    d: dict[str, object] = {
        "subject": {"kind": "unit", "name": "某公司", "identifiers": [{"type": "uscc", "value": USCC}]},
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "general",
        "basis": "enterprise_finding",
        "facts": "刷单",
    }
    d.update(kw)
    return d


def test_jsonl_good_and_malformed_lines() -> None:
    lines = [
        json.dumps(entry_json(), ensure_ascii=False),
        "",
        '{"subject": {"kind": "unit",',
        "[1, 2]",
        json.dumps(
            entry_json(
                subject={"kind": "unit", "name": "乙", "identifiers": [{"type": "uscc", "value": "1"}]}
            )
        ),
        json.dumps(entry_json(occurred_from="2026-02-30", facts="另一事实")),
        json.dumps(entry_json()),
    ]
    p = parse_upload("\n".join(lines).encode(), filename="entries.jsonl", media_type=None)
    assert (p.format, p.encoding, p.total_rows) == ("jsonl", "utf-8", 6)
    assert [n for n, _ in p.entries] == [1]
    assert errors_of(p) == [
        (3, "(row)", "json_invalid"),
        (4, "(row)", "json_not_object"),
        (5, "subject.identifiers[0].value", "value_error"),
        (6, "occurred_from", "date_from_datetime_parsing"),
        (7, "(row)", "duplicate"),
    ]


def test_jsonl_is_sniffed_without_a_name() -> None:
    content = json.dumps(entry_json()).encode()
    assert parse_upload(content, filename=None, media_type=None).format == "jsonl"
    assert parse_upload(content, filename=None, media_type="application/x-ndjson").ok


# --- format detection -------------------------------------------------------------------------------


def test_format_detection() -> None:
    assert detect_format(b"a,b", "x.CSV", None) == "csv"
    assert detect_format(b"a,b", None, "application/vnd.ms-excel") == "csv"  # Windows browsers, for .csv
    assert detect_format(b"PK\x03\x04...", "x.csv", "text/csv") == "xlsx"
    assert detect_format(b"{}", "x.txt", None) == "jsonl"
    with pytest.raises(UploadError, match=r"\.xls"):
        detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "x.xls", None)
    with pytest.raises(UploadError, match=r"unsupported file type '\.pdf'"):
        detect_format(b"%PDF", "x.pdf", None)
    with pytest.raises(UploadError, match="JSON array"):
        detect_format(b'[{"subject": {}}]', "x.json", None)
    with pytest.raises(UploadError, match="unsupported media type"):
        detect_format(b"%PDF", None, "application/pdf")
