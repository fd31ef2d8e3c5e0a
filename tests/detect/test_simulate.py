"""`fcx simulate marketplace`: files, determinism, and that the ground truth is what the data shows."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app

runner = CliRunner()

HEADERS = {
    "orders.csv": ["orderid", "shopid", "userid", "event_time", "amount", "itemid"],
    "edges.csv": ["userid", "productid", "event_time", "rating"],
    "actions.csv": ["userid", "itemid", "event_time", "action"],
    "registrations.csv": ["account", "registered_at", "device_id", "ip", "phone", "nickname"],
    "waybills.csv": [
        "waybill",
        "courier",
        "sender",
        "weight_kg",
        "pickup_time",
        "sign_time",
        "origin_city",
        "dest_city",
        "distance_km",
        "transit_scans",
    ],
    "reviews.csv": ["review_id", "author", "product", "text", "rating", "review_time"],
}
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "m"
    res = runner.invoke(app, ["simulate", "marketplace", "--out", str(out), "--seed", "5", "--scale", "0.05"])
    assert res.exit_code == 0, res.output
    assert "orders.csv" in res.output
    return out


def test_files_and_headers(sim: Path) -> None:
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    for name, header in HEADERS.items():
        with (sim / name).open(encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == header
        assert truth["files"][name] == len(_rows(sim / name))
    for kind in ("orders", "edges", "actions", "registrations", "waybills", "reviews"):
        assert (sim / f"truth_{kind}.csv").is_file()
    for key in (
        "order_brushing",
        "dense_blocks",
        "lockstep",
        "registrations",
        "empty_parcels",
        "fake_reviews",
    ):
        assert truth[key], key
    assert truth["seed"] == 5 and truth["scale"] == 0.05


def test_deterministic_for_a_seed(sim: Path, tmp_path: Path) -> None:
    def digest(d: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}

    again = tmp_path / "again"
    other = tmp_path / "other"
    assert (
        runner.invoke(
            app, ["simulate", "marketplace", "--out", str(again), "--seed", "5", "--scale", "0.05"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["simulate", "marketplace", "--out", str(other), "--seed", "6", "--scale", "0.05"]
        ).exit_code
        == 0
    )
    assert digest(again) == digest(sim)
    assert digest(other)["orders.csv"] != digest(sim)["orders.csv"]


def test_orders_brushing_truth_is_exactly_the_shopee_rule(sim: Path) -> None:
    """Brute force over every 1-hour window: the shops with concentration ≥ 3 are the planted ones,
    so popular shops and flash sales (many buyers) and split carts (rate 2) never qualify."""
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))["order_brushing"]
    by_shop: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for r in _rows(sim / "orders.csv"):
        assert TIME_RE.match(r["event_time"])
        by_shop[r["shopid"]].append((datetime.fromisoformat(r["event_time"]), r["userid"]))
    flagged = set()
    for shop, orders in by_shop.items():
        orders.sort()
        j = 0
        for i, (t, _) in enumerate(orders):
            while j < len(orders) and (orders[j][0] - t).total_seconds() <= 3600:
                j += 1
            window = orders[i:j]
            if len(window) / len({u for _, u in window}) >= 3:
                flagged.add(shop)
                break
    assert flagged == {str(s) for s in truth["shops"]}
    for e in truth["events"]:
        assert e["concentration"] >= 3
        span = datetime.fromisoformat(e["window_end"]) - datetime.fromisoformat(e["window_start"])
        assert span.total_seconds() <= 3600
    # a flash sale is there and is not brushing
    assert truth["hard_negatives"]["flash_sales"]
    assert not {str(f["shopid"]) for f in truth["hard_negatives"]["flash_sales"]} & flagged


def test_registrations_truth(sim: Path) -> None:
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))["registrations"]
    rows = {r["account"]: r for r in _rows(sim / "registrations.csv")}
    for c in truth["clusters"]:
        accts = [rows[str(a)] for a in c["accounts"]]
        assert len(c["link_types"]) >= 2 or c["link_types"] in (["device"], ["ip"])
        if "phone" in c["link_types"]:
            nums = sorted(int(r["phone"]) for r in accts)
            assert all(1 <= b - a <= 3 for a, b in itertools.pairwise(nums))
        if "device" in c["link_types"]:
            assert len({r["device_id"] for r in accts}) <= 4
        if "nickname" in c["link_types"]:
            assert all(re.search(r"\d{4}$", r["nickname"]) for r in accts)
    # every account used in the other files has a registration row
    users = {r["userid"] for r in _rows(sim / "orders.csv")} | {
        r["author"] for r in _rows(sim / "reviews.csv")
    }
    assert users <= set(rows)


def test_waybills_reviews_actions_truth(sim: Path) -> None:
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    wb = {r["waybill"]: r for r in _rows(sim / "waybills.csv")}
    empties = truth["empty_parcels"]["waybills"]
    assert empties and all(float(wb[w]["weight_kg"]) <= 0.3 for w in empties)
    assert set(empties) <= set(wb)
    reviews = {r["review_id"]: r for r in _rows(sim / "reviews.csv")}
    fake = truth["fake_reviews"]["review_ids"]
    assert fake and all(reviews[r]["rating"] == "5" for r in fake)
    texts = [r["text"] for r in reviews.values()]
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in texts)
    assert any(re.fullmatch(r"[ -~]+", t) for t in texts)
    acts = {(r["userid"], r["itemid"]) for r in _rows(sim / "actions.csv")}
    for g in truth["lockstep"]["groups"]:
        assert len(g["users"]) >= 8 and len(g["items"]) >= 5
        hit = sum((str(u), str(i)) in acts for u in g["users"] for i in g["items"])
        assert hit >= 0.6 * len(g["users"]) * len(g["items"])
    blk = truth["dense_blocks"][0]
    edges = {(r["userid"], r["productid"]) for r in _rows(sim / "edges.csv")}
    inside = sum((str(u), str(p)) in edges for u in blk["users"] for p in blk["products"])
    assert inside / (len(blk["users"]) * len(blk["products"])) > 0.4


def test_bad_scale_is_refused(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "marketplace", "--out", str(tmp_path), "--scale", "0"])
    assert res.exit_code != 0
    assert "scale" in res.output
