"""删除不利评价 on Spark (#21): the same SQL as DuckDB's (detect/sql.py), byte-identical answers, clear errors.

Spark runs in ``local[2]``, one session for the test process (tests/detect/conftest.py). Where Java or
pyspark is missing these tests FAIL saying what to install — `make test` never skips them silently.
Each Spark run of the job costs seconds: the cases of tests/detect/test_deletion.py are combined into
a few runs, each compared byte for byte with DuckDB's.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.simulate.review_events import generate
from tests.detect.conftest import MASTER
from tests.detect.test_deletion import _rewrite

runner = CliRunner()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-deletion") / "sim"
    generate(out, seed=4, scale=0.15)  # 18,000 reviews, 225 merchants: every rule fires
    return out


@pytest.fixture(scope="module")
def truth(sim: Path) -> dict[str, Any]:
    return json.loads((sim / "truth.json").read_text(encoding="utf-8"))


def _invoke(args: list[str]) -> Any:
    return runner.invoke(app, ["detect", "review-deletion", *args])


def _files(reviews: Path | str, events: Path | str, merchants: Path | str | None = None) -> list[str]:
    args = ["--reviews", str(reviews), "--after-sales", str(events)]
    return [*args, "--merchants", str(merchants)] if merchants is not None else args


def _normalised(name: str, text: str) -> str:
    """An output without what differs between two runs of one engine: the elapsed time and the date."""
    if name.endswith(".html"):
        text = re.sub(r"Generated [^<·]*·", "Generated ·", text)
        return re.sub(r"seconds</th><td>[0-9.]+</td>", "seconds</th><td></td>", text)
    if name.endswith(".json"):
        doc = json.loads(text)
        doc.pop("seconds", None)
        doc.pop("generated_at", None)
        if isinstance(doc.get("meta"), dict):
            doc["meta"].pop("seconds", None)
        return json.dumps(doc, ensure_ascii=False, indent=1)
    return text


def both(tmp_path: Path, inputs: list[str], *extra: str, suffix: str = ".json", reports: bool = True) -> dict:
    """Run the command on both engines; assert every output identical; return DuckDB's findings file."""
    outputs: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}{suffix}"
        args = [*inputs, "-o", str(out), "--engine", engine, "--spark-master", MASTER, *extra]
        if reports:
            args += ["--report-json", str(tmp_path / f"{engine}.r.json")]
            args += ["--report-html", str(tmp_path / f"{engine}.r.html")]
        res = _invoke(args)
        assert res.exit_code == 0, (engine, res.output)
        got = {suffix: out.read_text(encoding="utf-8")}
        if reports:
            got[".r.json"] = (tmp_path / f"{engine}.r.json").read_text(encoding="utf-8")
            got[".r.html"] = (tmp_path / f"{engine}.r.html").read_text(encoding="utf-8")
        outputs[engine] = {k: _normalised(k, v) for k, v in got.items()}
    if engine == "spark":
        assert "Spark shuffle:" in res.output
    for key, want in outputs["duckdb"].items():
        assert outputs["spark"][key] == want, key
    return json.loads(outputs["duckdb"][suffix]) if suffix == ".json" else {"csv": outputs["duckdb"][suffix]}


def _levels(doc: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"merchant": set(), "service": set()}
    for f in doc["findings"]:
        out[f["evidence"]["level"]].add(f["subject_ids"][0])
    return out


# ------------------------------------------------------------------------------------ the same answers


def test_simulated_logs_identical(spark, sim: Path, truth: dict[str, Any], tmp_path: Path) -> None:
    doc = both(tmp_path, _files(sim / "reviews.csv", sim / "after_sales.csv", sim / "merchants.csv"))
    found = _levels(doc)
    planted = {str(m) for kind in truth["merchants"].values() for m in kind}
    assert found["service"] == {str(s["account"]) for s in truth["services"]}
    assert found["merchant"] and len(found["merchant"] & planted) >= 0.9 * len(found["merchant"])
    rules = {r for f in doc["findings"] for r in f["evidence"].get("rules", [])}
    assert rules == {"contact_then_delete", "abnormal_rate", "service_client"}  # every rule compared
    assert doc["stats"]["merchants_tested_contact"] > 0 and doc["stats"]["merchants_tested_rate"] > 0


def test_moderation_offsets_and_no_operator_identical(
    spark, sim: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    """test_deletion's traps in one run: deletions by the platform instead of the reviewers (flag
    nobody), times in UTC with an offset, and no operator column (services found by payments only)."""
    off_log = {str(m) for m in truth["merchants"]["off_log"]}
    accounts = {str(s["account"]) for s in truth["services"]}

    def utc(value: str) -> str:
        return value and str(np.datetime64(value.replace(" ", "T")) - np.timedelta64(8, "h")) + "+00:00"

    def reviews(r: dict[str, str]) -> dict[str, str]:
        if r["merchant"] in off_log and r["deleted_by"] == "author":
            r["deleted_by"], r["delete_reason"] = "platform", "abusive"
        return r | {"created_at": utc(r["created_at"]), "deleted_at": utc(r["deleted_at"])}

    def events(r: dict[str, str]) -> dict[str, str]:
        r.pop("operator")
        return r | {"event_time": utc(r["event_time"])}

    rv = _rewrite(sim / "reviews.csv", tmp_path / "reviews.csv", reviews)
    ev = _rewrite(sim / "after_sales.csv", tmp_path / "after_sales.csv", events)
    # a tie: a second payment from the same merchant to a service at the same second, a larger amount
    # (the deletion that follows is shown with the largest payment on both engines)
    with ev.open(encoding="utf-8", newline="") as fh:
        paid = [r for r in csv.DictReader(fh) if r["kind"] == "payment" and r["user"] in accounts]
    twin = paid[0] | {"event_id": paid[0]["event_id"] + "-2", "amount": str(float(paid[0]["amount"]) + 50)}
    with ev.open("a", encoding="utf-8", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(twin), lineterminator="\n").writerow(twin)
    got = both(tmp_path, _files(rv, ev, sim / "merchants.csv"), suffix=".csv")
    rows = list(csv.DictReader(io.StringIO(got["csv"])))
    assert rows and not off_log & {r["subject_ids"] for r in rows if r["level"] == "merchant"}
    services = {r["subject_ids"]: json.loads(r["evidence"]) for r in rows if r["level"] == "service"}
    assert set(services) == accounts
    assert all(set(e["channels"]) == {"payments"} for e in services.values())
    shown = services[twin["user"]]["deleted_reviews"]
    assert any(x["merchant"] == twin["merchant"] and x.get("amount") == float(twin["amount"]) for x in shown)


def test_late_contacts_mapped_columns_one_category_identical(
    spark, sim: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    """The services' contacts and payments after the month link nothing; columns under other names
    (--col per file); no merchants file (one category)."""
    services = {str(s["account"]) for s in truth["services"]}

    def reviews(r: dict[str, str]) -> dict[str, str]:
        return {{"author": "uid", "created_at": "ctime"}.get(k, k): v for k, v in r.items()}

    def events(r: dict[str, str]) -> dict[str, str]:
        if r["operator"] in services or r["user"] in services:
            r["event_time"] = "2024-04-20 12:00:00"
        return {{"user": "uid", "operator": "agent"}.get(k, k): v for k, v in r.items()}

    rv = _rewrite(sim / "reviews.csv", tmp_path / "reviews.csv", reviews)
    ev = _rewrite(sim / "after_sales.csv", tmp_path / "after_sales.csv", events)
    cols = ["--col", "reviews.author=uid", "--col", "reviews.created_at=ctime"]
    cols += ["--col", "after_sales.user=uid", "--col", "after_sales.operator=agent"]
    doc = both(tmp_path, _files(rv, ev), *cols, reports=False)
    assert doc["findings"] and not _levels(doc)["service"]
    assert all("service_client" not in f["evidence"]["rules"] for f in doc["findings"])
    assert list(doc["stats"]["category_deletion_rates"]["categories"]) == ["(all)"]


def test_tables_by_name_and_an_empty_after_sales_log(spark, sim: Path, tmp_path: Path) -> None:
    """Inputs as catalogue tables (table:NAME; Hive or Iceberg tables alike), an after-sales log with
    no rows: the same findings as DuckDB's from the files."""
    events = tmp_path / "after_sales.csv"
    events.write_text((sim / "after_sales.csv").read_text(encoding="utf-8").splitlines()[0] + "\n")
    out = {e: tmp_path / f"{e}.json" for e in ("duckdb", "spark")}
    res = _invoke([*_files(sim / "reviews.csv", events, sim / "merchants.csv"), "-o", str(out["duckdb"])])
    assert res.exit_code == 0, res.output
    for name, path in (("del_reviews", sim / "reviews.csv"), ("del_events", events)):
        spark.read.options(header="true").csv(str(path)).createOrReplaceTempView(name)
    spark.read.options(header="true").csv(str(sim / "merchants.csv")).createOrReplaceTempView("del_merchants")
    args = [*_files("table:del_reviews", "table:del_events", "table:del_merchants"), "-o", str(out["spark"])]
    res = _invoke([*args, "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 0, res.output
    docs = {e: json.loads(p.read_text(encoding="utf-8")) for e, p in out.items()}
    assert docs["spark"]["findings"] == docs["duckdb"]["findings"] and docs["duckdb"]["findings"]
    assert docs["spark"]["stats"] == docs["duckdb"]["stats"]
    assert docs["spark"]["stats"]["merchants_tested_contact"] == 0
    assert docs["spark"]["inputs"]["reviews"] == "table:del_reviews"


# ------------------------------------------------------------------------------------------ bad input


def _error(args: list[str], out: Path) -> str:
    res = _invoke([*args, "-o", str(out), "--engine", "spark", "--spark-master", MASTER])
    assert res.exit_code == 2, res.output
    assert not out.exists() and not list(out.parent.glob("*.part"))
    return " ".join(res.output.split())


def test_missing_path_table_and_columns(spark, sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    reviews, events = sim / "reviews.csv", sim / "after_sales.csv"
    msg = _error(_files(tmp_path / "nothere.csv", events), out)
    assert f"{tmp_path / 'nothere.csv'}: no such file" in msg
    assert "table:no_such_table: no such table" in _error(_files(reviews, "table:no_such_table"), out)
    no_author = _rewrite(reviews, tmp_path / "r.csv", lambda r: {k: v for k, v in r.items() if k != "author"})
    msg = _error(_files(no_author, events), out)
    assert str(no_author) in msg and "missing required column(s) author" in msg
    msg = _error([*_files(reviews, events), "--col", "after_sales.user=buyer"], out)
    assert str(events) in msg and "the file's column buyer" in msg
    merchants = tmp_path / "merchants.csv"
    text = (sim / "merchants.csv").read_text(encoding="utf-8")
    first = text.splitlines()[1].split(",")[0]
    merchants.write_text(text + f"{first},another_category\n", encoding="utf-8")
    msg = _error(_files(reviews, events, merchants), out)
    assert f"merchant '{first}' is given more than one category" in msg and str(merchants) in msg
