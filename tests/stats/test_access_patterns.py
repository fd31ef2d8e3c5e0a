"""The auditor's unusual patterns of checks: no purpose, many subjects for few users, enumeration alarms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from typer.testing import CliRunner

from fanchaoxin.cli import app as fcx
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation
from tests.appeals.test_access_support import log_record


def _declare(db, org_id, users):  # type: ignore[no-untyped-def]
    with db.session() as s:
        s.execute(update(Organisation).where(Organisation.id == org_id).values(declared_users=users))


def _market(world, db):  # type: ignore[no-untyped-def]
    platform = world.platform()
    trawler = world.enterprise("撒网科技")  # 2 users, checks 40 identifiers, never says why
    careful = world.enterprise("规矩电商")  # 1,000 users, says why
    prober = world.enterprise("试探平台")  # an enumeration alarm, few checks
    _declare(db, trawler.org.id, 2)
    _declare(db, careful.org.id, 1000)
    now = datetime.now(UTC) - timedelta(hours=1)
    for i in range(40):
        log_record(db, trawler.org.id, now, [f"d{i:03d}"])
    log_record(db, trawler.org.id, now, ["d000"], entry_ids=["e1"], purpose="注册审核")
    for i in range(10):
        log_record(
            db, careful.org.id, now, [f"c{i % 3}"], purpose="开户审核", entry_ids=["e2"] if i < 2 else None
        )
    log_record(db, careful.org.id, now, ["c9"], channel="node", purpose="发布审核")
    log_record(db, careful.org.id, now - timedelta(days=90), ["old"])  # outside the window: not counted
    log_record(db, prober.org.id, now, ["p0"], purpose="注册审核")
    with db.session() as s:
        audit.record(
            s, Actor("system"), "security.enumeration_suspected", "organisation", prober.org.id,
            detail={"org_id": str(prober.org.id), "misses": 30},
        )  # fmt: skip
    return platform, trawler, careful, prober


def test_patterns_flag_no_purpose_and_many_subjects_per_user(client, world, db):
    platform, *_ = _market(world, db)
    r = client.get("/v1/decision-log/patterns", headers=platform.headers(Role.auditor))
    assert r.status_code == 200, r.text
    rows = {o["name"]: o for o in r.json()["organisations"]}
    t = rows["撒网科技"]
    assert t["checks"] == 41 and t["distinct_digests"] == 40 and t["declared_users"] == 2
    assert t["no_purpose_share"] == round(40 / 41, 4) and t["hit_rate"] == round(1 / 41, 4)
    assert t["digests_per_user"] == 20.0
    assert {f["code"] for f in t["flags"]} == {"no_purpose", "subjects_above_users"}
    reasons = " ".join(f["reason_zh"] + f["reason_en"] for f in t["flags"])
    assert "未说明用途" in reasons and "no purpose" in reasons and "申报用户仅 2 个" in reasons
    c = rows["规矩电商"]
    assert c["checks"] == 11 and c["by_channel"] == {"platform": 10, "node": 1}
    assert c["distinct_digests"] == 4 and c["hit_rate"] == round(2 / 11, 4)
    assert c["flagged"] is False and c["flags"] == []
    p = rows["试探平台"]
    assert p["enumeration_alarms"] == 1 and [f["code"] for f in p["flags"]] == ["enumeration_alarm"]
    names = [o["name"] for o in r.json()["organisations"]]
    assert names.index("规矩电商") == len(names) - 1  # flagged organisations first
    # A window that ends before the checks sees none of them.
    old = client.get(
        "/v1/decision-log/patterns?since=2020-01-01&until=2020-01-31", headers=platform.headers(Role.auditor)
    )
    assert old.status_code == 200 and old.json()["organisations"] == []


def test_patterns_are_for_the_platforms_auditors_only_and_check_dates(client, world, db):
    platform, trawler, _careful, _prober = _market(world, db)
    assert (
        client.get("/v1/decision-log/patterns", headers=platform.headers(Role.platform_admin)).status_code
        == 200
    )
    assert (
        client.get("/v1/decision-log/patterns", headers=trawler.headers(Role.enterprise_operator)).status_code
        == 403
    )
    assert client.get("/v1/decision-log/patterns").status_code in (401, 403)
    bad = client.get("/v1/decision-log/patterns?since=yesterday", headers=platform.headers(Role.auditor))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"
    backwards = client.get(
        "/v1/decision-log/patterns?since=2026-02-01&until=2026-01-01", headers=platform.headers(Role.auditor)
    )
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "until"


def test_cli_audit_patterns(world, db, settings):
    _market(world, db)
    r = CliRunner().invoke(fcx, ["audit", "patterns", "--json", "--flagged"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert {o["name"] for o in body["organisations"]} == {"撒网科技", "试探平台"}
    table = CliRunner().invoke(fcx, ["audit", "patterns"])
    assert table.exit_code == 0 and "41" in table.output and "Checks" in table.output
    bad = CliRunner().invoke(fcx, ["audit", "patterns", "--since", "nope"])
    assert bad.exit_code == 1 and "since" in bad.output
