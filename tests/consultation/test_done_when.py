"""Done when (#22, consultation): a consultation is scheduled, holds an agenda item raised by an
enterprise, records a decision and an action item that becomes overdue and then is closed; the
participants are e-mailed; a policy version cites the decision — over HTTP as the participants call it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.consultation import service
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation

A, OP, DEPT = Role.platform_admin, Role.enterprise_operator, Role.department_officer
POLICY = "version: '2027.9'\nrules:\n  - when: {severity: [serious]}\n    measures: [deny_new_account]\n"


@pytest.fixture
def mails():
    log = LogNotifier()
    previous = set_notifier(log)
    yield log
    set_notifier(previous)


def test_a_consultation_from_schedule_to_closed_action_item(client, db, world, mails):
    platform, shop, other, dept = (
        world.platform(),
        world.enterprise("电商"),
        world.enterprise("物流"),
        world.department(),
    )
    with db.session() as s:
        s.get(Organisation, shop.org.id).contact_email = "shop@example.com"
        s.get(Organisation, dept.org.id).contact_email = "dept@example.com"
    admin = platform.headers(A)

    # Scheduled: a meeting in the past is refused naming the field; one in the future invites everyone.
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = client.post(
        "/v1/consultation/meetings",
        json={"kind": "ad_hoc", "title": "临时会商", "starts_at": past},
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["code"] == "consultation.meeting_in_past"
    assert r.json()["errors"][0]["field"] == "starts_at"
    starts = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    r = client.post(
        "/v1/consultation/meetings",
        json={
            "kind": "regular",
            "period": "2030Q1",
            "title": "第一季度会商",
            "starts_at": starts,
            "place": "北京",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    meeting = r.json()
    assert meeting["invited"] == 3 and meeting["without_address"] == 1
    assert sorted(m.to for m in mails.sent if m.event == "consultation.invited") == [
        "dept@example.com",
        "shop@example.com",
    ]
    mid = meeting["id"]
    r = client.post(
        "/v1/consultation/meetings",
        json={"kind": "regular", "period": "2030Q1", "title": "again", "starts_at": starts},
        headers=admin,
    )
    assert r.status_code == 409 and r.json()["code"] == "consultation.period_taken"
    # Only the platform schedules.
    r = client.post(
        "/v1/consultation/meetings",
        json={"kind": "ad_hoc", "title": "x", "starts_at": starts},
        headers=shop.headers(OP),
    )
    assert r.status_code == 403

    # An enterprise raises an agenda item on it: a disputed measure naming one of the 13.
    r = client.post(
        "/v1/consultation/agenda-items",
        json={"kind": "disputed_measure", "title": "措施4过重", "measure": "nope", "meeting_id": mid},
        headers=shop.headers(OP),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "measure"
    r = client.post(
        "/v1/consultation/agenda-items",
        json={
            "kind": "disputed_measure",
            "title": "措施4过重",
            "body": "理由",
            "measure": "4",
            "meeting_id": mid,
        },
        headers=shop.headers(OP),
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert [m["id"] for m in client.get("/v1/consultation/meetings", headers=shop.headers(OP)).json()] == [
        mid
    ]
    detail = client.get(f"/v1/consultation/meetings/{mid}", headers=dept.headers(DEPT)).json()
    assert [a["id"] for a in detail["agenda"]] == [item["id"]]

    # Held: attendance and minutes; a decision on the item; an action item for the enterprise.
    r = client.post(f"/v1/consultation/meetings/{mid}/decisions", json={"text": "too early"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "consultation.meeting_not_held"
    r = client.post(
        f"/v1/consultation/meetings/{mid}/attendance",
        json={"org_id": str(shop.org.id), "attended": True, "representative": "张经理"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["attended"] is True
    r = client.post(f"/v1/consultation/meetings/{mid}/hold", json={"minutes": "会议纪要"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "held"
    r = client.post(
        f"/v1/consultation/meetings/{mid}/decisions",
        json={"text": "措施4的适用条件收紧", "agenda_item_id": item["id"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    decision = r.json()
    r = client.post(
        f"/v1/consultation/meetings/{mid}/action-items",
        json={"title": "提交数据", "due_on": china_today().isoformat()},
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["code"] == "consultation.owner_required"
    assert r.json()["errors"][0]["field"] == "owner_org_id"
    r = client.post(
        f"/v1/consultation/meetings/{mid}/action-items",
        json={
            "owner_org_id": str(shop.org.id),
            "decision_id": decision["id"],
            "title": "提交数据",
            "due_on": china_today().isoformat(),
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    action = r.json()
    assert action["overdue"] is False
    assert mails.sent[-1].event == "consultation.action_assigned" and mails.sent[-1].to == "shop@example.com"
    detail = client.get(f"/v1/consultation/meetings/{mid}", headers=shop.headers(OP)).json()
    assert detail["agenda"][0]["status"] == "discussed" and detail["minutes"] == "会议纪要"
    assert [p["attended"] for p in detail["participants"] if p["org_id"] == str(shop.org.id)] == [True]

    # It becomes overdue the day after its due day (the jobs loop passes the day), and is reminded.
    assert client.get("/v1/consultation/action-items?overdue=true", headers=admin).json() == []
    tomorrow = china_today() + timedelta(days=1)
    with db.session() as s:
        assert [str(i.id) for i in service.overdue_action_items(s, tomorrow)] == [action["id"]]
        assert service.remind_overdue(s, tomorrow) == 1
    assert mails.sent[-1].event == "consultation.action_overdue"

    # Closed by its owner with a note; another enterprise does not even see it.
    r = client.post(
        f"/v1/consultation/action-items/{action['id']}/closure", json={"note": "x"}, headers=other.headers(OP)
    )
    assert r.status_code == 404
    assert client.get("/v1/consultation/action-items", headers=other.headers(OP)).json() == []
    r = client.post(
        f"/v1/consultation/action-items/{action['id']}/closure",
        json={"note": "已提交"},
        headers=shop.headers(OP),
    )
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["closing_note"] == "已提交"
    with db.session() as s:
        assert service.overdue_action_items(s, tomorrow) == []

    # A policy version cites the decision; the decision lists it.
    yaml = {"Content-Type": "application/yaml"}
    r = client.post(
        f"/v1/consultation/decisions/{decision['id']}/policy", content=POLICY, headers={**admin, **yaml}
    )
    assert r.status_code == 201, r.text
    assert r.json()["consultation_decision_id"] == decision["id"]
    got = client.get(f"/v1/consultation/decisions/{decision['id']}", headers=shop.headers(OP)).json()
    assert [p["version"] for p in got["policies"]] == ["2027.9"]
    missing = "00000000-0000-0000-0000-000000000000"
    r = client.post(f"/v1/consultation/decisions/{missing}/policy", content=POLICY, headers={**admin, **yaml})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "consultation_decision_id"


def test_hold_without_minutes_cancel_and_who_sees_what(client, world, mails):
    platform, shop, dept = world.platform(), world.enterprise("电商"), world.department()
    admin = platform.headers(A)
    starts = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    ids = []
    for title in ("甲", "乙"):
        r = client.post(
            "/v1/consultation/meetings",
            json={"kind": "ad_hoc", "title": title, "starts_at": starts, "invitees": [str(dept.org.id)]},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = client.post(f"/v1/consultation/meetings/{ids[0]}/hold", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "held"
    r = client.post(f"/v1/consultation/meetings/{ids[1]}/cancellation", json={"reason": " "}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = client.post(
        f"/v1/consultation/meetings/{ids[1]}/cancellation", json={"reason": "改期"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # The enterprise was not invited: it sees neither meeting; the department sees both.
    assert client.get("/v1/consultation/meetings", headers=shop.headers(OP)).json() == []
    assert client.get(f"/v1/consultation/meetings/{ids[0]}", headers=shop.headers(OP)).status_code == 404
    assert len(client.get("/v1/consultation/meetings", headers=dept.headers(DEPT)).json()) == 2
    # Only the platform's administrator records outcomes.
    r = client.post(
        f"/v1/consultation/meetings/{ids[0]}/decisions", json={"text": "x"}, headers=dept.headers(DEPT)
    )
    assert r.status_code == 403
