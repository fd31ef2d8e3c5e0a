"""The blacklist registry through the API: submission, lifecycle, liable persons, feed, tenancy."""

import threading
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import TRANSITIONS, Action, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import crypto
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.errors import Conflict
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.subjects.models import MergeProposal, Subject
from fanchaoxin.workflows.entries import take_step
from fanchaoxin.workflows.jobs import run_jobs
from tests.blacklist.registry_helpers import RID_A, RID_B, USCC_A, USCC_B, judicial, person_entry, unit_entry


@pytest.fixture
def parties(world):
    return {
        "platform": world.platform(),
        "ent": world.enterprise("甲电商"),
        "other": world.enterprise("乙电商"),
    }


def submit(client, tenant, body, role=Role.enterprise_operator, **headers):
    r = client.post("/v1/entries", json=body, headers={**tenant.headers(role), **headers})
    assert r.status_code == 201, r.text
    return r.json()


def step(client, platform, entry, action, reason="", expect=200):
    r = client.post(
        f"/v1/entries/{entry['id']}/transitions",
        json={"action": action, "reason": reason, "version": entry["version"]},
        headers=platform.headers(Role.platform_reviewer),
    )
    assert r.status_code == expect, r.text
    return r.json()


def count(db, model):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def end_notice(db, entry_id):
    with db.session() as s:
        s.execute(
            update(Entry)
            .where(Entry.id == uuid.UUID(entry_id))
            .values(notice_ends_on=date.today() - timedelta(days=2))
        )


def test_enterprise_finding_walks_review_notice_publication(client, parties, db):
    p, ent = parties["platform"], parties["ent"]
    e = submit(client, ent, unit_entry())
    assert e["status"] == "submitted"
    assert e["subject"]["name"] == "北京某某网络科技有限责任公司"
    e = step(client, p, e, "start_review")
    # an enterprise finding cannot skip the notice period
    step(client, p, e, "publish", expect=409)
    e = step(client, p, e, "open_notice")
    assert e["status"] == "notice_period" and e["notice_ends_on"]
    # five PRC working days at least five calendar days away
    assert date.fromisoformat(e["notice_ends_on"]) >= date.today() + timedelta(days=5)
    step(client, p, e, "publish", expect=409)
    end_notice(db, e["id"])
    e = client.get(f"/v1/entries/{e['id']}", headers=p.headers(Role.platform_reviewer)).json()
    e = step(client, p, e, "publish")
    assert e["status"] == "published"
    assert e["published_at"] and e["min_end_on"] and e["max_end_on"]
    assert [t["action"] for t in e["timeline"]] == ["submit", "start_review", "open_notice", "publish"]
    with db.session() as s:
        events = list(s.scalars(select(FeedEvent)))
    assert [(ev.seq, ev.event) for ev in events] == [(1, "published")]
    assert events[0].record["subject_name"] == "北京某某网络科技有限责任公司"


def test_judicial_basis_publishes_at_once_with_its_periods(client, parties):
    p, ent = parties["platform"], parties["ent"]
    e = submit(client, ent, judicial())
    e = step(client, p, step(client, p, e, "start_review"), "publish")
    assert e["status"] == "published"
    published = date.fromisoformat(e["min_end_on"])
    assert date.fromisoformat(e["max_end_on"]).year - published.year == 2  # serious: 1 to 3 years


def test_rejection_needs_a_reason(client, parties):
    p, ent = parties["platform"], parties["ent"]
    e = step(client, p, submit(client, ent, unit_entry()), "start_review")
    r = client.post(
        f"/v1/entries/{e['id']}/transitions",
        json={"action": "reject", "reason": "", "version": e["version"]},
        headers=p.headers(Role.platform_reviewer),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    e = step(client, p, e, "reject", reason="证据不足")
    assert e["status"] == "rejected" and e["end_reason"] == "证据不足"
    step(client, p, e, "start_review", expect=409)


def test_every_transition_of_the_state_machine(client, parties, db):
    """Each (status, action) pair: the allowed ones move, every other one is a 409."""

    p, ent = parties["platform"], parties["ent"]
    n = 0

    def fresh_in(status):
        nonlocal n
        n += 1
        body = judicial(
            subject={
                "kind": "website",
                "name": f"site{n}",
                "identifiers": [{"type": "domain", "value": f"s{n}.example.cn"}],
            }
        )
        e = submit(client, ent, body)
        path = {
            Status.submitted: [],
            Status.under_review: ["start_review"],
            Status.rejected: ["start_review", ("reject", "r")],
            Status.notice_period: ["start_review", "open_notice"],
            Status.published: ["start_review", "publish"],
            Status.disputed: ["start_review", "publish", ("dispute", "objection filed")],
            Status.revoked: ["start_review", "publish", ("revoke", "wrong subject")],
            Status.expired: None,
            Status.repaired: None,
        }[status]
        if path is None:
            return None
        for a in path:
            action, reason = a if isinstance(a, tuple) else (a, "")
            e = step(client, p, e, action, reason)
        assert e["status"] == status.value
        return e

    for status in Status:
        for action in Action:
            if action == Action.expire:
                continue  # only the scheduler expires (tested below)
            e = fresh_in(status)
            if e is None:
                continue
            if action == Action.repair and (status, action) in TRANSITIONS:
                # possible only after the minimum period
                step(client, p, e, "repair", reason="整改完毕", expect=409)
                with db.session() as s:
                    s.execute(
                        update(Entry).where(Entry.id == uuid.UUID(e["id"])).values(min_end_on=date.today())
                    )
                e = client.get(f"/v1/entries/{e['id']}", headers=p.headers(Role.platform_reviewer)).json()
            if status == Status.notice_period and action == Action.publish:
                end_notice(db, e["id"])  # the guard itself is tested above
            allowed = (status, action) in TRANSITIONS
            out = step(client, p, e, action.value, reason="because", expect=200 if allowed else 409)
            if allowed:
                assert out["status"] == TRANSITIONS[(status, action)].value, (status, action)


def test_scheduler_expires_at_the_maximum_period(client, parties, db):
    p, ent = parties["platform"], parties["ent"]
    e = step(client, p, step(client, p, submit(client, ent, judicial()), "start_review"), "publish")
    with db.session() as s:
        assert run_jobs(s)["expired"] == 0
        s.execute(update(Entry).where(Entry.id == uuid.UUID(e["id"])).values(max_end_on=date.today()))
    with db.session() as s:
        assert run_jobs(s)["expired"] == 1
    got = client.get(f"/v1/entries/{e['id']}", headers=p.headers(Role.platform_reviewer)).json()
    assert got["status"] == "expired"
    feed = client.get("/v1/feed", headers=ent.headers(Role.enterprise_node)).json()
    assert [ev["event"] for ev in feed["events"]] == ["published", "expired"]
    assert feed["head"] == 2


def test_liable_persons_are_published_and_ended_with_the_unit(client, parties, db):
    p, ent = parties["platform"], parties["ent"]
    body = judicial(
        liable_persons=[
            {
                "role": "legal_representative",
                "name": "李四",
                "identifiers": [{"type": "resident_id", "value": RID_B}],
            }
        ]
    )
    e = step(client, p, step(client, p, submit(client, ent, body), "start_review"), "publish")
    assert len(e["linked_entry_ids"]) == 1
    linked = client.get(
        f"/v1/entries/{e['linked_entry_ids'][0]}", headers=p.headers(Role.platform_reviewer)
    ).json()
    assert linked["status"] == "published"
    assert linked["liable_role"] == "legal_representative" and linked["parent_entry_id"] == e["id"]
    assert linked["subject"]["name"] == "李*"
    assert "*" in linked["subject"]["identifiers"][0]["value"]
    # the linked entry cannot be acted on by itself
    step(client, p, linked, "revoke", reason="x", expect=409)
    step(client, p, e, "revoke", reason="认定错误")
    # a revoked entry is gone for everyone but the platform admin and the auditor (appeals: restoration)
    assert (
        client.get(f"/v1/entries/{linked['id']}", headers=p.headers(Role.platform_reviewer)).status_code
        == 404
    )
    linked = client.get(f"/v1/entries/{linked['id']}", headers=p.headers(Role.platform_admin)).json()
    assert linked["status"] == "revoked"
    feed = client.get("/v1/feed", headers=ent.headers(Role.enterprise_node)).json()["events"]
    assert [ev["event"] for ev in feed] == ["published", "published", "revoked", "revoked"]
    person_record = feed[1]["record"]
    assert "subject_name" not in person_record and "identifiers" not in person_record


def test_bad_input_names_the_field_and_writes_nothing(client, parties, db):
    ent = parties["ent"]
    before = (count(db, Entry), count(db, Subject), count(db, AuditEvent))
    cases = [
        (unit_entry(behaviours=["order_brushing", "teleportation"]), "behaviours[1]"),
        (
            unit_entry(
                subject={
                    "kind": "unit",
                    "name": "x",
                    "identifiers": [{"type": "uscc", "value": "91110000600037341X"}],
                }
            ),
            "subject.identifiers[0].value",
        ),
        (unit_entry(basis="administrative_penalty"), "document_number"),
        (unit_entry(occurred_from="2030-01-01"), "occurred_from"),
        (unit_entry(occurred_from="2026-02-30"), "occurred_from"),
        (
            unit_entry(
                subject={
                    "kind": "website",
                    "name": "x",
                    "identifiers": [{"type": "resident_id", "value": RID_B}],
                }
            ),
            "subject.identifiers[0]",
        ),
        (unit_entry(severity="apocalyptic"), "severity"),
        (unit_entry(colour="red"), "colour"),
        (unit_entry(services=["funding"]), "services"),
    ]
    for body, field in cases:
        r = client.post("/v1/entries", json=body, headers=ent.headers(Role.enterprise_operator))
        assert r.status_code == 422, (field, r.text)
        fields = [e["field"] for e in r.json()["errors"]]
        assert field in fields, (field, fields)
    assert (count(db, Entry), count(db, Subject), count(db, AuditEvent)) == before


def resolved(client, platform, entry):
    """The entry as the platform sees it: with the subject it was matched to (a submitter sees what it sent)."""
    r = client.get(f"/v1/entries/{entry['id']}", headers=platform.headers(Role.platform_reviewer))
    assert r.status_code == 200, r.text
    return r.json()


def test_entity_resolution_by_identifier_and_name_proposals(client, parties, db):
    p, ent = parties["platform"], parties["ent"]
    a = resolved(client, p, submit(client, ent, unit_entry()))
    b = submit(
        client,
        ent,
        unit_entry(
            subject={
                "kind": "unit",
                "name": "北京某某网络科技有限公司",
                "identifiers": [{"type": "uscc", "value": "９１１１００００６０００３７３４１Ｌ"}],
            }
        ),
    )
    assert a["subject"]["id"] == resolved(client, p, b)["subject"]["id"]
    # a similar name with another USCC is a different subject: a proposal, never a merge
    c = submit(
        client,
        ent,
        unit_entry(
            subject={
                "kind": "unit",
                "name": "北京某某某网络科技有限公司",
                "identifiers": [{"type": "uscc", "value": USCC_B}],
            }
        ),
    )
    c = resolved(client, p, c)
    assert c["subject"]["id"] != a["subject"]["id"]
    props = client.get("/v1/merge-proposals", headers=p.headers(Role.platform_reviewer)).json()
    assert len(props) == 1 and props[0]["reason"] == "similar name" and props[0]["score"] >= 90
    # an identifier known under another kind of subject: the reviewer is told, the submitter is not
    r = client.post(
        "/v1/entries",
        json=unit_entry(
            subject={
                "kind": "courier_company",
                "name": "某快递",
                "identifiers": [{"type": "uscc", "value": USCC_A}],
            }
        ),
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201 and r.json()["subject"]["kind"] == "courier_company"
    (note,) = resolved(client, p, r.json())["resolution_conflicts"]
    assert note["field"] == "subject.identifiers[0]" and note["subject_id"] == a["subject"]["id"]
    # merge, then undo
    m = client.post(
        "/v1/subjects/merge",
        json={"survivor_id": a["subject"]["id"], "merged_id": c["subject"]["id"], "reason": "同一企业"},
        headers=p.headers(Role.platform_reviewer),
    )
    assert m.status_code == 200, m.text
    got = client.get(f"/v1/entries/{c['id']}", headers=p.headers(Role.platform_reviewer)).json()
    assert got["subject"]["id"] == a["subject"]["id"]
    with db.session() as s:
        assert s.scalar(select(MergeProposal.status)) == "merged"
    u = client.post(
        f"/v1/merges/{m.json()['id']}/undo",
        json={"reason": "误合并"},
        headers=p.headers(Role.platform_reviewer),
    )
    assert u.status_code == 200, u.text
    got = client.get(f"/v1/entries/{c['id']}", headers=p.headers(Role.platform_reviewer)).json()
    assert got["subject"]["id"] == c["subject"]["id"]
    subj = client.get(f"/v1/subjects/{c['subject']['id']}", headers=p.headers(Role.platform_reviewer)).json()
    assert subj["merged_into_id"] is None and subj["identifiers"] == [{"type": "uscc", "value": USCC_B}]


def test_split_moves_identifiers_and_entries(client, parties):
    p, ent = parties["platform"], parties["ent"]
    e = resolved(client, p, submit(client, ent, person_entry()))
    subj = client.get(f"/v1/subjects/{e['subject']['id']}", headers=p.headers(Role.platform_reviewer)).json()
    phone_id = subj["identifier_ids"][1]
    r = client.post(
        f"/v1/subjects/{subj['id']}/split",
        json={
            "identifier_ids": [phone_id],
            "entry_ids": [e["id"]],
            "name": "王五",
            "reason": "手机号属于他人",
        },
        headers=p.headers(Role.platform_reviewer),
    )
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] != subj["id"] and len(new["identifiers"]) == 1
    assert (
        client.get(f"/v1/entries/{e['id']}", headers=p.headers(Role.platform_reviewer)).json()["subject"][
            "id"
        ]
        == new["id"]
    )


def test_tenants_see_own_submissions_and_published_entries_only(client, parties):
    p, ent, other = parties["platform"], parties["ent"], parties["other"]
    draft = submit(client, ent, unit_entry())
    pub = step(
        client,
        p,
        step(
            client,
            p,
            submit(
                client,
                ent,
                judicial(
                    subject={
                        "kind": "unit",
                        "name": "某公司",
                        "identifiers": [{"type": "uscc", "value": USCC_B}],
                    }
                ),
            ),
            "start_review",
        ),
        "publish",
    )
    h = other.headers(Role.enterprise_operator)
    assert client.get(f"/v1/entries/{draft['id']}", headers=h).status_code == 404
    shared = client.get(f"/v1/entries/{pub['id']}", headers=h)
    assert shared.status_code == 200
    assert shared.json()["facts"] is None and shared.json()["timeline"] is None
    ids = {x["id"] for x in client.get("/v1/entries", headers=h).json()["entries"]}
    assert ids == {pub["id"]}
    own = {
        x["id"]
        for x in client.get("/v1/entries", headers=ent.headers(Role.enterprise_operator)).json()["entries"]
    }
    assert own == {draft["id"], pub["id"]}
    # enterprises do not review
    r = client.post(
        f"/v1/entries/{draft['id']}/transitions",
        json={"action": "start_review", "version": 1},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 403


def test_personal_identifiers_are_masked_and_reveal_is_audited(client, parties, db):
    p, ent = parties["platform"], parties["ent"]
    e = submit(client, ent, person_entry())
    assert e["subject"]["name"] == "张*三"
    values = [i["value"] for i in e["subject"]["identifiers"]]
    assert values == [mask("resident_id", RID_A), mask("phone", "13800138000")]
    assert (
        client.get(
            f"/v1/entries/{e['id']}?reveal=true", headers=ent.headers(Role.enterprise_operator)
        ).status_code
        == 403
    )
    full = client.get(f"/v1/entries/{e['id']}?reveal=true", headers=p.headers(Role.platform_reviewer)).json()
    assert full["subject"]["identifiers"][0]["value"] == "11010519491231002X"
    with db.session() as s:
        reads = s.scalars(select(AuditEvent).where(AuditEvent.action == "pii.read")).all()
    assert len(reads) == 1 and reads[0].target_id == full["subject"]["id"]


def test_optimistic_locking(client, parties, db, backend):
    p, ent = parties["platform"], parties["ent"]
    e = step(client, p, submit(client, ent, judicial()), "start_review")
    stale = dict(e)
    step(client, p, e, "publish")
    r = client.post(
        f"/v1/entries/{stale['id']}/transitions",
        json={"action": "revoke", "reason": "x", "version": stale["version"]},
        headers=p.headers(Role.platform_reviewer),
    )
    assert r.status_code == 409 and "changed since you read it" in r.json()["detail"]


def test_two_reviewers_at_once_one_wins(parties, db):

    ent = parties["ent"]
    with db.session() as s:
        entry = registry.submit(s, Actor("t"), ent.org.id, EntryIn.model_validate(judicial()))
        take_step(s, Actor("t"), entry, Action.start_review)
        entry_id, version = entry.id, entry.version
    barrier = threading.Barrier(2)
    results = []

    def reviewer(action, reason):

        try:
            with db.session() as s:
                e = s.get(Entry, entry_id)
                barrier.wait()
                take_step(s, Actor(f"r-{action}"), e, Action(action), reason=reason, expected_version=version)
            results.append("ok")
        except Conflict:
            results.append("409")
        except Exception as exc:  # a database-level serialisation error counts as losing too
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=reviewer, args=a) for a in (("publish", ""), ("reject", "no"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0] == "409" or results.count("ok") == 1, results
    assert results.count("ok") == 1, results


def test_feed_is_gap_free_under_concurrent_publication(parties, db):

    ent = parties["ent"]
    ids = []
    with db.session() as s:
        for i in range(12):
            body = judicial(
                subject={
                    "kind": "website",
                    "name": f"site{i}",
                    "identifiers": [{"type": "domain", "value": f"w{i}.example.cn"}],
                }
            )
            entry = registry.submit(s, Actor("t"), ent.org.id, EntryIn.model_validate(body))
            take_step(s, Actor("t"), entry, Action.start_review)
            ids.append(entry.id)
    errors = []

    def publisher(chunk):
        try:
            for entry_id in chunk:
                with db.session() as s:
                    take_step(s, Actor("p"), s.get(Entry, entry_id), Action.publish)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with db.session() as s:
        seqs = [ev.seq for ev in s.scalars(select(FeedEvent).order_by(FeedEvent.seq))]
        entries = {ev.entry_id for ev in s.scalars(select(FeedEvent))}
    assert seqs == list(range(1, 13))
    assert entries == set(ids)


def test_idempotency_key(client, parties, db):
    ent = parties["ent"]
    a = submit(client, ent, unit_entry(), **{"Idempotency-Key": "abc-1"})
    r = client.post(
        "/v1/entries",
        json=unit_entry(),
        headers={**ent.headers(Role.enterprise_operator), "Idempotency-Key": "abc-1"},
    )
    assert r.status_code == 201 and r.json()["id"] == a["id"]
    assert r.headers["idempotent-replayed"] == "true"
    assert count(db, Entry) == 1
    r = client.post(
        "/v1/entries",
        json=unit_entry(facts="不同"),
        headers={**ent.headers(Role.enterprise_operator), "Idempotency-Key": "abc-1"},
    )
    assert r.status_code == 409
    assert count(db, Entry) == 1


def test_evidence_is_content_addressed_and_type_checked(client, parties):
    p, ent, other = parties["platform"], parties["ent"], parties["other"]
    e = submit(client, ent, unit_entry())
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n%%EOF\n"
    h = ent.headers(Role.enterprise_operator)
    r = client.post(
        f"/v1/evidence/{e['id']}", files={"file": ("订单截图.pdf", pdf, "application/pdf")}, headers=h
    )
    assert r.status_code == 201, r.text

    assert r.json()["digest"] == crypto.active().hexdigest(pdf)  # the profile's digest
    again = client.post(
        f"/v1/evidence/{e['id']}", files={"file": ("copy.pdf", pdf, "application/pdf")}, headers=h
    )
    assert again.json()["digest"] == r.json()["digest"]
    bad = client.post(
        f"/v1/evidence/{e['id']}",
        files={"file": ("x.exe", b"MZ\x90\x00\x03" + b"\x00" * 100, "application/pdf")},
        headers=h,
    )
    assert bad.status_code == 415 and bad.json()["errors"][0]["field"] == "file"
    lie = client.post(f"/v1/evidence/{e['id']}", files={"file": ("x.png", pdf, "image/png")}, headers=h)
    assert lie.status_code == 415
    got = client.get(f"/v1/evidence/{e['id']}/{r.json()['digest']}", headers=h)
    assert got.status_code == 200 and got.content == pdf
    assert (
        client.get(
            f"/v1/evidence/{e['id']}/{r.json()['digest']}", headers=other.headers(Role.enterprise_operator)
        ).status_code
        == 404
    )
    detail = client.get(f"/v1/entries/{e['id']}", headers=p.headers(Role.platform_reviewer)).json()
    assert len(detail["evidence"]) == 1


def test_evidence_size_limit(client, parties, monkeypatch):

    ent = parties["ent"]
    e = submit(client, ent, unit_entry())
    monkeypatch.setattr(get_settings(), "evidence_max_bytes", 1000)
    r = client.post(
        f"/v1/evidence/{e['id']}",
        files={"file": ("big.txt", b"a" * 2000, "text/plain")},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 413


def test_information_service_lookup(client, parties, db):
    p, ent, other = parties["platform"], parties["ent"], parties["other"]
    submit(client, ent, unit_entry())  # not published: invisible to lookups
    h = other.headers(Role.enterprise_operator)
    assert client.get(f"/v1/lookup?type=uscc&value={USCC_A}", headers=h).json()["subjects"] == []
    pe = submit(
        client,
        ent,
        person_entry(
            basis="administrative_penalty",
            document_number="京市监罚〔2026〕12号",
            issuing_authority="北京市市场监督管理局",
        ),
    )
    step(client, p, step(client, p, pe, "start_review"), "publish")
    r = client.get("/v1/lookup?type=phone&value=138-0013-8000", headers=h)
    assert r.status_code == 200, r.text
    found = r.json()["subjects"]
    assert len(found) == 1 and found[0]["name"] == "张*三"
    assert all("*" in i["value"] for i in found[0]["identifiers"])
    assert found[0]["entries"][0]["status"] == "published"
    by_name = client.get("/v1/lookup?name=张小三", headers=h).json()["subjects"]
    assert len(by_name) == 1
    bad = client.get("/v1/lookup?type=phone&value=12345", headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "value"
    with db.session() as s:
        lookups = s.scalars(select(AuditEvent).where(AuditEvent.action == "lookup")).all()
    assert len(lookups) == 3  # the refused one wrote nothing
    assert all("13800138000" not in str(ev.detail) for ev in lookups)
