"""`fcx detect lockstep` (CopyCatch): planted groups found, honest synchrony ignored, bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect.lockstep import copycatch, prune
from fanchaoxin.simulate.marketplace import generate

runner = CliRunner()
T0 = 1_700_000_000


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lock")
    generate(d, seed=5, scale=0.05)
    return d


def _toy(shift_per_item: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """6 users × 4 items in lockstep (± 5 min) plus 200 background users acting at random times."""
    rng = np.random.default_rng(seed)
    u, i, t = [], [], []
    for item in range(4):
        centre = T0 + item * 86_400
        for user in range(6):
            u.append(user)
            i.append(item)
            # with shift_per_item every user acts on each item on a different day: same items,
            # no synchrony — ordinary fans of the same products
            t.append(centre + (user * 7 * 86_400 if shift_per_item else int(rng.integers(-300, 300))))
    for _ in range(2000):
        u.append(int(rng.integers(100, 300)))
        i.append(int(rng.integers(0, 50)))
        t.append(T0 + int(rng.integers(0, 30 * 86_400)))
    return np.array(u), np.array(i), np.array(t)


def test_toy_group_found_exactly() -> None:
    groups = copycatch(*_toy(), window=1800, min_users=5, min_items=3, rho=1.0)
    assert len(groups) == 1
    g = groups[0]
    assert g.users.tolist() == list(range(6))
    assert sorted(g.items.tolist()) == [0, 1, 2, 3]
    assert g.edges == 24
    # every member hits every item within ±Δt of its centre: the constraint the evidence states
    assert all(abs(int(c) - (T0 + int(p) * 86_400)) <= 1800 for p, c in zip(g.items, g.centres, strict=True))


def test_same_items_at_different_times_is_not_lockstep() -> None:
    assert copycatch(*_toy(shift_per_item=True), window=1800, min_users=5, min_items=3) == []


def test_constraints_are_respected() -> None:
    assert copycatch(*_toy(), window=1800, min_users=7, min_items=3) == []  # only 6 users move together
    assert copycatch(*_toy(), window=1800, min_users=5, min_items=5) == []  # only 4 items


def test_prune_keeps_only_possible_members() -> None:
    u = np.array([0, 0, 1, 1, 2])
    i = np.array([0, 1, 0, 1, 2])
    assert prune(u, i, min_users=2, min_items=2).tolist() == [True, True, True, True, False]


def test_cli_finds_planted_groups(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "groups.json"
    res = runner.invoke(
        app,
        [
            "detect",
            "lockstep",
            "--input",
            str(sim / "actions.csv"),
            "--user",
            "userid",
            "--item",
            "itemid",
            "--time",
            "event_time",
            "--window",
            "3600",
            "--min-users",
            "5",
            "--min-items",
            "4",
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))["lockstep"]["groups"]
    planted = {str(u) for g in truth for u in g["users"]}
    found = {u for f in doc["findings"] for u in f["subject_ids"]}
    assert len(found & planted) / len(planted) >= 0.9  # recall
    assert len(found & planted) / len(found) >= 0.95  # precision
    assert len(doc["findings"]) == len(truth)
    f = doc["findings"][0]
    assert f["behaviour"] == "fake_review" and f["subject_kind"] == "platform_account"
    ev = f["evidence"]
    assert set(ev["users"]) == set(f["subject_ids"]) and len(ev["items"]) >= 4
    assert set(ev["centre_times"]) == set(ev["items"])
    assert (tmp_path / "groups.report.html").is_file() and (tmp_path / "groups.report.json").is_file()


def test_cli_behaviour_option_and_report_paths(sim: Path, tmp_path: Path) -> None:
    html, js = tmp_path / "r" / "x.html", tmp_path / "r" / "x.json"
    res = runner.invoke(
        app,
        [
            "detect",
            "lockstep",
            "--input",
            str(sim / "actions.csv"),
            "--behaviour",
            "order_brushing",
            "--output",
            str(tmp_path / "g.json"),
            "--report-html",
            str(html),
            "--report-json",
            str(js),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(js.read_text(encoding="utf-8"))
    assert report["findings"] and {f["behaviour"] for f in report["findings"]} == {"order_brushing"}
    assert "<svg" in html.read_text(encoding="utf-8")
    res = runner.invoke(
        app,
        [
            "detect",
            "lockstep",
            "--input",
            str(sim / "actions.csv"),
            "--behaviour",
            "spam",
            "--output",
            str(tmp_path / "g.json"),
        ],
    )
    assert res.exit_code != 0


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _run(path: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    return runner.invoke(
        app, ["detect", "lockstep", "--input", str(path), "--output", str(tmp_path / "o.json")]
    )


def test_bad_time_names_the_row(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "a.csv", "userid,itemid,event_time\n1,2,2024-03-01 00:00:00\n1,3,2024-03-01 25:00:00\n"
    )
    res = _run(p, tmp_path)
    assert res.exit_code == 2
    assert "data row 2" in res.output and "event_time" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_missing_column_and_empty_file(tmp_path: Path) -> None:
    res = _run(_write(tmp_path / "a.csv", "userid,event_time\n1,2024-03-01 00:00:00\n"), tmp_path)
    assert res.exit_code == 2 and "itemid" in res.output
    res = _run(_write(tmp_path / "b.csv", ""), tmp_path)
    assert res.exit_code == 2 and "empty" in res.output
    res = _run(_write(tmp_path / "c.csv", "userid,itemid,event_time\n"), tmp_path)
    assert res.exit_code == 2 and "no data rows" in res.output


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_gbk_and_bom_are_read(tmp_path: Path, encoding: str) -> None:
    lines = ["用户,商品,时间"]
    for item in range(4):
        for user in range(6):
            lines.append(f"买家{user},商品{item},2024-03-0{item + 1} 12:0{user}:00")
    p = _write(tmp_path / "a.csv", "\n".join(lines) + "\n", encoding)
    res = runner.invoke(
        app,
        [
            "detect",
            "lockstep",
            "--input",
            str(p),
            "--user",
            "用户",
            "--item",
            "商品",
            "--time",
            "时间",
            "--min-items",
            "3",
            "--output",
            str(tmp_path / "o.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert doc["findings"][0]["subject_ids"] == [f"买家{u}" for u in range(6)]


def test_other_encodings_are_refused(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.csv", "userid,itemid,event_time\n张三,1,2024-03-01 00:00:00\n", "utf-16")
    res = _run(p, tmp_path)
    assert res.exit_code == 2 and "UTF-16" in res.output
