"""Order brushing (刷单炒信): the exact sweep against a brute force, and the CLI's answers."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fanchaoxin.detect import brushing
from fanchaoxin.detect.cli_orders import app

T0 = dt.datetime(2020, 1, 1)


def brute(orders, window, rate):
    """Every integer s from before the first order to after the last: {shop: (answer, union ids)}."""
    out = {}
    for shop in {o[1] for o in orders}:
        mine = [o for o in orders if o[1] == shop]
        ts = [o[3] for o in mine]
        union = set()
        for s in range(min(ts) - window - 2, max(ts) + 3):
            inside = [o for o in mine if s <= o[3] <= s + window]
            if inside and len(inside) >= rate * len({o[2] for o in inside}):
                union |= {o[0] for o in inside}
        if not union:
            out[shop] = (0, set())
            continue
        counts: dict = {}
        for o in mine:
            if o[0] in union:
                counts[o[2]] = counts.get(o[2], 0) + 1
        top = max(counts.values())
        out[shop] = (sorted(u for u, c in counts.items() if c == top), union)
    return out


def fast(orders, window, rate):
    """The vectorised sweep on the same orders (ids are ints here), same shape as `brute`."""
    oid = np.array([o[0] for o in orders])
    shop = np.array([o[1] for o in orders])
    user = np.array([o[2] for o in orders])
    t = np.array([o[3] for o in orders])
    order = np.lexsort((t, user, shop))
    oid, shop, user, t = oid[order], shop[order], user[order], t[order]
    shops, shop_code = np.unique(shop, return_inverse=True)
    res = brushing.sweep(shop_code, t, brushing._starts(shop, user), window=window, rate=rate)
    out = {}
    for code, s in enumerate(shops.tolist()):
        if not res.brushing[code]:
            out[s] = (0, set())
            continue
        rows = res.sus_rows[shop_code[res.sus_rows] == code]
        out[s] = (user[rows].tolist(), set(oid[res.in_union & (shop_code == code)].tolist()))
    # every window reported really brushes and is a distinct set of orders
    for code, start, n, b in zip(res.win_shop, res.win_start, res.win_orders, res.win_buyers, strict=True):
        inside = (shop_code == code) & (t >= start) & (t <= start + window)
        assert n == inside.sum() and b == len(set(user[inside].tolist())) and n >= rate * b
    return out


@st.composite
def order_sets(draw):
    window = draw(st.sampled_from([0, 1, 2, 3, 5, 10]))
    n = draw(st.integers(1, 30))
    # few distinct seconds, spaced around the window length, so same-second collisions and orders
    # exactly W and W + 1 apart are common
    base = draw(st.lists(st.integers(0, 4), min_size=1, max_size=6))
    times = sorted({b * (window + draw(st.sampled_from([0, 1, 2]))) + draw(st.integers(0, 2)) for b in base})
    orders = [
        (i, draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.sampled_from(times))) for i in range(n)
    ]
    rate = draw(st.sampled_from([1, 2, 3, 1.5]))
    return orders, window, rate


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_sets())
def test_sweep_equals_brute_force(case):
    orders, window, rate = case
    assert fast(orders, window, rate) == brute(orders, window, rate)


def test_sweep_equals_brute_force_at_3600_s_edges():
    rng = random.Random(7)
    for _ in range(60):
        anchors = [rng.randrange(0, 4) * 3600 for _ in range(3)]
        orders = [
            (i, rng.randint(1, 2), rng.randint(1, 3), rng.choice(anchors) + rng.choice([-1, 0, 0, 1, 2]))
            for i in range(rng.randint(3, 14))
        ]
        assert fast(orders, 3600, 3) == brute(orders, 3600, 3)


def test_window_starting_just_after_an_order_counts():
    # W = 10: A at 0, B three times at 5, C at 12. Only s = 1 (an order's time + 1) sees {B, B, B};
    # windows starting or ending at an order time all mix in A or C (rate 2).
    orders = [(1, 1, "A", 0), (2, 1, "B", 5), (3, 1, "B", 5), (4, 1, "B", 5), (5, 1, "C", 12)]
    numeric = [(i, s, ord(u), t) for i, s, u, t in orders]
    assert fast(numeric, 10, 3) == {1: ([ord("B")], {2, 3, 4})}
    assert brute(numeric, 10, 3) == fast(numeric, 10, 3)


def test_window_reaching_the_rate_after_an_early_order_left():
    # [0, 3600] holds X + Y×3 (4 orders / 2 buyers); once X has left (s = 1) it is Y×3 alone
    orders = [(1, 1, 1, 0), (2, 1, 2, 3600), (3, 1, 2, 3600), (4, 1, 2, 3600)]
    assert fast(orders, 3600, 3) == brute(orders, 3600, 3) == {1: ([2], {2, 3, 4})}


def test_both_ends_of_the_window_are_included():
    orders = [(1, 1, 1, 0), (2, 1, 1, 1800), (3, 1, 1, 3600)]
    assert fast(orders, 3600, 3)[1][0] == [1]
    orders[2] = (3, 1, 1, 3601)
    assert fast(orders, 3600, 3)[1][0] == 0


# ------------------------------------------------------------------------------------------ end to end


def write_orders(path: Path, rows) -> Path:
    lines = ["orderid,shopid,userid,event_time"]
    for oid, shop, user, t in rows:
        lines.append(f"{oid},{shop},{user},{(T0 + dt.timedelta(seconds=t)):%Y-%m-%d %H:%M:%S}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


HAND = [
    # shop 10: one buyer, 3 orders within the hour → brushing, buyer 100
    (1, 10, 100, 0), (2, 10, 100, 600), (3, 10, 100, 3599), (4, 10, 101, 18000),
    # shop 20: two buyers 3 orders each in [0, 3600] → 6 / 2 = 3, a tie: "200&201"
    (5, 20, 201, 0), (6, 20, 200, 0), (7, 20, 200, 1800), (8, 20, 201, 1800),
    (9, 20, 200, 3600), (10, 20, 201, 3600),
    # shop 3: never 3 orders per buyer within an hour → 0
    (11, 3, 5, 0), (12, 3, 5, 3600), (13, 3, 6, 3601), (14, 3, 6, 3602), (15, 3, 5, 3603),
    # shop 9 sorts before 10 numerically; one order only
    (16, 9, 1, 0),
]  # fmt: skip


def test_shopee_format_exact(tmp_path):
    src = write_orders(tmp_path / "orders.csv", HAND)
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        app, ["order-brushing", "--input", str(src), "--format", "shopee", "--output", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert out.read_text() == "shopid,userid\n3,0\n9,0\n10,100\n20,200&201\n"


def test_detail_format_and_findings(tmp_path):
    src = write_orders(tmp_path / "orders.csv", HAND)
    out, rj, rh = tmp_path / "out.csv", tmp_path / "r.json", tmp_path / "r.html"
    args = [
        "order-brushing",
        "-i",
        str(src),
        "-o",
        str(out),
        "--report-json",
        str(rj),
        "--report-html",
        str(rh),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "shopid,userid,user_orders,brushing_orders,windows,score,first_window_start,last_window_end"
    )
    assert [ln.split(",")[:5] for ln in lines[1:]] == [
        ["10", "100", "3", "3", "1"],
        ["20", "200", "3", "6", "1"],
        ["20", "201", "3", "6", "1"],
    ]
    doc = json.loads(rj.read_text())
    assert doc["meta"]["shops"] == 4 and doc["meta"]["brushing_shops"] == 2
    f10, f20 = doc["findings"]
    assert f10["behaviour"] == "order_brushing" and f10["subject_kind"] == "platform_account"
    assert f10["subject_ids"] == ["10", "100"] and f10["score"] == 3.0
    ev = f20["evidence"]
    assert ev["suspicious_users"] == [{"userid": "200", "orders": 3}, {"userid": "201", "orders": 3}]
    assert sorted(ev["order_ids"], key=int) == ["5", "6", "7", "8", "9", "10"]
    assert ev["windows"] == [
        {"start": "2020-01-01 00:00:00", "end": "2020-01-01 01:00:00", "orders": 6, "buyers": 2}
    ]
    assert "刷单炒信" in rh.read_text(encoding="utf-8")


def test_duplicate_order_ids_fail_with_rows(tmp_path):
    src = write_orders(tmp_path / "orders.csv", [(1, 1, 1, 0), (2, 1, 1, 1), (1, 1, 2, 2)])
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(app, ["order-brushing", "-i", str(src), "-o", str(out), "--format", "shopee"])
    assert res.exit_code == 2
    assert "orderid" in res.output and "data rows 1, 3" in res.output
    assert not out.exists()


def test_text_ids_sort_as_text_and_chunks_do_not_split_shops(tmp_path):
    rng = random.Random(3)
    rows = []
    for i in range(3000):
        shop = f"s{rng.randint(1, 40)}"
        user = f"u{rng.randint(1, 30)}"
        rows.append((i, shop, user, rng.randint(0, 6) * 1800 + rng.randint(0, 3)))
    src = write_orders(tmp_path / "orders.csv", rows)
    want = brute([(o, s, u, t) for o, s, u, t in rows], 3600, 3)
    for chunk_rows in (50, 10_000):  # many chunks, then one
        rel = brushing.read_orders(str(src))
        got = {}
        shop_order = []
        for chunk in brushing.detect_order_brushing(rel, chunk_rows=chunk_rows):
            shop_order += chunk.shop_ids.to_pylist()
            for s in chunk.shops:
                got[s.shopid] = ([u for u, _ in s.users], {int(o) for o in s.order_ids})
        assert shop_order == sorted(want)  # every shop once, text order ("s10" < "s2")
        assert got == {k: v for k, v in want.items() if v[0] != 0}


def test_one_shop_larger_than_a_chunk(tmp_path):
    rows = [(i, 1, i % 3, i * 600) for i in range(40)] + [(100 + i, 2, 7, i) for i in range(3)]
    src = write_orders(tmp_path / "orders.csv", rows)
    rel = brushing.read_orders(str(src))
    chunks = list(brushing.detect_order_brushing(rel, chunk_rows=8))
    assert [s for c in chunks for s in c.shop_ids.to_pylist()] == [1, 2]  # shop 1 never split
    assert [s.shopid for c in chunks for s in c.shops] == [2]


def test_rate_and_window_are_parameters(tmp_path):
    src = write_orders(tmp_path / "orders.csv", [(1, 1, 1, 0), (2, 1, 1, 100), (3, 1, 2, 100)])
    out = tmp_path / "o.csv"
    runner = CliRunner()
    args = ["order-brushing", "-i", str(src), "-o", str(out), "--format", "shopee"]
    assert runner.invoke(app, [*args, "--rate", "1.5"]).exit_code == 0
    assert out.read_text() == "shopid,userid\n1,1\n"
    assert runner.invoke(app, [*args, "--rate", "1.5", "--window", "99"]).exit_code == 0
    assert out.read_text() == "shopid,userid\n1,0\n"  # 100 s apart: never together, 1 order / 1 buyer < 1.5
    assert runner.invoke(app, [*args, "--rate", "0"]).exit_code == 2


@pytest.mark.parametrize("window", [0, 3600])
def test_same_second_orders(tmp_path, window):
    rows = [(1, 5, 1, 0), (2, 5, 1, 0), (3, 5, 1, 0), (4, 5, 2, 0)]
    assert fast(rows, window, 2) == brute(rows, window, 2) == {5: ([1], {1, 2, 3, 4})}
