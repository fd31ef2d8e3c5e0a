"""Who looked me up (PIPL art. 45): a listed person proves who they are and sees, per month, which
organisations checked them and for what purpose — on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import oprf
from tests.appeals.test_access_support import digest, log_record, month_of, publish
from tests.blacklist.registry_helpers import RID_A, RID_B, person_entry
from tests.console.console_helpers import csrf_of

PHONE = "13800138000"


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """The suite's settings with an OPRF key directory of this test's own (node records carry tags)."""
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def listed(world, db, settings):  # type: ignore[no-untyped-def]
    """张小三 listed (resident ID + phone), and what organisations did about him and someone else."""
    shop = world.enterprise("某电商平台")
    bank = world.enterprise("某金融平台")
    ride = world.enterprise("某出行平台")
    entry = publish(db, shop.org.id, person_entry())
    now = datetime.now(UTC)
    recent, earlier = now - timedelta(days=3), now - timedelta(days=70)
    phone, rid = digest("phone", PHONE), digest("resident_id", RID_A)
    tag = sharing_keys.load().ring.tag(oprf.identifier_input("phone", PHONE))
    log_record(db, shop.org.id, recent, [phone], purpose="新用户注册审核", entry_ids=[str(entry)])
    log_record(db, shop.org.id, recent, [rid], kind="lookup")  # no purpose given
    log_record(db, ride.org.id, recent, ["tag:" + tag], channel="node", purpose="司机准入")
    log_record(db, bank.org.id, earlier, [rid, phone], purpose="贷款审核")  # one record, two digests
    log_record(db, bank.org.id, now - timedelta(days=6 * 366), [rid], purpose="太久以前")  # past retention
    log_record(db, bank.org.id, recent, [digest("resident_id", RID_B)], purpose="别人")  # someone else
    return {"entry": entry, "shop": shop, "bank": bank, "ride": ride, "recent": recent, "earlier": earlier}


def ask(client, entry_id, id_type="phone", value=PHONE):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/public/access-log",
        json={"entry_id": str(entry_id), "identifier": {"type": id_type, "value": value}},
    )


def test_a_listed_person_sees_who_looked_them_up_per_month(client, db, listed):
    r = ask(client, listed["entry"], value="138 0013 8000")  # any spelling of the number
    assert r.status_code == 200, r.text
    report = r.json()
    months = report["months"]
    assert [m["month"] for m in months] == [month_of(listed["recent"]), month_of(listed["earlier"])]
    assert report["checks"] == 4 and sum(m["checks"] for m in months) == 4
    newest = months[0]
    by_name = {o["name"]: o for o in newest["organisations"]}
    assert set(by_name) == {"某电商平台", "某出行平台"}  # not the bank's check of someone else
    shop = by_name["某电商平台"]
    assert shop["kind"] == "enterprise" and shop["checks"] == 2
    assert shop["by_kind"] == {"decision": 1, "lookup": 1, "evaluation": 0}
    assert {(p["purpose"], p["label_zh"], p["label_en"]) for p in shop["purposes"]} == {
        ("新用户注册审核", "新用户注册审核", "新用户注册审核"),
        (None, "未说明用途", "no purpose given"),
    }
    ride = by_name["某出行平台"]  # found through the node's tag, never a plain value
    assert ride["by_channel"] == {"platform": 0, "node": 1} and ride["purposes"][0]["purpose"] == "司机准入"
    assert newest["by_channel"] == {"platform": 2, "node": 1}
    assert newest["by_kind"] == {"decision": 2, "lookup": 1, "evaluation": 0}
    older = months[1]["organisations"]
    assert [(o["name"], o["checks"], o["purposes"][0]["purpose"]) for o in older] == [
        ("某金融平台", 1, "贷款审核")
    ]
    # The proof by the other identifier gives the same report.
    assert ask(client, listed["entry"], "resident_id", RID_A).json()["months"] == months
    # The request is audited with the entry id, never the identifier.
    with db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "access_log.read")).all()
    assert [e.target_id for e in events] == [str(listed["entry"])] * 2
    assert all(PHONE not in str(e.detail) and RID_A not in str(e.detail) for e in events)


def test_a_wrong_identifier_answers_exactly_like_an_unknown_entry(client, db, listed):
    wrong = ask(client, listed["entry"], "resident_id", RID_B)
    unknown_id = uuid.uuid4()
    unknown = ask(client, unknown_id, "resident_id", RID_A)
    assert wrong.status_code == unknown.status_code == 404
    a, b = wrong.json(), unknown.json()
    assert a["title"] == b["title"] and a["type"] == b["type"]
    assert a["detail"].replace(str(listed["entry"]), "X") == b["detail"].replace(str(unknown_id), "X")
    assert "某电商平台" not in wrong.text
    # A malformed identifier is bad input naming the field, not a 404.
    bad = ask(client, listed["entry"], "phone", "12")
    assert bad.status_code == 422 and "identifier" in bad.text
    # Refusals are on the record too (committed despite the 404), without the identifier.
    with db.session() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "access_log.refused")).all()
    assert sorted(e.target_id for e in refused) == sorted([str(listed["entry"]), str(unknown_id)])
    assert all(RID_B not in str(e.detail) for e in refused)


def test_access_log_is_rate_limited_per_entry(client, listed):
    answers = [ask(client, listed["entry"]).status_code for _ in range(6)]
    assert answers[:5] == [200] * 5 and answers[5] == 429


def test_the_console_page_shows_organisations_and_purposes_in_chinese(client, listed):
    page = client.get("/console/public/access")
    assert page.status_code == 200 and "谁查询了我" in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "entry_id": str(listed["entry"]),
        "identifier_type": "phone",
        "identifier_value": PHONE,
    }
    r = client.post("/console/public/access", data=form)
    assert r.status_code == 200, r.text
    for text in (
        "某电商平台",
        "新用户注册审核",
        "未说明用途",
        "某出行平台",
        "某金融平台",
        month_of(listed["recent"]),
    ):
        assert text in r.text
    assert PHONE not in r.text  # the identifier is not echoed back
    wrong = client.post("/console/public/access", data={**form, "identifier_value": "13900000000"})
    assert wrong.status_code == 404 and "某电商平台" not in wrong.text
    assert client.post("/console/public/access", data={**form, "csrf_token": "0" * 64}).status_code == 403
