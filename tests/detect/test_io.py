"""Strict reading of CSV / Parquet input for the detectors (fanchaoxin.detect.io)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from fanchaoxin.detect.io import InputError, read_table

COLS = ["orderid", "shopid", "userid", "event_time"]
TYPES = {"orderid": "ID", "shopid": "ID", "userid": "ID", "event_time": "TIMESTAMP"}
HEADER = "orderid,shopid,userid,event_time\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read(path: Path, **kw):
    return read_table(path, COLS, types=TYPES, **kw)


def test_utf8_reads_typed_columns(tmp_path):
    p = write(
        tmp_path, "o.csv", (HEADER + "1,10,100,2020-01-01 00:00:00\n2,10,101,2020-01-01 00:00:01\n").encode()
    )
    rel = read(p)
    assert rel.columns == COLS
    assert [str(t) for t in rel.types] == ["BIGINT", "BIGINT", "BIGINT", "TIMESTAMP"]
    assert rel.fetchall() == [
        (1, 10, 100, dt.datetime(2020, 1, 1)),
        (2, 10, 101, dt.datetime(2020, 1, 1, 0, 0, 1)),
    ]


def test_utf8_bom(tmp_path):
    p = write(tmp_path, "o.csv", b"\xef\xbb\xbf" + (HEADER + "1,10,100,2020-01-01 00:00:00\n").encode())
    assert read(p).fetchall() == [(1, 10, 100, dt.datetime(2020, 1, 1))]


def test_gbk_is_transcoded(tmp_path):
    text = (
        "订单号,店铺,用户,event_time\n1,旗舰店,张三,2020-01-01 00:00:00\n2,旗舰店,李四,2020-01-01 00:00:05\n"
    )
    p = write(tmp_path, "gbk.csv", text.encode("gbk"))
    rel = read_table(
        p, ["订单号", "店铺", "用户"], types={"订单号": "ID", "店铺": "ID", "event_time": "TIMESTAMP"}
    )
    assert rel.columns[:3] == ["订单号", "店铺", "用户"]
    assert rel.fetchall() == [
        (1, "旗舰店", "张三", dt.datetime(2020, 1, 1)),
        (2, "旗舰店", "李四", dt.datetime(2020, 1, 1, 0, 0, 5)),
    ]


def test_gbk_bytes_after_a_long_ascii_prefix(tmp_path):
    # the encoding is decided on the whole file, not on a sample of its start
    body = "".join(f"{i},1,1,2020-01-01 00:00:00\n" for i in range(1, 5000))
    p = write(
        tmp_path, "late.csv", (HEADER + body).encode() + "5000,店,1,2020-01-01 00:00:00\n".encode("gbk")
    )
    rows = read(p).fetchall()
    assert len(rows) == 5000 and rows[-1][1] == "店"


def test_latin1_is_a_clear_error(tmp_path):
    p = write(tmp_path, "l1.csv", (HEADER + "1,café,1,2020-01-01 00:00:00\n").encode("latin-1"))
    with pytest.raises(InputError) as e:
        read(p)
    msg = str(e.value)
    assert "neither UTF-8 nor GBK" in msg and "line 2" in msg and "l1.csv" in msg
    assert e.value.line == 2


def test_utf16_is_a_clear_error(tmp_path):
    p = write(tmp_path, "u16.csv", (HEADER + "1,2,3,2020-01-01 00:00:00\n").encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        read(p)


def test_missing_columns_are_named(tmp_path):
    p = write(tmp_path, "m.csv", b"orderid,shop,userid\n1,2,3\n")
    with pytest.raises(InputError) as e:
        read(p)
    msg = str(e.value)
    assert "m.csv" in msg and "shopid" in msg and "event_time" in msg
    assert e.value.column == "shopid"


def test_unparsable_time_names_row_column_and_value(tmp_path):
    data = (
        HEADER + "1,10,100,2020-01-01 00:00:00\n2,10,100,2020-01-01 00:00:01\n3,10,100,2020-02-30 00:00:00\n"
    )
    p = write(tmp_path, "t.csv", data.encode())
    with pytest.raises(InputError) as e:
        read(p)
    assert e.value.row == 3 and e.value.column == "event_time" and e.value.value == "2020-02-30 00:00:00"
    assert e.value.line == 4
    assert "data row 3" in str(e.value) and "event_time" in str(e.value) and "2020-02-30" in str(e.value)


@pytest.mark.parametrize(
    "bad",
    [
        "2020-01-01",
        "2020-01-01 00:00:00.5",
        "2020-01-01T00:00:00.5+08:00",
        "2020-01-01 00:00",
        "2020-01-01 00:00:00 +08:00",
        "2020-01-01T00:00:00+24:00",
        "2020-01-01T00:00:00 Asia/Shanghai",
        "yesterday",
        "12345678",
        "15778080000",
        "1577808000500",
        "-1577808000",
    ],
)
def test_times_that_are_not_whole_seconds_or_could_be_misread(tmp_path, bad):
    p = write(tmp_path, "t.csv", (HEADER + f"1,10,100,{bad}\n").encode())
    with pytest.raises(InputError) as e:
        read(p)
    assert e.value.row == 1 and e.value.value == bad


def test_row_and_line_differ_after_blank_lines_and_quoted_newlines(tmp_path):
    data = HEADER + '1,"a\nb",100,2020-01-01 00:00:00\n\n2,10,100,oops\n'
    p = write(tmp_path, "q.csv", data.encode())
    with pytest.raises(InputError) as e:
        read(p)
    assert (e.value.row, e.value.line, e.value.value) == (2, 5, "oops")


def test_empty_value_in_required_column(tmp_path):
    p = write(tmp_path, "n.csv", (HEADER + "1,10,,2020-01-01 00:00:00\n").encode())
    with pytest.raises(InputError) as e:
        read(p)
    assert (e.value.row, e.value.column) == (1, "userid")
    assert len(read(p, nullable=["userid"]).fetchall()) == 1


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read(write(tmp_path, "e.csv", b""))


def test_header_only(tmp_path):
    p = write(tmp_path, "h.csv", HEADER.encode())
    with pytest.raises(InputError, match="no data rows"):
        read(p)
    assert read(p, allow_empty=True).fetchall() == []


def test_duplicate_ids_name_the_rows(tmp_path):
    data = HEADER + "".join(
        f"{o},10,100,2020-01-01 00:00:0{i}\n" for i, o in enumerate(["7", "8", "9", "7", "8", "10"])
    )
    p = write(tmp_path, "d.csv", data.encode())
    with pytest.raises(InputError) as e:
        read(p, unique=["orderid"])
    assert e.value.column == "orderid" and e.value.rows == [1, 4] and e.value.row == 4
    assert "data rows 1, 4" in str(e.value) and "data rows 2, 5" in str(e.value)
    read(p)  # without `unique` repeats are allowed


def test_ids_stay_text_unless_all_canonical_integers(tmp_path):
    p = write(
        tmp_path, "i.csv", (HEADER + "1,007,u1,2020-01-01 00:00:00\n2,7,5,2020-01-01 00:00:00\n").encode()
    )
    rel = read(p)
    assert [str(t) for t in rel.types[:3]] == ["BIGINT", "VARCHAR", "VARCHAR"]
    assert rel.fetchall()[0][1:3] == ("007", "u1")


def test_bigint_is_strict(tmp_path):
    p = write(tmp_path, "b.csv", b"a,n\nx,12\ny,12.0\n")
    with pytest.raises(InputError) as e:
        read_table(p, ["a", "n"], types={"n": "BIGINT"})
    assert (e.value.row, e.value.column, e.value.value) == (2, "n", "12.0")


def test_tab_separated(tmp_path):
    p = write(tmp_path, "o.tsv", (HEADER.replace(",", "\t") + "1\t10\t100\t2020-01-01 00:00:00\n").encode())
    assert read(p).fetchall() == [(1, 10, 100, dt.datetime(2020, 1, 1))]


def test_ragged_line_is_an_error_with_its_line(tmp_path):
    p = write(tmp_path, "r.csv", (HEADER + "1,10,100,2020-01-01 00:00:00\n2,10,100\n").encode())
    with pytest.raises(InputError) as e:
        read(p)
    assert e.value.line == 3


def test_parquet(tmp_path):
    p = tmp_path / "o.parquet"
    duckdb.sql(
        "SELECT range AS orderid, range % 2 AS shopid, 'u' || range AS userid, "
        "TIMESTAMP '2020-01-01' + to_seconds(range) AS event_time FROM range(4)"
    ).write_parquet(str(p))
    rel = read(p)
    assert [str(t) for t in rel.types] == ["BIGINT", "BIGINT", "VARCHAR", "TIMESTAMP"]
    assert len(rel.fetchall()) == 4

    bad = tmp_path / "frac.parquet"
    duckdb.sql(
        "SELECT range AS orderid, 1 AS shopid, 1 AS userid, "
        "TIMESTAMP '2020-01-01' + to_milliseconds(range * 500) AS event_time FROM range(4)"
    ).write_parquet(str(bad))
    with pytest.raises(InputError) as e:
        read(bad)
    assert (e.value.row, e.value.column) == (2, "event_time")

    with pytest.raises(InputError, match="missing required column"):
        read_table(p, ["orderid", "nope"])
