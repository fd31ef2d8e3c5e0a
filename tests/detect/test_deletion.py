"""删除不利评价 (`fcx detect review-deletion`, detect/deletion.py) on the review-events simulator's ground truth.

Small scales keep these fast; bench/bench_deletion.py measures the quality at scale 1 and the run on
10,000,000 reviews.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.core.roles import Role
from fanchaoxin.detect import submit as S
from fanchaoxin.detect.deletion import (
    Params,
    benjamini_hochberg,
    beta_binomial_fit,
    detect_review_deletion,
)
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import InputError
from fanchaoxin.simulate.review_events import generate

runner = CliRunner()
NS = "testmall"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deletion") / "sim"
    res = runner.invoke(
        app, ["simulate", "review-events", "--out", str(out), "--seed", "3", "--scale", "0.2"]
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def truth(sim: Path) -> dict[str, Any]:
    return json.loads((sim / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def found(sim: Path) -> list[Finding]:
    return detect_review_deletion(sim / "reviews.csv", sim / "after_sales.csv", sim / "merchants.csv")


def _flagged(findings: list[Finding], level: str) -> set[str]:
    return {f.subject_ids[0] for f in findings if f.evidence["level"] == level}


def _rewrite(src: Path, dst: Path, change: Any) -> Path:
    """A copy of a CSV with `change(row: dict) -> dict | None` applied (None drops the row)."""
    with src.open(encoding="utf-8", newline="") as fh, dst.open("w", encoding="utf-8", newline="") as out:
        reader = csv.DictReader(fh)
        rows = [r for r in (change(dict(row)) for row in reader) if r is not None]
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return dst


# --- the simulator --------------------------------------------------------------------------------


def test_simulator_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=11, scale=0.05)
    b = generate(tmp_path / "b", seed=11, scale=0.05)
    c = generate(tmp_path / "c", seed=12, scale=0.05)
    for name in ("reviews.csv", "after_sales.csv", "merchants.csv", "truth.json", "truth_reviews.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "reviews.csv").read_bytes() != (tmp_path / "c" / "reviews.csv").read_bytes()
    assert a == b and a["seed"] == 11 and c["seed"] == 12
    assert not list(tmp_path.glob("*/*.part"))


def test_simulated_logs_have_what_the_truth_says(sim: Path, truth: dict[str, Any]) -> None:
    with (sim / "reviews.csv").open(encoding="utf-8") as fh:
        reviews = list(csv.DictReader(fh))
    assert len(reviews) == truth["files"]["reviews.csv"]
    by = {r["deleted_by"] for r in reviews}
    assert by == {"", "author", "platform"}
    for r in reviews:  # a deletion always says who and when, never before the review
        assert bool(r["deleted_at"]) == bool(r["deleted_by"])
        if r["deleted_at"]:
            assert r["deleted_at"] >= r["created_at"]
        assert (r["delete_reason"] != "") == (r["deleted_by"] == "platform")
    with (sim / "truth_reviews.csv").open(encoding="utf-8") as fh:
        planted = list(csv.DictReader(fh))
    by_id = {r["review_id"]: r for r in reviews}
    assert planted and all(by_id[p["review_id"]]["deleted_by"] == "author" for p in planted)
    assert all(int(by_id[p["review_id"]]["rating"]) <= 2 for p in planted)
    kinds = {k: v for k, v in truth["merchants"].items() if v}
    assert set(kinds) == {"induced", "off_log", "service_client"}
    for name in ("genuine_fix", "trolled", "big", "food_delivery", "cs_staff", "outsourced_cs", "agency"):
        assert truth["hard_negatives"][name], name
    # the service accounts act as operators and get paid
    with (sim / "after_sales.csv").open(encoding="utf-8") as fh:
        events = list(csv.DictReader(fh))
    service = str(truth["services"][0]["account"])
    assert any(e["operator"] == service for e in events)
    assert any(e["user"] == service and e["kind"] == "payment" for e in events)


# --- the statistics -------------------------------------------------------------------------------


def test_benjamini_hochberg_matches_the_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    q = benjamini_hochberg(p)
    # sorted p: .001 .01 .03 .04 .2 → p·m/rank: .005 .025 .05 .05 .2, then the running minimum from the top
    assert np.allclose(q, [0.025, 0.05, 0.05, 0.2, 0.005])
    assert benjamini_hochberg(np.array([])).size == 0


def test_beta_binomial_fit_recovers_mean_and_spread() -> None:
    rng = np.random.default_rng(1)
    n = rng.integers(20, 200, 4000)
    rates = rng.beta(0.1 * 30, 0.9 * 30, len(n))
    k = rng.binomial(n, rates)
    mu, kappa = beta_binomial_fit(k, n)
    assert abs(mu - 0.1) < 0.005
    assert 24 < kappa < 37
    same = np.full(500, 100)  # no spread beyond sampling: a binomial
    assert beta_binomial_fit(rng.binomial(same, 0.2), same)[1] > 200


# --- planted found, hard negatives not ------------------------------------------------------------


def test_planted_merchants_and_services_found(found: list[Finding], truth: dict[str, Any]) -> None:
    merchants = _flagged(found, "merchant")
    services = _flagged(found, "service")
    planted = {str(m) for kind in truth["merchants"].values() for m in kind}
    accounts = {str(s["account"]) for s in truth["services"]}
    assert len(merchants & planted) >= 0.9 * len(merchants)  # precision
    assert len(merchants & planted) >= 0.9 * len(planted)  # recall
    assert services == accounts
    for kind in ("induced", "off_log", "service_client"):
        want = {str(m) for m in truth["merchants"][kind]}
        assert len(want & merchants) >= 0.7 * len(want), kind  # a handful each at this scale
    for f in found:
        assert f.behaviour == "review_deletion" and f.subject_kind == "platform_account"
        assert f.detector == "review-deletion" and f.score > 0 and f.evidence["first_seen"]


@pytest.mark.parametrize(
    "kind", ["genuine_fix", "trolled", "big", "food_delivery", "cs_staff", "outsourced_cs", "agency"]
)
def test_hard_negatives_not_flagged(found: list[Finding], truth: dict[str, Any], kind: str) -> None:
    flagged = _flagged(found, "merchant") | _flagged(found, "service")
    hard = {str(x) for x in truth["hard_negatives"][kind]}
    assert not hard & flagged


def test_rules_and_evidence(found: list[Finding], truth: dict[str, Any]) -> None:
    by_id = {f.subject_ids[0]: f for f in found}
    induced = [by_id[str(m)] for m in truth["merchants"]["induced"] if str(m) in by_id]
    assert induced and all("contact_then_delete" in f.evidence["rules"] for f in induced)
    f = induced[0].evidence
    assert f["deleted_after_contact"] >= 5 and f["conversion"] > f["category_conversion"] * 1.5
    assert f["contact_q_value"] <= 0.01
    shown = [r for r in f["deleted_reviews"] if r.get("deleted_within_window")]
    assert shown and all(r["last_contact_at"] <= r["deleted_at"] for r in shown)
    off = [by_id[str(m)] for m in truth["merchants"]["off_log"] if str(m) in by_id]
    assert off and all("abnormal_rate" in f.evidence["rules"] for f in off)
    assert all(f.evidence["rate_without_contact"] > f.evidence["category_rate_without_contact"] for f in off)
    service = by_id[str(truth["services"][0]["account"])].evidence
    assert service["level"] == "service" and service["merchants_with_deletions"] >= 3
    assert {"touches", "payments"} <= set(service["channels"])
    served = {m["merchant"] for m in service["merchants_served"]}
    assert served <= {str(m) for m in truth["services"][0]["merchants"]}
    clients = [by_id[m] for m in served if m in by_id]
    assert clients and all("service_client" in c.evidence["rules"] for c in clients)
    assert all(c.evidence["service_accounts"][0]["account"] == service["account"] for c in clients)


def test_platform_moderation_is_not_the_merchants_doing(
    sim: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    """The same deletions, made by the platform instead of the reviewers, flag nobody."""
    off_log = {str(m) for m in truth["merchants"]["off_log"]}

    def moderated(r: dict[str, str]) -> dict[str, str]:
        if r["merchant"] in off_log and r["deleted_by"] == "author":
            r["deleted_by"], r["delete_reason"] = "platform", "abusive"
        return r

    reviews = _rewrite(sim / "reviews.csv", tmp_path / "reviews.csv", moderated)
    found = detect_review_deletion(reviews, sim / "after_sales.csv", sim / "merchants.csv")
    assert not off_log & _flagged(found, "merchant")


def test_a_contact_after_the_deletion_links_nothing(sim: Path, truth: dict[str, Any], tmp_path: Path) -> None:
    """Move the services' contacts and payments to after the month: no service, no client is left."""
    services = {str(s["account"]) for s in truth["services"]}

    def later(r: dict[str, str]) -> dict[str, str]:
        if r["operator"] in services or r["user"] in services:
            r["event_time"] = "2024-04-20 12:00:00"
        return r

    events = _rewrite(sim / "after_sales.csv", tmp_path / "after_sales.csv", later)
    found = detect_review_deletion(sim / "reviews.csv", events, sim / "merchants.csv")
    assert not _flagged(found, "service")
    assert all("service_client" not in f.evidence["rules"] for f in found)


def test_without_operator_column_services_are_found_by_payments(
    sim: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    def drop(r: dict[str, str]) -> dict[str, str]:
        r.pop("operator")
        return r

    events = _rewrite(sim / "after_sales.csv", tmp_path / "after_sales.csv", drop)
    found = detect_review_deletion(sim / "reviews.csv", events, sim / "merchants.csv")
    services = {f.subject_ids[0]: f for f in found if f.evidence["level"] == "service"}
    assert set(services) == {str(s["account"]) for s in truth["services"]}
    assert all(set(f.evidence["channels"]) == {"payments"} for f in services.values())


# --- bad input ------------------------------------------------------------------------------------


def test_bad_time_names_file_row_and_column(sim: Path, tmp_path: Path) -> None:
    rows = iter(range(10**9))

    def broken(r: dict[str, str]) -> dict[str, str]:
        if next(rows) == 6:
            r["event_time"] = "yesterday"
        return r

    events = _rewrite(sim / "after_sales.csv", tmp_path / "after_sales.csv", broken)
    with pytest.raises(InputError) as err:
        detect_review_deletion(sim / "reviews.csv", events, sim / "merchants.csv")
    assert err.value.row == 7 and err.value.column == "event_time" and err.value.path == str(events)

    out = tmp_path / "out.json"
    res = runner.invoke(
        app,
        [
            "detect",
            "review-deletion",
            "--reviews",
            str(sim / "reviews.csv"),
            "--after-sales",
            str(events),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 2
    assert str(events) in res.output and "row 7" in res.output and "event_time" in res.output
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_missing_column_and_unknown_merchant(sim: Path, tmp_path: Path) -> None:
    def no_author(r: dict[str, str]) -> dict[str, str]:
        r.pop("author")
        return r

    reviews = _rewrite(sim / "reviews.csv", tmp_path / "reviews.csv", no_author)
    with pytest.raises(InputError) as err:
        detect_review_deletion(reviews, sim / "after_sales.csv")
    assert err.value.column == "author" and str(reviews) in str(err.value)

    first = {"seen": False}

    def drop_first(r: dict[str, str]) -> dict[str, str] | None:
        if not first["seen"]:
            first["seen"] = True
            return None
        return r

    merchants = _rewrite(sim / "merchants.csv", tmp_path / "merchants.csv", drop_first)
    with pytest.raises(InputError) as err:
        detect_review_deletion(sim / "reviews.csv", sim / "after_sales.csv", merchants)
    assert err.value.column == "merchant" and str(merchants) in str(err.value)


def test_bad_options_exit_2(sim: Path, tmp_path: Path) -> None:
    base = ["detect", "review-deletion", "--reviews", str(sim / "reviews.csv"), "--after-sales"]
    base += [str(sim / "after_sales.csv"), "-o", str(tmp_path / "o.json")]
    res = runner.invoke(app, [*base, "--col", "created_at=ctime"])
    assert res.exit_code == 2 and "reviews.created_at" in res.output
    res = runner.invoke(app, [*base, "--contact-kinds", " , "])
    assert res.exit_code == 2
    res = runner.invoke(app, [*base, "--submit"])
    assert res.exit_code == 2 and "--platform" in res.output
    with pytest.raises(ValueError):
        detect_review_deletion(sim / "reviews.csv", sim / "after_sales.csv", params=Params(fdr=0))


# --- the command ----------------------------------------------------------------------------------


def test_cli_writes_findings_and_reports(sim: Path, tmp_path: Path, found: list[Finding]) -> None:
    out = tmp_path / "found.json"
    args = ["detect", "review-deletion", "--reviews", str(sim / "reviews.csv")]
    args += ["--after-sales", str(sim / "after_sales.csv"), "--merchants", str(sim / "merchants.csv")]
    res = runner.invoke(app, [*args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["count"] == len(found) and doc["detector"] == "review-deletion"
    assert [f["subject_ids"] for f in doc["findings"]] == [f.subject_ids for f in found]
    assert doc["stats"]["category_conversions"]["categories"]["food_delivery"]["rate"] > 0
    html = (tmp_path / "found.report.html").read_text(encoding="utf-8")
    assert "删除不利评价" in html and found[0].subject_ids[0] in html
    report = json.loads((tmp_path / "found.report.json").read_text(encoding="utf-8"))
    assert report["counts"] == {"review_deletion": len(found)}

    as_csv = tmp_path / "found.csv"
    res = runner.invoke(app, [*args, "-o", str(as_csv)])
    assert res.exit_code == 0, res.output
    with as_csv.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(found) and {r["level"] for r in rows} == {"merchant", "service"}
    assert not list(tmp_path.glob("*.part"))


def test_cli_column_mapping_per_file(sim: Path, tmp_path: Path, found: list[Finding]) -> None:
    def rename(mapping: dict[str, str]) -> Any:
        return lambda r: {mapping.get(k, k): v for k, v in r.items()}

    reviews = _rewrite(
        sim / "reviews.csv", tmp_path / "r.csv", rename({"created_at": "ctime", "author": "uid"})
    )
    events = _rewrite(
        sim / "after_sales.csv", tmp_path / "e.csv", rename({"user": "uid", "operator": "agent"})
    )
    out = tmp_path / "mapped.json"
    res = runner.invoke(
        app,
        [
            "detect",
            "review-deletion",
            "--reviews",
            str(reviews),
            "--after-sales",
            str(events),
            "--merchants",
            str(sim / "merchants.csv"),
            "-o",
            str(out),
            "--col",
            "reviews.created_at=ctime",
            "--col",
            "reviews.author=uid",
            "--col",
            "after_sales.user=uid",
            "--col",
            "after_sales.operator=agent",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [f["subject_ids"] for f in doc["findings"]] == [f.subject_ids for f in found]


def test_times_with_offsets_give_the_same_findings(sim: Path, tmp_path: Path, found: list[Finding]) -> None:
    """ISO 8601 with an offset, in UTC: converted to Asia/Shanghai, the same deletions follow the same contacts."""

    def utc(value: str) -> str:
        if not value:
            return value
        t = np.datetime64(value.replace(" ", "T")) - np.timedelta64(8, "h")
        return str(t) + "+00:00"

    def shift(r: dict[str, str]) -> dict[str, str]:
        for c in ("created_at", "deleted_at", "event_time"):
            if c in r:
                r[c] = utc(r[c])
        return r

    reviews = _rewrite(sim / "reviews.csv", tmp_path / "r.csv", shift)
    events = _rewrite(sim / "after_sales.csv", tmp_path / "e.csv", shift)
    again = detect_review_deletion(reviews, events, sim / "merchants.csv")
    assert [f.subject_ids for f in again] == [f.subject_ids for f in found]


# --- submission -----------------------------------------------------------------------------------


def test_submit_merchants_as_organizers_and_services_as_facilitators(
    tmp_path: Path, client: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = tmp_path / "sim"
    generate(sim, seed=4, scale=0.05)
    monkeypatch.setattr(S, "open_client", lambda url: contextlib.nullcontext(client))
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.delenv("FCX_API_KEY", raising=False)
    ent = world.enterprise("删差评监测测试企业")
    reviewer = world.platform().headers(Role.platform_reviewer)
    args = [
        "detect",
        "review-deletion",
        "--reviews",
        str(sim / "reviews.csv"),
        "--after-sales",
        str(sim / "after_sales.csv"),
        "--merchants",
        str(sim / "merchants.csv"),
        "-o",
        str(tmp_path / "out.json"),
        "--submit",
        "--platform",
        "http://testserver",
        "--key",
        ent.keys[Role.enterprise_operator],
        "--account-namespace",
        NS,
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    findings = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["findings"]
    n = len(findings)
    assert n and f"submitted {n}, accepted {n}, already on the platform 0, skipped 0, refused 0" in res.output
    level = {f"{NS}:{f['subject_ids'][0]}": f["evidence"]["level"] for f in findings}
    assert set(level.values()) == {"merchant", "service"}
    resp = client.get("/v1/entries", params={"limit": 1000}, headers=ent.headers(Role.enterprise_operator))
    entries = resp.json()["entries"]
    assert len(entries) == n
    for e in entries:
        assert e["status"] == "submitted" and e["behaviours"] == ["review_deletion"]
        d = client.get(f"/v1/entries/{e['id']}", params={"reveal": "true"}, headers=reviewer).json()
        (ident,) = d["subject"]["identifiers"]
        want = "facilitator" if level[ident["value"]] == "service" else "organizer"
        assert d["role"] == want and "删除不利评价" in d["facts"]
        assert len(d["evidence"]) == 1
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and f"already on the platform {n}" in again.output


def test_an_empty_after_sales_log_leaves_the_rate_test(sim: Path, tmp_path: Path) -> None:
    events = tmp_path / "after_sales.csv"
    events.write_text((sim / "after_sales.csv").read_text(encoding="utf-8").splitlines()[0] + "\n")
    run: dict[str, Any] = {}
    found = detect_review_deletion(sim / "reviews.csv", events, sim / "merchants.csv", stats_out=run)
    assert run["merchants_tested_contact"] == 0 and run["merchants_tested_rate"] > 0
    assert all(f.evidence["rules"] == ["abnormal_rate"] for f in found)
