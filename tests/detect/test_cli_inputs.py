"""`--col NAME=COLUMN` and `--timezone` reach the loaders of order-brushing, dense-blocks, lockstep,
registrations and parcels (#20): a file with other column names and times with offsets or in epoch
seconds gives the same answer as the plain file, and times in the evidence are in the zone asked for.
How the loaders read them is tested in test_inputs.py; here, that each command passes them on.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from fanchaoxin.cli import app

runner = CliRunner()
T0 = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _naive(t: datetime, hours: int = 8) -> str:
    return (t + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def _run(*args: str) -> str:
    res = runner.invoke(app, ["detect", *args])
    assert res.exit_code == 0, res.output
    return res.output


def test_order_brushing_takes_renamed_columns_and_offset_times(tmp_path: Path):
    # shop 7: buyer 1 orders 3 times in 20 minutes (brushing at rate 3); shop 8: three buyers, once each
    orders = [(1, 7, 1, 0), (2, 7, 1, 10), (3, 7, 1, 20), (4, 8, 1, 0), (5, 8, 2, 5), (6, 8, 3, 9)]
    plain = _write(
        tmp_path / "plain.csv",
        ["orderid", "shopid", "userid", "event_time"],
        [[o, s, u, _naive(T0 + timedelta(minutes=m))] for o, s, u, m in orders],
    )
    iso = [(T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for *_, m in orders]
    renamed = _write(
        tmp_path / "renamed.csv",
        ["order_id", "shop", "buyer", "created_at"],
        [[o, s, u, t] for (o, s, u, _), t in zip(orders, iso, strict=True)],
    )
    cols = ["--col", "orderid=order_id", "--col", "shopid=shop", "--col", "userid=buyer"]
    cols += ["--col", "event_time=created_at"]
    _run("order-brushing", "-i", str(plain), "-o", str(tmp_path / "a.csv"))
    _run("order-brushing", "-i", str(renamed), "-o", str(tmp_path / "b.csv"), *cols)
    _run("order-brushing", "-i", str(renamed), "-o", str(tmp_path / "c.csv"), *cols, "--timezone", "UTC")
    a, b, c = (
        list(csv.DictReader((tmp_path / n).open(encoding="utf-8"))) for n in ("a.csv", "b.csv", "c.csv")
    )
    assert a == b and [(r["shopid"], r["userid"]) for r in a] == [("7", "1")]
    shanghai = datetime.fromisoformat(a[0]["first_window_start"])
    assert shanghai - datetime.fromisoformat(c[0]["first_window_start"]) == timedelta(hours=8)
    res = runner.invoke(app, ["detect", "order-brushing", "-i", str(renamed), "-o", str(tmp_path / "d.csv")])
    assert res.exit_code == 2 and "orderid" in res.output  # without the mapping: the column is missing


def test_dense_blocks_times_in_the_zone_asked_for(tmp_path: Path):
    rows = [
        [f"a{u}", f"i{i}", int((T0 + timedelta(hours=u + i)).timestamp())] for u in range(3) for i in range(3)
    ]
    rows += [[f"b{k}", f"x{k % 5}", int(T0.timestamp())] for k in range(30)]
    edges = _write(tmp_path / "e.csv", ["who", "what", "epoch"], rows)
    out = tmp_path / "blocks.json"
    args = ["dense-blocks", "-i", str(edges), "--col", "src=who", "--col", "dst=what", "--time", "epoch"]
    _run(*args, "-o", str(out))
    (block,) = [b for b in json.loads(out.read_text()) if b["src"] == ["a0", "a1", "a2"]]
    assert (block["first_seen"], block["last_seen"]) == ("2024-03-01 10:00:00", "2024-03-01 14:00:00")
    _run(*args, "-o", str(out), "--timezone", "UTC")
    (block,) = [b for b in json.loads(out.read_text()) if b["src"] == ["a0", "a1", "a2"]]
    assert (block["first_seen"], block["last_seen"]) == ("2024-03-01 02:00:00", "2024-03-01 06:00:00")


def _lockstep_rows() -> list[list[object]]:
    # 6 users on the same 4 items within minutes of each other, and 60 users acting at random hours
    rows: list[list[object]] = []
    for item in range(4):
        for user in range(6):
            rows.append([f"u{user}", f"p{item}", T0 + timedelta(days=item, minutes=user)])
    for k in range(60):
        rows.append([f"bg{k}", f"p{k % 9}", T0 + timedelta(hours=7 * k + 3)])
    return rows


def test_lockstep_takes_renamed_columns_and_epoch_times(tmp_path: Path):
    rows = _lockstep_rows()
    plain = _write(
        tmp_path / "p.csv", ["userid", "itemid", "event_time"], [[u, i, _naive(t)] for u, i, t in rows]
    )
    epoch = _write(
        tmp_path / "e.csv", ["uid", "product", "ts"], [[u, i, int(t.timestamp())] for u, i, t in rows]
    )
    _run("lockstep", "-i", str(plain), "-o", str(tmp_path / "a.json"), "--min-items", "3")
    cols = ["--col", "user=uid", "--col", "item=product", "--time", "ts"]
    _run("lockstep", "-i", str(epoch), "-o", str(tmp_path / "b.json"), "--min-items", "3", *cols)
    _run(
        "lockstep",
        "-i",
        str(epoch),
        "-o",
        str(tmp_path / "c.json"),
        "--min-items",
        "3",
        *cols,
        "--timezone",
        "UTC",
    )
    a, b, c = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json", "c.json"))
    assert [f["subject_ids"] for f in a["findings"]] == [f["subject_ids"] for f in b["findings"]]
    assert sorted(a["findings"][0]["subject_ids"]) == [f"u{k}" for k in range(6)]
    assert b["parameters"]["timezone"] == "Asia/Shanghai" and c["parameters"]["timezone"] == "UTC"
    shanghai = datetime.fromisoformat(b["findings"][0]["evidence"]["first_seen"])
    utc = datetime.fromisoformat(c["findings"][0]["evidence"]["first_seen"])
    assert shanghai - utc == timedelta(hours=8)
    res = runner.invoke(
        app,
        [
            "detect",
            "lockstep",
            "-i",
            str(epoch),
            "-o",
            str(tmp_path / "d.json"),
            "--user",
            "uid",
            "--col",
            "user=product",
        ],
    )
    assert res.exit_code == 2 and "name different columns" in res.output


def test_registrations_and_parcels_take_col_and_timezone(tmp_path: Path):
    regs = [
        [f"acct{k}", int((T0 + timedelta(minutes=k)).timestamp()), "dev-1", "", "", f"n{k}"] for k in range(6)
    ]
    reg = _write(tmp_path / "r.csv", ["uid", "ts", "device", "addr", "mobile", "name"], regs)
    cols = [
        "--col",
        "account=uid",
        "--col",
        "registered_at=ts",
        "--col",
        "device_id=device",
        "--col",
        "ip=addr",
    ]
    cols += ["--col", "phone=mobile", "--col", "nickname=name"]
    _run("registrations", "-i", str(reg), "-o", str(tmp_path / "r.json"), *cols, "--timezone", "UTC")
    doc = json.loads((tmp_path / "r.json").read_text())
    (finding,) = doc["findings"]
    assert sorted(finding["subject_ids"]) == [f"acct{k}" for k in range(6)]
    assert finding["evidence"]["first_registered"].startswith("2024-03-01 02:00")
    assert doc["parameters"]["timezone"] == "UTC"

    waybills = [
        [f"WB{k}", "C1", "S1", 0.1, (T0 + timedelta(hours=k)).isoformat(), "", "杭州", "杭州", 5, 2]
        for k in range(5)
    ]
    head = ["wb", "courier", "sender", "kg", "picked", "signed", "from", "to", "km", "scans"]
    wb = _write(tmp_path / "w.csv", head, waybills)
    cols = [
        "--col",
        "waybill=wb",
        "--col",
        "weight_kg=kg",
        "--col",
        "pickup_time=picked",
        "--col",
        "sign_time=signed",
    ]
    cols += ["--col", "origin_city=from", "--col", "dest_city=to", "--col", "distance_km=km"]
    cols += ["--col", "transit_scans=scans"]
    _run("parcels", "-i", str(wb), "-o", str(tmp_path / "w.json"), *cols, "--timezone", "Asia/Shanghai")
    doc = json.loads((tmp_path / "w.json").read_text())
    assert doc["rows"] == 5 and doc["parameters"]["timezone"] == "Asia/Shanghai"
    res = runner.invoke(
        app, ["detect", "parcels", "-i", str(wb), "-o", str(tmp_path / "x.json"), "--col", "parcel=wb"]
    )
    assert res.exit_code == 2 and "reads no column 'parcel'" in res.output
