"""What a submission may do to others (issue #13): propose identifiers, never add them; tell its
submitter only what it sent; keep evidence names harmless; lose a race with a 409."""

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry, Evidence
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.errors import Conflict
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import Role
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.subjects.models import SubjectIdentifier
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_A, RID_B, USCC_A, USCC_B, judicial, person_entry
from tests.console.console_helpers import csrf_of

PHONE_A, PHONE_B = "13800138000", "13900139000"
DOMAIN = "shuadan.example.cn"
SERIOUS = {
    "basis": "judicial_decision",
    "document_number": "(2026)京0105刑初123号",
    "issuing_authority": "北京市朝阳区人民法院",
    "severity": "serious",
}


@pytest.fixture
def parties(world):
    return {"platform": world.platform(), "a": world.enterprise("甲电商"), "b": world.enterprise("乙电商")}


def person(rid, phone, name="张小三", **over):
    body = person_entry(**over)
    body["subject"] = {
        "kind": "individual",
        "name": name,
        "identifiers": [{"type": "resident_id", "value": rid}, {"type": "phone", "value": phone}],
    }
    return body


def submit(client, tenant, body):
    r = client.post("/v1/entries", json=body, headers=tenant.headers(Role.enterprise_operator))
    assert r.status_code == 201, r.text
    return r.json()


def reviewer(p):
    return p.headers(Role.platform_reviewer)


def step(client, p, entry_id, action, reason=""):
    version = client.get(f"/v1/entries/{entry_id}", headers=reviewer(p)).json()["version"]
    r = client.post(
        f"/v1/entries/{entry_id}/transitions",
        json={"action": action, "reason": reason, "version": version},
        headers=reviewer(p),
    )
    assert r.status_code == 200, r.text
    return r.json()


def publish(client, p, entry_id):
    step(client, p, entry_id, "start_review")
    return step(client, p, entry_id, "publish")


def lookup(client, tenant, type_, value):
    r = client.get("/v1/lookup", params={"type": type_, "value": value}, headers=tenant.headers())
    assert r.status_code == 200, r.text
    return r.json()["subjects"]


def decide(client, tenant, type_, value):
    client.app.state.decision_index.invalidate()  # built afresh from the database
    r = client.post(
        "/v1/decisions",
        json={"scene": "account_registration", "identifiers": [{"type": type_, "value": value}]},
        headers=tenant.headers(Role.enterprise_node),
    )
    assert r.status_code == 200, r.text
    return r.json()["verdict"]


def public_query(client, by, q, full_name=""):
    token = csrf_of(client.get("/console/public").text)
    data = {"csrf_token": token, "by": by, "q": q, "full_name": full_name}
    r = client.post("/console/public", data=data)
    assert r.status_code == 200, r.text
    return r.text.split('id="results"')[-1]


def identifiers_of(db, subject_id):
    with db.session() as s:
        return sorted(
            (i.type, i.value)
            for i in s.scalars(
                select(SubjectIdentifier).where(SubjectIdentifier.subject_id == uuid.UUID(subject_id))
            )
        )


def feed(db):
    with db.session() as s:
        return [(ev.event, str(ev.entry_id)) for ev in s.scalars(select(FeedEvent).order_by(FeedEvent.seq))]


# --- 1. a submission proposes identifiers; publication (the reviewer's acceptance) joins them ------


def test_an_unreviewed_submission_does_not_change_a_published_subject(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    listed = publish(client, p, submit(client, a, person(RID_A, PHONE_A, **SERIOUS))["id"])
    subject_id = listed["subject"]["id"]
    before = identifiers_of(db, subject_id)
    events = feed(db)
    assert lookup(client, b, "phone", PHONE_A) and decide(client, b, "phone", PHONE_A) == "deny"

    # B names the listed person by resident ID and adds a phone of its own choosing
    sent = submit(client, b, person(RID_A, PHONE_B))
    assert lookup(client, b, "phone", PHONE_B) == []
    assert decide(client, b, "phone", PHONE_B) == "allow"
    assert mask("phone", PHONE_B) not in public_query(client, "resident_id", RID_A, "张小三")
    # the listed person is found by RID and full name
    assert "张*三" in public_query(client, "resident_id", RID_A, "张小三")
    assert 'id="no-results"' in public_query(client, "phone", PHONE_B, "张小三")
    assert identifiers_of(db, subject_id) == before and feed(db) == events

    # the reviewer sees what it would add, and publishing accepts it
    seen = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    (offered,) = seen["proposed_identifiers"]
    assert offered["party"] == "subject" and offered["type"] == "phone" and offered["status"] == "proposed"
    assert offered["value"] == mask("phone", PHONE_B) and seen["subject"]["id"] == subject_id
    step(client, p, sent["id"], "start_review")
    step(client, p, sent["id"], "open_notice")
    with db.session() as s:
        s.get(Entry, uuid.UUID(sent["id"])).notice_ends_on = date.today() - timedelta(days=1)
    step(client, p, sent["id"], "publish")
    assert ("phone", "+8613900139000") in identifiers_of(db, subject_id)
    (found,) = lookup(client, b, "phone", PHONE_B)
    assert {e["id"] for e in found["entries"]} == {listed["id"], sent["id"]}
    assert decide(client, b, "phone", PHONE_B) == "deny"
    # the new entry is announced, and the listed one is re-sent: its subject's identifiers changed
    assert feed(db)[len(events) :] == [("published", sent["id"]), ("updated", listed["id"])]
    seen = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    assert [x["status"] for x in seen["proposed_identifiers"]] == ["joined"]


def test_the_published_record_carries_the_joined_identifiers(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    listed = publish(client, p, submit(client, a, judicial())["id"])
    body = judicial(document_number="(2026)京0105刑初124号")
    body["subject"]["identifiers"].append({"type": "domain", "value": DOMAIN})
    sent = submit(client, b, body)
    with db.session() as s:
        assert s.scalar(select(FeedEvent.record).order_by(FeedEvent.seq.desc()))["identifiers"] == [
            f"uscc:{USCC_A}"
        ]
    publish(client, p, sent["id"])
    with db.session() as s:
        records = {
            (ev.event, str(ev.entry_id)): ev.record
            for ev in s.scalars(select(FeedEvent).where(FeedEvent.event.in_(["published", "updated"])))
        }
    joined = [f"domain:{DOMAIN}", f"uscc:{USCC_A}"]
    assert records[("published", sent["id"])]["identifiers"] == joined
    assert records[("updated", listed["id"])]["identifiers"] == joined


def test_a_reviewer_rejects_one_proposed_identifier_before_publication(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    listed = publish(client, p, submit(client, a, person(RID_A, PHONE_A, **SERIOUS))["id"])
    body = person(RID_A, PHONE_B, **SERIOUS)
    body["subject"]["identifiers"].append({"type": "email", "value": "x@example.cn"})
    sent = submit(client, b, body)
    seen = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    phone = next(x for x in seen["proposed_identifiers"] if x["type"] == "phone")
    url = f"/v1/entries/{sent['id']}/proposed-identifiers/{phone['id']}/reject"
    assert client.post(url, json={"reason": "不是本人"}, headers=b.headers()).status_code == 403
    r = client.post(url, json={"reason": ""}, headers=reviewer(p))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = client.post(url, json={"reason": "号码属于他人", "version": seen["version"]}, headers=reviewer(p))
    assert r.status_code == 200, r.text
    assert {x["type"]: x["status"] for x in r.json()["proposed_identifiers"]} == {
        "phone": "rejected",
        "email": "proposed",
    }
    assert r.json()["version"] == seen["version"] + 1  # a page read before the rejection is stale
    again = client.post(url, json={"reason": "x"}, headers=reviewer(p))
    assert again.status_code == 409
    other = client.post(
        f"/v1/entries/{listed['id']}/proposed-identifiers/{phone['id']}/reject",
        json={"reason": "x"},
        headers=reviewer(p),
    )
    assert other.status_code == 404
    publish(client, p, sent["id"])
    ids = identifiers_of(db, listed["subject"]["id"])
    assert ("phone", "+8613900139000") not in ids and ("email", "x@example.cn") in ids
    assert lookup(client, b, "phone", PHONE_B) == []
    with db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "entry.identifier_reject")).all()
    assert len(events) == 1 and events[0].detail["reason"] == "号码属于他人"
    assert "13900139000" not in str(events[0].detail)


def test_a_rejected_entry_gives_its_subject_nothing(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    listed = publish(client, p, submit(client, a, person(RID_A, PHONE_A, **SERIOUS))["id"])
    sent = submit(client, b, person(RID_A, PHONE_B))
    step(client, p, sent["id"], "start_review")
    step(client, p, sent["id"], "reject", reason="证据不足")
    seen = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    assert [(x["status"], x["reason"]) for x in seen["proposed_identifiers"]] == [
        ("rejected", "the entry was rejected")
    ]
    assert ("phone", "+8613900139000") not in identifiers_of(db, listed["subject"]["id"])


def test_a_liable_persons_identifiers_are_proposed_too(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    unit = judicial(liable_persons=[{"role": "legal_representative", "name": "王五", "identifiers": [
        {"type": "resident_id", "value": RID_B}]}])  # fmt: skip
    listed = publish(client, p, submit(client, a, unit)["id"])
    person_entry_id = listed["linked_entry_ids"][0]
    person_subject = client.get(f"/v1/entries/{person_entry_id}", headers=reviewer(p)).json()["subject"]["id"]
    body = judicial(document_number="(2026)京0105刑初125号")
    body["subject"] = {"kind": "unit", "name": "另一公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
    body["liable_persons"] = [{"role": "principal", "name": "王五", "identifiers": [
        {"type": "resident_id", "value": RID_B}, {"type": "phone", "value": PHONE_B}]}]  # fmt: skip
    sent = submit(client, b, body)
    assert lookup(client, b, "phone", PHONE_B) == []
    seen = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    (offered,) = seen["proposed_identifiers"]
    assert offered["party"] == "liable_persons[0]" and offered["subject_id"] == person_subject
    published = publish(client, p, sent["id"])
    assert ("phone", "+8613900139000") in identifiers_of(db, person_subject)
    (found,) = lookup(client, b, "phone", PHONE_B)
    assert found["id"] == person_subject
    new_events = feed(db)
    assert ("updated", person_entry_id) in new_events
    assert ("published", str(published["linked_entry_ids"][0])) in new_events


def test_a_new_subject_has_its_identifiers_from_the_start(client, parties, db):
    p, a = parties["platform"], parties["a"]
    sent = submit(client, a, person(RID_A, PHONE_A))
    seen = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    assert seen["proposed_identifiers"] == [] and seen["resolution_conflicts"] == []
    assert identifiers_of(db, seen["subject"]["id"]) == [
        ("phone", "+8613800138000"),
        ("resident_id", RID_A),
    ]
    assert lookup(client, a, "phone", PHONE_A) == []  # nothing published yet


def test_a_bulk_upload_only_proposes_identifiers(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    listed = publish(client, p, submit(client, a, person(RID_A, PHONE_A, **SERIOUS))["id"])
    before = identifiers_of(db, listed["subject"]["id"])
    header = "subject_kind,subject_name,resident_id,phone,behaviours,role,severity,basis,facts\n"
    row = f"individual,李四,{RID_A},{PHONE_B},order_brushing,participant,minor,enterprise_finding,刷单\n"
    r = client.post(
        "/v1/uploads",
        files={"file": ("rows.csv", (header + row).encode(), "text/csv")},
        headers=b.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201 and r.json()["accepted"] == 1, r.text
    assert identifiers_of(db, listed["subject"]["id"]) == before
    assert lookup(client, b, "phone", PHONE_B) == []
    (mine,) = client.get("/v1/entries?status=submitted", headers=p.headers()).json()["entries"]
    seen = client.get(f"/v1/entries/{mine['id']}?reveal=true", headers=reviewer(p)).json()
    assert seen["subject"]["id"] == listed["subject"]["id"]
    (offered,) = seen["proposed_identifiers"]
    assert (offered["party"], offered["type"], offered["value"], offered["status"]) == (
        "subject",
        "phone",
        "+8613900139000",
        "proposed",
    )
    (mine,) = client.get("/v1/entries?status=submitted", headers=b.headers()).json()["entries"]
    assert mine["subject"]["id"] is None and mine["subject"]["name"] == "李*"


# --- 2. the submitter is told only what it sent -----------------------------------------------------


def test_the_submitter_sees_what_it_sent_not_another_tenants_subject(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    hidden = submit(client, a, person(RID_A, PHONE_A))  # A's, unpublished
    hidden_subject = client.get(f"/v1/entries/{hidden['id']}", headers=reviewer(p)).json()["subject"]
    body = person(RID_A, PHONE_B, name="李四")
    headers = {**b.headers(Role.enterprise_operator), "Idempotency-Key": "b-1"}
    r = client.post("/v1/entries", json=body, headers=headers)
    assert r.status_code == 201, r.text
    expected = {
        "id": None,
        "kind": "individual",
        "name": "李*",
        "identifiers": [
            {"type": "resident_id", "value": mask("resident_id", RID_A)},
            {"type": "phone", "value": mask("phone", PHONE_B)},
        ],
    }
    assert r.json()["subject"] == expected
    later = client.get(f"/v1/entries/{r.json()['id']}", headers=b.headers())
    replay = client.post("/v1/entries", json=body, headers=headers)
    listed = client.get("/v1/entries", headers=b.headers()).json()["entries"]
    for answer in (later.json(), replay.json(), listed[0]):
        assert answer["subject"] == expected
        assert answer.get("proposed_identifiers") is None and answer.get("resolution_conflicts") is None
        assert hidden_subject["id"] not in str(answer) and mask("phone", PHONE_A) not in str(answer)
    # the platform sees the subject it was matched to
    seen = client.get(f"/v1/entries/{r.json()['id']}", headers=reviewer(p)).json()
    assert seen["subject"]["id"] == hidden_subject["id"] and seen["subject"]["name"] == "张*三"


def test_a_kind_mismatch_or_several_subjects_go_to_the_reviewer(client, parties, db):
    p, a, b = parties["platform"], parties["a"], parties["b"]
    submit(client, a, person(RID_A, PHONE_A))  # A's individual, unpublished
    submit(client, a, person(RID_B, "13700137000", name="王五"))
    staff = {
        **person_entry(),
        "subject": {
            "kind": "courier_staff",
            "name": "快递员甲",
            "identifiers": [{"type": "resident_id", "value": RID_A}],
        },
    }
    r = client.post("/v1/entries", json=staff, headers=b.headers(Role.enterprise_operator))
    assert r.status_code == 201, r.text
    assert "individual" not in r.text and r.json()["subject"]["kind"] == "courier_staff"
    seen = client.get(f"/v1/entries/{r.json()['id']}", headers=reviewer(p)).json()
    (note,) = seen["resolution_conflicts"]
    assert note["type"] == "identifier_kind_conflict" and note["subject_kind"] == "individual"
    assert note["field"] == "subject.identifiers[0]"
    # one submission naming two known persons: the reviewer is told which
    both = person(RID_A, PHONE_B)
    both["subject"]["identifiers"].append({"type": "resident_id", "value": RID_B})
    r = client.post("/v1/entries", json=both, headers=b.headers(Role.enterprise_operator))
    assert r.status_code == 201 and r.json()["subject"]["id"] is None
    (note,) = client.get(f"/v1/entries/{r.json()['id']}", headers=reviewer(p)).json()["resolution_conflicts"]
    assert note["type"] == "several_subjects" and len(note["subject_ids"]) == 2


def test_once_published_the_submitter_sees_the_listed_subject(client, parties):
    p, a = parties["platform"], parties["a"]
    sent = submit(client, a, judicial())
    publish(client, p, sent["id"])
    mine = client.get(f"/v1/entries/{sent['id']}", headers=a.headers()).json()
    assert mine["subject"]["id"] is not None and mine["subject"]["identifiers"] == [
        {"type": "uscc", "value": USCC_A}
    ]


# --- 9. evidence names ------------------------------------------------------------------------------


def test_an_evidence_file_name_is_stored_without_its_path(client, parties, db):
    p, a = parties["platform"], parties["a"]
    sent = submit(client, a, judicial())
    r = client.post(
        f"/v1/evidence/{sent['id']}",
        files={"file": ("../../x.txt", b"order 1\n", "text/plain")},
        headers=a.headers(),
    )
    assert r.status_code == 201 and r.json()["filename"] == "x.txt"
    detail = client.get(f"/v1/entries/{sent['id']}", headers=reviewer(p)).json()
    assert [e["filename"] for e in detail["evidence"]] == ["x.txt"]
    with db.session() as s:
        assert s.scalar(select(Evidence.filename)) == "x.txt"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../x.txt", "x.txt"),
        ("..\\..\\windows\\x.txt", "x.txt"),
        ("/etc/passwd", "passwd"),
        ("a\x00b\r\n\x1b[31mc\u202e.txt", "ab[31mc.txt"),
        ("  ..  ", "evidence"),
        ("订单" * 200 + ".pdf", "订单" * 58 + ".pdf"),
        ("x" * 300, "x" * 120),
    ],
)
def test_evidence_display_names(given, shown):
    assert registry.display_filename(given) == shown


# --- 10. a lost race is a 409 -----------------------------------------------------------------------


def test_a_step_that_loses_a_race_is_a_conflict(parties, db):
    a = parties["a"]
    with db.session() as s:
        entry = registry.submit(s, Actor("t"), a.org.id, EntryIn.model_validate(judicial()))
        take_step(s, Actor("t"), entry, Action.start_review)
        entry_id = entry.id
    loser = db.sessionmaker()
    try:
        stale = loser.get(Entry, entry_id)
        version = stale.version
        loser.commit()  # what the loser read stays loaded; its next statement starts afresh
        with db.session() as s:
            take_step(s, Actor("winner"), s.get(Entry, entry_id), Action.publish, expected_version=version)
        with pytest.raises(Conflict, match="at the same time"):
            take_step(loser, Actor("loser"), stale, Action.reject, reason="no", expected_version=version)
        loser.rollback()
    finally:
        loser.close()
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "published"
