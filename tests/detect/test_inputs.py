"""Inputs as enterprises have them (#20): column mappings, time forms and zones, JSON Lines, Parquet."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fanchaoxin.detect import brushing
from fanchaoxin.detect.io import InputError, read_table
from fanchaoxin.detect.lockstep import load_actions
from fanchaoxin.detect.parcels import load_waybills
from fanchaoxin.detect.registrations import load_registrations

COLS = ["orderid", "shopid", "userid", "event_time"]
TYPES = {"orderid": "ID", "shopid": "ID", "userid": "ID", "event_time": "TIMESTAMP"}
SH = ZoneInfo("Asia/Shanghai")


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def times(path: Path, timezone: str, col: str = "t") -> list[dt.datetime]:
    rel = read_table(path, [col], types={col: "TIMESTAMP"}, timezone=timezone)
    return [r[0] for r in rel.fetchall()]


# ------------------------------------------------------------------------------------ column mappings


def test_mapping_renames_to_the_detectors_names(tmp_path):
    p = write(tmp_path, "o.csv", "order_id;shop;buyer;created;note\n1;10;100;2020-01-01 00:00:00;x\n")
    rel = read_table(
        p,
        COLS,
        types=TYPES,
        unique=["orderid"],
        columns={"orderid": "order_id", "shopid": "shop", "userid": "buyer", "event_time": "created"},
    )
    # the ';' delimiter was found by looking for the file's names, not the detector's
    assert rel.columns == [*COLS, "note"]
    assert rel.fetchall() == [(1, 10, 100, dt.datetime(2020, 1, 1), "x")]


def test_a_mapped_column_the_file_lacks_names_both(tmp_path):
    p = write(tmp_path, "o.csv", "order_id,shopid,userid,event_time\n1,10,100,2020-01-01 00:00:00\n")
    with pytest.raises(InputError) as e:
        read_table(p, COLS, types=TYPES, columns={"orderid": "order_no"})
    msg = str(e.value)
    assert "orderid" in msg and "order_no" in msg and "o.csv" in msg and "order_id" in msg
    assert e.value.column == "order_no" and e.value.path == str(p)


def test_value_errors_name_the_files_column(tmp_path):
    p = write(
        tmp_path,
        "o.csv",
        "order_id,shopid,userid,created\n1,10,100,2020-01-01 00:00:00\n2,10,100,tomorrow\n",
    )
    with pytest.raises(InputError) as e:
        read_table(p, COLS, types=TYPES, columns={"orderid": "order_id", "event_time": "created"})
    assert (e.value.column, e.value.row, e.value.line, e.value.value) == ("created", 2, 3, "tomorrow")
    assert "column created (read as event_time)" in str(e.value)

    empty = write(tmp_path, "e.csv", "order_id,shopid,userid,created\n,10,100,2020-01-01 00:00:00\n")
    with pytest.raises(InputError) as e:
        read_table(empty, COLS, types=TYPES, columns={"orderid": "order_id", "event_time": "created"})
    assert e.value.column == "order_id" and "column order_id" in str(e.value)


def test_a_repeat_in_a_mapped_unique_column_names_the_files_column(tmp_path):
    p = write(
        tmp_path,
        "o.csv",
        "order_id,shopid,userid,event_time\n7,1,1,2020-01-01 00:00:00\n7,1,1,2020-01-01 00:00:00\n",
    )
    with pytest.raises(InputError) as e:
        read_table(p, COLS, types=TYPES, unique=["orderid"], columns={"orderid": "order_id"})
    assert e.value.column == "order_id" and e.value.rows == [1, 2]
    assert "column order_id (read as orderid)" in str(e.value)


def test_a_file_column_carrying_a_mapped_name_is_left_out(tmp_path):
    # the file has its own 'orderid' (an internal sequence) but the mapping says order ids are 'ref'
    p = write(tmp_path, "o.csv", "orderid,ref,shopid,userid,event_time\n1,A7,10,100,2020-01-01 00:00:00\n")
    rel = read_table(p, COLS, types=TYPES, columns={"orderid": "ref"})
    assert rel.columns == COLS
    assert rel.fetchall()[0][0] == "A7"


def test_mapping_a_name_to_itself_is_no_mapping(tmp_path):
    p = write(tmp_path, "o.csv", "orderid,shopid,userid,event_time\n1,10,100,2020-01-01 00:00:00\n")
    assert read_table(p, COLS, types=TYPES, columns={"orderid": "orderid"}).columns == COLS


# ---------------------------------------------------------------------------------------- time forms

# 2020-01-01 00:00:00 in Shanghai = 2019-12-31 16:00:00 UTC = epoch 1577808000
FORMS = {
    "naive": ("2020-01-01 00:00:00", dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1)),
    "naive T": ("2020-01-01T00:00:00", dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1)),
    "zero fraction": ("2020-01-01 00:00:00.000", dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1)),
    "Z": ("2019-12-31T16:00:00Z", dt.datetime(2020, 1, 1), dt.datetime(2019, 12, 31, 16)),
    "+08:00": ("2020-01-01T00:00:00+08:00", dt.datetime(2020, 1, 1), dt.datetime(2019, 12, 31, 16)),
    "+0800": ("2020-01-01T00:00:00+0800", dt.datetime(2020, 1, 1), dt.datetime(2019, 12, 31, 16)),
    "+08": ("2020-01-01 00:00:00+08", dt.datetime(2020, 1, 1), dt.datetime(2019, 12, 31, 16)),
    "-05:30 with zero fraction": (
        "2019-12-31T10:30:00.000-05:30",
        dt.datetime(2020, 1, 1),
        dt.datetime(2019, 12, 31, 16),
    ),
    "epoch seconds": ("1577808000", dt.datetime(2020, 1, 1), dt.datetime(2019, 12, 31, 16)),
    "epoch milliseconds": ("1577808000000", dt.datetime(2020, 1, 1), dt.datetime(2019, 12, 31, 16)),
    "9-digit epoch": ("999999999", dt.datetime(2001, 9, 9, 9, 46, 39), dt.datetime(2001, 9, 9, 1, 46, 39)),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_time_form_in_shanghai_and_utc(tmp_path, form):
    text, shanghai, utc = FORMS[form]
    p = write(tmp_path, "t.csv", f"t\n{text}\n")
    assert times(p, "Asia/Shanghai") == [shanghai]
    assert times(p, "UTC") == [utc]


def test_one_column_may_mix_forms(tmp_path):
    p = write(tmp_path, "t.csv", "t\n2020-01-01 00:00:00\n2019-12-31T16:00:00Z\n1577808000\n1577808000000\n")
    assert times(p, "Asia/Shanghai") == [dt.datetime(2020, 1, 1)] * 4


def test_daylight_saving_zone(tmp_path):
    # New York: EST (-5) in January, EDT (-4) in July; the spring-forward night of 2021-03-14
    rows = [
        "2020-01-15T17:00:00Z",
        "2020-07-15T16:00:00Z",
        str(int(dt.datetime(2021, 3, 14, 6, 59, 59, tzinfo=dt.UTC).timestamp())),
        str(int(dt.datetime(2021, 3, 14, 7, 0, 0, tzinfo=dt.UTC).timestamp())),
        "2020-07-15 12:00:00",  # naive: already New York time, kept as written
    ]
    p = write(tmp_path, "t.csv", "t\n" + "\n".join(rows) + "\n")
    assert times(p, "America/New_York") == [
        dt.datetime(2020, 1, 15, 12),
        dt.datetime(2020, 7, 15, 12),
        dt.datetime(2021, 3, 14, 1, 59, 59),
        dt.datetime(2021, 3, 14, 3, 0, 0),
        dt.datetime(2020, 7, 15, 12),
    ]


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("2020-01-01T00:00:00.250Z", "fractional seconds"),
        ("1577808000250", "whole seconds"),
        ("15778080000", "11 digits"),
        ("2020-01-01T00:00:00+08:00[Asia/Shanghai]", ""),
    ],
)
def test_misreadable_times_are_errors_with_a_reason(tmp_path, bad, hint):
    p = write(tmp_path, "t.csv", f"t\n1577808000\n{bad}\n")
    with pytest.raises(InputError) as e:
        times(p, "Asia/Shanghai")
    assert (e.value.row, e.value.line, e.value.column, e.value.value) == (2, 3, "t", bad)
    assert hint in str(e.value) and "t.csv" in str(e.value)


@pytest.mark.parametrize("zone", ["Asia/Shangai", "CST", "asia/shanghai", "+08:00"])
def test_unknown_or_ambiguous_zone_is_a_clear_error(tmp_path, zone):
    p = write(tmp_path, "t.csv", "t\n2020-01-01 00:00:00\n")
    with pytest.raises(InputError) as e:
        times(p, zone)
    assert repr(zone) in str(e.value) and "IANA" in str(e.value)
    if zone in ("Asia/Shangai", "asia/shanghai"):
        assert "did you mean Asia/Shanghai" in str(e.value)


# ---------------------------------------------------------------------------------------- JSON Lines


def jsonl(tmp_path: Path, name: str, lines: list[str]) -> Path:
    return write(tmp_path, name, "\n".join(lines) + "\n")


def test_jsonl_reads_typed_values(tmp_path):
    p = jsonl(
        tmp_path,
        "o.jsonl",
        [
            '{"orderid": 1, "shopid": "10", "userid": "u1", '
            '"event_time": "2020-01-01T00:00:00+08:00", "x": {"a": 1}}',
            "",
            '{"orderid": 2, "shopid": 10, "userid": "u2", "event_time": 1577808000}',
            '{"event_time": "2020-01-01 00:00:01", "userid": "u3", "shopid": 10, "orderid": 3, "x": null}',
        ],
    )
    rel = read_table(p, COLS, types=TYPES, unique=["orderid"])
    assert rel.columns == [*COLS, "x"]
    assert [str(t) for t in rel.types[:4]] == ["BIGINT", "BIGINT", "VARCHAR", "TIMESTAMP"]
    assert rel.fetchall() == [
        (1, 10, "u1", dt.datetime(2020, 1, 1), '{"a":1}'),
        (2, 10, "u2", dt.datetime(2020, 1, 1), None),
        (3, 10, "u3", dt.datetime(2020, 1, 1, 0, 0, 1), None),
    ]


@pytest.mark.parametrize("name", ["o.ndjson", "o.json"])
def test_ndjson_and_json_suffixes_hold_json_lines(tmp_path, name):
    p = jsonl(tmp_path, name, ['{"a": "x", "t": 1577808000}'])
    assert read_table(p, ["a", "t"], types={"t": "TIMESTAMP"}).fetchall() == [("x", dt.datetime(2020, 1, 1))]


def test_jsonl_malformed_line_names_the_line(tmp_path):
    p = jsonl(tmp_path, "o.jsonl", ['{"a": 1, "t": 1577808000}', "", '{"a": 2, "t": 1577808000'])
    with pytest.raises(InputError) as e:
        read_table(p, ["a", "t"])
    assert e.value.line == 3 and "o.jsonl" in str(e.value) and "line 3" in str(e.value)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    p = jsonl(tmp_path, "o.jsonl", ['{"a": 1}', "[1, 2]"])
    with pytest.raises(InputError) as e:
        read_table(p, ["a"])
    assert e.value.line == 2 and "not a JSON object" in str(e.value)


def test_jsonl_missing_key_names_row_line_and_key(tmp_path):
    p = jsonl(tmp_path, "o.jsonl", ['{"a": 1, "b": 2}', "", '{"a": 2, "b": 3}', '{"b": 4}'])
    with pytest.raises(InputError) as e:
        read_table(p, ["a", "b"])
    assert (e.value.row, e.value.line, e.value.column) == (3, 4, "a")
    assert "required key a is missing" in str(e.value)
    # a key missing from the first object is a missing column, as in a CSV header
    with pytest.raises(InputError) as e:
        read_table(p, ["a", "c"])
    assert e.value.column == "c" and "missing required column" in str(e.value)


def test_jsonl_null_and_nested_values(tmp_path):
    p = jsonl(tmp_path, "o.jsonl", ['{"a": 1, "b": 2}', '{"a": null, "b": 3}'])
    with pytest.raises(InputError) as e:
        read_table(p, ["a", "b"])
    assert (e.value.row, e.value.line, e.value.column) == (2, 2, "a") and "empty value" in str(e.value)
    assert read_table(p, ["a", "b"], nullable=["a"]).fetchall() == [("1", "2"), (None, "3")]

    nested = jsonl(tmp_path, "n.jsonl", ['{"a": 1, "b": 2}', '{"a": [1], "b": 3}'])
    with pytest.raises(InputError) as e:
        read_table(nested, ["a", "b"])
    assert (e.value.row, e.value.column) == (2, "a") and "object or array" in str(e.value)


def test_jsonl_bad_value_names_row_line_and_column(tmp_path):
    p = jsonl(
        tmp_path,
        "o.jsonl",
        ['{"id": 1, "ts": 1577808000}', "", "", '{"id": 2, "ts": "2020-01-01T00:00:00.5+08:00"}'],
    )
    with pytest.raises(InputError) as e:
        read_table(
            p,
            ["orderid", "event_time"],
            types={"event_time": "TIMESTAMP"},
            columns={"event_time": "ts", "orderid": "id"},
        )
    assert (e.value.row, e.value.line, e.value.column) == (2, 4, "ts")
    assert "fractional seconds" in str(e.value)


@pytest.mark.parametrize(
    ("text", "hint"),
    [('[{"a": 1}, {"a": 2}]\n', "JSON array"), ('{\n  "a": 1\n}\n', "pretty-printed")],
)
def test_json_documents_are_refused_with_a_hint(tmp_path, text, hint):
    p = write(tmp_path, "o.json", text)
    with pytest.raises(InputError) as e:
        read_table(p, ["a"])
    assert hint in str(e.value) and "JSON Lines" in str(e.value) and e.value.line == 1


def test_jsonl_with_bom_and_crlf(tmp_path):
    p = tmp_path / "o.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"a": 1, "t": 1577808000}\r\n{"a": 2, "t": "2020-01-01 00:00:01"}\r\n')
    rel = read_table(p, ["a", "t"], types={"a": "ID", "t": "TIMESTAMP"})
    assert rel.fetchall() == [(1, dt.datetime(2020, 1, 1)), (2, dt.datetime(2020, 1, 1, 0, 0, 1))]


def test_jsonl_must_be_utf8(tmp_path):
    p = tmp_path / "o.jsonl"
    p.write_bytes('{"a": "旗舰店"}\n'.encode("gbk"))
    with pytest.raises(InputError, match="UTF-8"):
        read_table(p, ["a"])


# ------------------------------------------------------------------------------------------- Parquet


def test_parquet_timestamps_with_zone_and_epoch_integers(tmp_path):
    instants = [dt.datetime(2020, 1, 1, tzinfo=SH), dt.datetime(2020, 7, 1, 12, tzinfo=dt.UTC)]
    table = pa.table(
        {
            "utc": pa.array(instants, pa.timestamp("us", tz="UTC")),
            "sh_ns": pa.array(instants, pa.timestamp("ns", tz="Asia/Shanghai")),
            "epoch": pa.array([int(t.timestamp()) for t in instants], pa.int64()),
            "naive": pa.array([dt.datetime(2020, 1, 1), dt.datetime(2020, 7, 1, 20)], pa.timestamp("s")),
        }
    )
    p = tmp_path / "t.parquet"
    pq.write_table(table, p)
    cols = list(table.column_names)
    for zone, expect in [
        ("Asia/Shanghai", [dt.datetime(2020, 1, 1), dt.datetime(2020, 7, 1, 20)]),
        ("America/New_York", [dt.datetime(2019, 12, 31, 11), dt.datetime(2020, 7, 1, 8)]),
    ]:
        rel = read_table(p, cols, types=dict.fromkeys(cols, "TIMESTAMP"), timezone=zone)
        rows = rel.fetchall()
        for i, col in enumerate(cols[:3]):
            assert [r[i] for r in rows] == expect, (zone, col)
        # a time without zone is already local: it does not move with the zone
        assert [r[3] for r in rows] == [dt.datetime(2020, 1, 1), dt.datetime(2020, 7, 1, 20)]


def test_parquet_sub_second_instant_is_an_error(tmp_path):
    t = [dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2020, 1, 1, 0, 0, 0, 500, tzinfo=dt.UTC)]
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"t": pa.array(t, pa.timestamp("us", tz="UTC"))}), p)
    with pytest.raises(InputError) as e:
        read_table(p, ["t"], types={"t": "TIMESTAMP"})
    assert (e.value.row, e.value.column) == (2, "t") and "t.parquet" in str(e.value)


# ------------------------------------------------------------------------------------------- loaders


def test_loaders_take_mappings_and_zones(tmp_path):
    actions = write(tmp_path, "a.csv", "uid,sku,at\nu1,i1,1577808000\nu2,i1,2019-12-31T16:00:00Z\n")
    ul, il, uc, ic, t = load_actions(
        actions, columns={"user": "uid", "item": "sku", "time": "at"}, timezone="UTC"
    )
    assert list(ul) == ["u1", "u2"] and list(il) == ["i1"]
    assert list(uc) == [0, 1] and list(ic) == [0, 0]
    assert list(t) == [int(dt.datetime(2019, 12, 31, 16, tzinfo=dt.UTC).timestamp())] * 2

    regs = write(
        tmp_path,
        "r.csv",
        "acct,created,device_id,ip,phone,nickname\na1,1577808000,d1,,,\na2,2020-01-01T00:00:00+08:00,d1,,,\n",
    )
    r = load_registrations(regs, columns={"account": "acct", "registered_at": "created"})
    local = int(dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp())  # Shanghai wall clock, as epoch
    assert list(r.account) == ["a1", "a2"] and list(r.time) == [local, local]
    with pytest.raises(InputError) as e:
        load_registrations(regs, columns={"account": "acct", "registered_at": "made"})
    assert e.value.column == "made" and "registered_at" in str(e.value)

    header = (
        "wb,courier,sender,weight_kg,pickup_time,sign_time,origin_city,dest_city,distance_km,transit_scans"
    )
    wbs = write(tmp_path, "w.csv", f"{header}\nW1,c,s,0.1,1577808000,,,,,\nW1,c,s,0.1,1577808000,,,,,\n")
    with pytest.raises(InputError) as e:
        load_waybills(wbs, columns={"waybill": "wb"})
    assert e.value.column == "wb" and e.value.rows == [1, 2]
    w = load_waybills(
        write(tmp_path, "w2.csv", f"{header}\nW1,c,s,0.1,1577808000,,,,,\n"), columns={"waybill": "wb"}
    )
    assert list(w.pickup) == [local]


# --------------------------------------------------------------------- end to end: the Shopee answer


def shopee_orders(seed: int = 7) -> list[tuple[int, int, int, int]]:
    """(orderid, shopid, userid, epoch seconds) over two days around midnight in Shanghai, with bursts."""
    rng = random.Random(seed)
    start = int(dt.datetime(2019, 12, 27, 22, tzinfo=SH).timestamp())
    rows = []
    oid = 1
    for shop in range(100, 140):
        for _ in range(rng.randint(3, 25)):
            rows.append((oid, shop, rng.randint(1, 400), start + rng.randint(0, 172800)))
            oid += 1
        if shop % 4 == 0:  # a brushing burst: one fresh buyer, orders within the hour, across midnight
            base = start + 7200 - 1800 + rng.randint(0, 600)
            gaps = [0, 1200, 2400, 3600] if shop % 8 == 0 else [0, 900, 1800]
            for g in gaps:
                rows.append((oid, shop, 9000 + shop, base + g))
                oid += 1
    rng.shuffle(rows)
    return rows


def answer(path: Path, timezone: str = "Asia/Shanghai", columns=None):
    rel = brushing.read_orders(path, columns=columns, timezone=timezone)
    lines, windows = [], {}
    for chunk in brushing.detect_order_brushing(rel):
        lines += brushing.shopee_lines(chunk)
        windows.update({s.shopid: sorted(w[:2] for w in s.windows) for s in chunk.shops})
    return lines, windows


def test_shopee_answer_is_the_same_for_every_time_form(tmp_path):
    rows = shopee_orders()

    def local(t: int) -> str:
        return dt.datetime.fromtimestamp(t, SH).strftime("%Y-%m-%d %H:%M:%S")

    naive = write(
        tmp_path,
        "naive.csv",
        "orderid,shopid,userid,event_time\n" + "".join(f"{o},{s},{u},{local(t)}\n" for o, s, u, t in rows),
    )
    iso = write(
        tmp_path,
        "iso.csv",
        "order_id,shop_id,user_id,created_at\n"
        + "".join(f"{o},{s},{u},{local(t).replace(' ', 'T')}+08:00\n" for o, s, u, t in rows),
    )
    epoch = write(
        tmp_path,
        "epoch.csv",
        "orderid,shopid,userid,event_time\n" + "".join(f"{o},{s},{u},{t}\n" for o, s, u, t in rows),
    )
    lines = [json.dumps({"orderid": o, "shopid": s, "userid": u, "event_time": t}) for o, s, u, t in rows]
    as_jsonl = jsonl(tmp_path, "orders.jsonl", lines)
    utc_parquet = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "orderid": [r[0] for r in rows],
                "shopid": [r[1] for r in rows],
                "userid": [r[2] for r in rows],
                "event_time": pa.array(
                    [dt.datetime.fromtimestamp(r[3], dt.UTC) for r in rows], pa.timestamp("s", tz="UTC")
                ),
            }
        ),
        utc_parquet,
    )

    expected = answer(naive)
    brushing_shops = [ln for ln in expected[0] if not ln.endswith(",0")]
    assert len(brushing_shops) >= 5  # the planted bursts are found: the comparison is not of empties
    assert answer(epoch) == expected
    assert answer(as_jsonl) == expected
    assert answer(utc_parquet) == expected
    mapping = {"orderid": "order_id", "shopid": "shop_id", "userid": "user_id", "event_time": "created_at"}
    assert answer(iso, columns=mapping) == expected
    # the windows are on the local clock: read in another zone, the same instants give other windows
    assert answer(epoch, timezone="UTC")[1] != expected[1]
