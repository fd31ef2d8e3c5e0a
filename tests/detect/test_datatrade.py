"""`fcx detect data-trade` and `fcx simulate data-access`: personal-data trade (泄露倒卖个人信息).

The simulator plants staff pulling customer data and accounts registered with (or shipping to) bought
identifiers, beside hard negatives; the detector must find the first and leave the second alone. The
planted ground truth is read from truth.json / truth_*.csv, never from the detector.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.core.roles import Role
from fanchaoxin.detect import datatrade as D
from fanchaoxin.detect import submit as S
from fanchaoxin.simulate.data_access import generate

runner = CliRunner()
NS = "testshop"


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dt") / "sim"
    res = runner.invoke(app, ["simulate", "data-access", "--out", str(out), "--seed", "3", "--scale", "0.05"])
    assert res.exit_code == 0, res.output
    assert "access_log.csv" in res.output
    return out


@pytest.fixture(scope="module")
def run(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole command on every input, once for the module."""
    out = tmp_path_factory.mktemp("dt-out") / "found.json"
    res = runner.invoke(
        app,
        [
            "detect",
            "data-trade",
            "--registrations",
            str(sim / "registrations.csv"),
            "--orders",
            str(sim / "orders.csv"),
            "--access-log",
            str(sim / "access_log.csv"),
            "--staff",
            str(sim / "staff.csv"),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    return {"out": out, "doc": doc, "output": res.output}


def _subjects(doc: dict[str, Any], detector: str) -> set[str]:
    return {f["subject_ids"][0] for f in doc["findings"] if f["detector"] == detector}


# ------------------------------------------------------------------------------------------ simulator


def test_simulator_is_deterministic_and_writes_what_it_says(sim: Path, tmp_path: Path) -> None:
    truth = generate(tmp_path / "again", seed=3, scale=0.05)
    for name in ("registrations.csv", "orders.csv", "access_log.csv", "staff.csv", "truth.json"):
        a = hashlib.sha256((sim / name).read_bytes()).hexdigest()
        b = hashlib.sha256((tmp_path / "again" / name).read_bytes()).hexdigest()
        assert a == b, name
    for name, n in truth["files"].items():
        assert len(_csv(sim / name)) == n
    log = _csv(sim / "access_log.csv")
    assert {r["action"] for r in log} == {"view", "search", "export"}
    assert all(r["customer"] == "" for r in log if r["action"] == "export")
    times = [r["event_time"] for r in log]
    assert times == sorted(times)  # written one day at a time, in time order
    # every planted kind of staff is there, and what the truth says about a broker is in the data
    kinds = {s["kind"] for s in truth["staff"]}
    assert kinds == {"grabber", "slow", "night", "exporter", "broker", "over_exporter"}
    broker = next(s["staff"] for s in truth["staff"] if s["kind"] == "broker")
    viewed = {r["customer"] for r in log if r["staff"] == broker}
    owners = {str(x["owner_account"]) for x in truth["leaked_identities"] if x["source"] == broker}
    assert owners and owners <= viewed
    # a leaked phone really is registered by the accounts the truth names
    reg = _csv(sim / "registrations.csv")
    leak = next(x for x in truth["leaked_identities"] if x["identifier_kind"] == "phone")
    on_phone = {r["account"] for r in reg if r["phone"] == str(leak["phone"])}
    assert {str(a) for a in leak["accounts"]} <= on_phone


# ------------------------------------------------------------------------------------------ quality


def test_planted_staff_found_and_hard_negatives_left_alone(sim: Path, run: dict[str, Any]) -> None:
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    found = _subjects(run["doc"], D.DETECTOR_STAFF)
    planted = {s["staff"] for s in truth["staff"]}
    assert planted <= found, planted - found
    assert found <= planted, found - planted
    reasons = {
        f["subject_ids"][0]: f["evidence"]["reasons"]
        for f in run["doc"]["findings"]
        if f["detector"] == D.DETECTOR_STAFF
    }
    by_kind = {s["staff"]: s["kind"] for s in truth["staff"]}
    expected = {
        "grabber": "excess_access",
        "slow": "excess_access",
        "night": "night_access",
        "exporter": "export_beyond_role",
        "over_exporter": "export_beyond_role",
        "broker": "leak_source",
    }
    for staff, kind in by_kind.items():
        assert expected[kind] in reasons[staff], (staff, kind, reasons[staff])
    hn = truth["hard_negatives"]
    staff_rows = _csv(sim / "staff.csv")
    teams = {hn["night_shift_team"], *hn["double11_surge_teams"]}
    negatives = set(hn["busy_agents"] + hn["small_report_agents"] + hn["etl_accounts"] + hn["analysts"])
    negatives |= {r["staff"] for r in staff_rows if r["team"] in teams}
    assert negatives and not (negatives - planted) & found


def test_leaked_identifier_accounts_found_owners_and_families_never(sim: Path, run: dict[str, Any]) -> None:
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    found = _subjects(run["doc"], D.DETECTOR_IDENTIFIERS)
    planted = {r["account"] for r in _csv(sim / "truth_accounts.csv")}
    tp = len(found & planted)
    assert tp / len(found) >= 0.9 and tp / len(planted) >= 0.9
    assert {"registered_with_leaked", "shipped_to_leaked"} == {
        r["kind"] for r in _csv(sim / "truth_accounts.csv") if r["account"] in found
    }
    owners = {str(x["owner_account"]) for x in truth["leaked_identities"] if x["owner_account"]}
    assert owners and not owners & found  # a victim is never a subject
    families = {str(a) for f in truth["hard_negatives"]["family_accounts"] for a in f}
    assert families and not families & found


def test_reports_never_show_a_raw_phone(sim: Path, run: dict[str, Any]) -> None:
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    out: Path = run["out"]
    texts = [out.read_text(encoding="utf-8")]
    texts += [out.with_name(f"found.report.{ext}").read_text(encoding="utf-8") for ext in ("html", "json")]
    phones = {str(x["phone"]) for x in truth["leaked_identities"]} | {
        str(x["phone"]) for x in truth["leaked_receivers"]
    }
    hashes = {x["id_hash"] for x in truth["leaked_identities"]}
    for text in texts:
        assert not any(p in text for p in phones)
        assert not any(h in text for h in hashes)
    assert "+86 1" in texts[0] and "******" in texts[0]  # shown masked, as the platform does
    assert "Personal-data trade" in texts[1] and "泄露倒卖个人信息" in texts[1]


# ------------------------------------------------------------------------------------------ rules


def test_unrelated_accounts_on_one_phone_flagged_household_and_office_not(tmp_path: Path) -> None:
    t0 = datetime(2024, 11, 1, 9)

    def ts(days: float) -> str:
        return (t0 + timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")

    rows = [
        # the owner (a customer for a year), then four accounts with their own devices and IPs
        ["owner", ts(-365), "13812345678", "dev-owner", "1.1.1.1"],
        *[[f"bought{k}", ts(10 + k), "138 1234 5678", f"dev-b{k}", f"2.2.2.{k}"] for k in range(4)],
        # a family of four on one phone: home broadband or a shared tablet
        ["mum", ts(-300), "13900000001", "dev-m", "3.3.3.3"],
        ["dad", ts(-200), "+86 139 0000 0001", "dev-d", "3.3.3.3"],
        ["kid", ts(5), "139-0000-0001", "dev-m", "9.9.9.9"],
        ["gran", ts(6), "13900000001", "dev-g", "3.3.3.3"],
        # four strangers whose only link is a carrier-NAT IP used by 30 accounts: still unrelated
        *[[f"nat{k}", ts(k), "13700000002", f"dev-n{k}", "100.64.0.1"] for k in range(4)],
        *[[f"other{k}", ts(k), f"1360000{k:04d}", f"dev-o{k}", "100.64.0.1"] for k in range(26)],
    ]
    reg = _write(tmp_path / "reg.csv", ["account", "registered_at", "phone", "device_id", "ip"], rows)
    orders = _write(
        tmp_path / "orders.csv",
        ["buyer", "receiver_phone", "order_time", "receiver_address_hash"],
        # an office building: many receivers, one address; and colleagues' gifts to one phone there
        [[f"other{k}", f"1360000{k:04d}", ts(3), "office-tower"] for k in range(20)]
        + [[f"other{k}", "13600000001", ts(4), "office-tower"] for k in range(2, 8)],
    )
    findings, run = D.detect(D.load_inputs(registrations=reg, orders=orders))
    found = {f.subject_ids[0] for f in findings}
    # the owner and the first of the NAT strangers (the possible owner) are never subjects
    assert found == {"bought0", "bought1", "bought2", "bought3", "nat1", "nat2", "nat3"}
    assert "ran on registrations and orders" in run["analyses"]["leaked_identifiers"]
    assert run["analyses"]["staff_access"].startswith("skipped")
    f = next(f for f in findings if f.subject_ids == ["bought2"])
    ident = f.evidence["identifiers"][0]
    assert ident["identifier"] == "+86 138******78" and ident["unrelated_clusters"] == 4
    assert ident["possible_owner_accounts_excluded"] == 1


def test_mask_identifier() -> None:
    assert D.mask_identifier("phone", "13812345678") == "+86 138******78"
    assert D.mask_identifier("resident_id", "11010519491231002X") == "11***************X"
    assert D.mask_identifier("resident_id", "9f86d081884c7d65") == "9f86d0…"
    assert D.mask_identifier("phone", "abc") == "***"


# ------------------------------------------------------------------------------------------ CLI


def test_only_the_analyses_the_files_allow(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "reg.csv"
    res = runner.invoke(
        app, ["detect", "data-trade", "--registrations", str(sim / "registrations.csv"), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "leaked_identifiers: ran on registrations" in res.output
    assert "staff_access: skipped" in res.output
    rows = _csv(out)
    assert rows and {r["detector"] for r in rows} == {D.DETECTOR_IDENTIFIERS}
    assert (tmp_path / "reg.report.html").is_file() and not list(tmp_path.glob("*.part"))

    res = runner.invoke(app, ["detect", "data-trade", "--staff", str(sim / "staff.csv"), "-o", str(out)])
    assert res.exit_code == 2 and "nothing to analyse" in res.output


def test_column_mapping_and_time_zone(sim: Path, run: dict[str, Any], tmp_path: Path) -> None:
    """Renamed columns (--col, per file and for every file) and times with an offset give the same answer."""
    log = _csv(sim / "access_log.csv")
    shifted = []
    for r in log:
        local = datetime.strptime(r["event_time"], "%Y-%m-%d %H:%M:%S")
        r = dict(r)
        r["event_time"] = (local - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
        shifted.append(
            [
                r["event_id"],
                r["staff"],
                r["customer"],
                r["action"],
                r["rows"],
                r["ticket_id"],
                r["event_time"],
            ]
        )
    access = _write(
        tmp_path / "access.csv", ["id", "staff_id", "cust", "op", "n", "ticket_id", "at"], shifted
    )
    staff = _write(
        tmp_path / "staff.csv",
        ["staff_id", "job", "team"],
        [[r["staff"], r["role"], r["team"]] for r in _csv(sim / "staff.csv")],
    )
    out = tmp_path / "mapped.json"
    cols = ["staff=staff_id", "access_log.customer=cust", "access_log.action=op", "access_log.rows=n"]
    cols += ["access_log.event_time=at", "staff.role=job"]
    args = ["detect", "data-trade", "--access-log", str(access), "--staff", str(staff), "-o", str(out)]
    for c in cols:
        args += ["--col", c]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    mapped = json.loads(out.read_text(encoding="utf-8"))
    assert _subjects(mapped, D.DETECTOR_STAFF) - _subjects(run["doc"], D.DETECTOR_STAFF) == set()
    # only the leak-source rule needs the registrations: everything else is found from the log alone
    assert _subjects(run["doc"], D.DETECTOR_STAFF) - _subjects(mapped, D.DETECTOR_STAFF) <= {
        f["subject_ids"][0]
        for f in run["doc"]["findings"]
        if f["detector"] == D.DETECTOR_STAFF and f["evidence"]["reasons"] == ["leak_source"]
    }

    res = runner.invoke(app, [*args, "--col", "orders.buyer=x"])
    assert res.exit_code == 2 and "orders" in res.output
    res = runner.invoke(app, [*args, "--col", "access_log.nope=x"])
    assert res.exit_code == 2 and "nope" in res.output


def test_bad_input_names_file_row_and_column(tmp_path: Path) -> None:
    access = _write(
        tmp_path / "access.csv",
        ["staff", "role", "customer", "action", "rows", "event_time"],
        [
            ["s1", "customer_service", "c1", "view", "1", "2024-11-01 09:00:00"],
            ["s1", "customer_service", "c2", "view", "1", "2024-11-01 25:00:00"],
        ],
    )
    out = tmp_path / "out.json"
    res = runner.invoke(app, ["detect", "data-trade", "--access-log", str(access), "-o", str(out)])
    assert res.exit_code == 2
    assert "access.csv" in res.output and "data row 2" in res.output and "event_time" in res.output
    assert not out.exists()

    reg = _write(
        tmp_path / "reg.csv", ["account", "registered_at", "device_id"], [["a", "2024-11-01 09:00:00", "d"]]
    )
    res = runner.invoke(app, ["detect", "data-trade", "--registrations", str(reg), "-o", str(out)])
    assert res.exit_code == 2 and "reg.csv" in res.output and "phone or an id_hash" in res.output

    no_role = _write(
        tmp_path / "norole.csv",
        ["staff", "customer", "action", "rows", "event_time"],
        [["s1", "c1", "view", "1", "2024-11-01 09:00:00"]],
    )
    res = runner.invoke(app, ["detect", "data-trade", "--access-log", str(no_role), "-o", str(out)])
    assert res.exit_code == 2 and "norole.csv" in res.output and "--staff" in res.output


# ------------------------------------------------------------------------------------------ submit


@pytest.fixture
def platform(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's client is the in-process platform app."""
    monkeypatch.setattr(S, "open_client", lambda url: contextlib.nullcontext(client))
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.delenv("FCX_API_KEY", raising=False)
    return client


def test_submit_staff_accounts(sim: Path, tmp_path: Path, platform: Any, world: Any) -> None:
    ent = world.enterprise("个人信息保护监测测试企业")
    operator = ent.headers(Role.enterprise_operator)
    out = tmp_path / "staff.json"
    args = [
        "detect",
        "data-trade",
        "--access-log",
        str(sim / "access_log.csv"),
        "--staff",
        str(sim / "staff.csv"),
    ]
    args += ["-o", str(out), "--submit", "--platform", "http://testserver", "--key"]
    args += [ent.keys[Role.enterprise_operator], "--account-namespace", NS]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    found = json.loads(out.read_text(encoding="utf-8"))["findings"]
    n = len(found)
    assert n and f"submitted {n}, accepted {n}" in res.output

    resp = platform.get("/v1/entries", params={"limit": 1000}, headers=operator)
    assert resp.status_code == 200, resp.text
    entries = resp.json()["entries"]
    assert len(entries) == n
    for e in entries:
        assert e["status"] == "submitted" and e["basis"] == "enterprise_finding"
        assert e["behaviours"] == ["personal_data_trade"]
    by_staff = {f"{NS}:{f['subject_ids'][0]}": f for f in found}
    reviewer = world.platform().headers(Role.platform_reviewer)
    for e in entries:
        assert e["subject"]["kind"] == "platform_account"
        d = platform.get(f"/v1/entries/{e['id']}", params={"reveal": "true"}, headers=reviewer).json()
        (ident,) = d["subject"]["identifiers"]
        f = by_staff.pop(ident["value"])
        assert d["occurred_from"] == f["evidence"]["first_seen"][:10]
        assert f["summary"] in d["facts"] and "泄露倒卖个人信息" in d["facts"]
        assert len(d["evidence"]) == 1
    assert not by_staff

    again = runner.invoke(app, args)  # the same detection again creates nothing
    assert again.exit_code == 0, again.output
    assert f"submitted 0, accepted 0, already on the platform {n}" in again.output


def test_submit_needs_platform_before_any_work(
    sim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.setenv("FCX_API_KEY", "k")
    out = tmp_path / "out.json"
    res = runner.invoke(
        app, ["detect", "data-trade", "--access-log", str(sim / "access_log.csv"), "-o", str(out), "--submit"]
    )
    assert res.exit_code == 2, res.output
    assert "--submit needs --platform (or FCX_PLATFORM_URL)" in res.output
    assert not out.exists()
