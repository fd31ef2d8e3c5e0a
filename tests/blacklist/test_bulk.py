"""Bulk submission through the API: per-row report, all-or-nothing, idempotency, one subject per identifier."""

import json

from sqlalchemy import func, select

from fanchaoxin.blacklist.models import Entry, UploadBatch
from fanchaoxin.core import audit
from fanchaoxin.core.roles import Role
from fanchaoxin.subjects.models import Subject
from tests.blacklist.registry_helpers import judicial, person_entry

HEADER = "subject_kind,subject_name,uscc,resident_id,behaviours,role,severity,basis,document_number,issuing_authority,facts\n"
GOOD = [
    "unit,北京某某网络科技有限公司,91110000600037341L,,order_brushing;fake_review,organizer,general,enterprise_finding,,,组织刷单\n",
    "unit,北京某某网络科技有限责任公司,91110000600037341L,,fake_review,organizer,general,enterprise_finding,,,虚假评价\n",
    "individual,张小三,,11010519491231002X,order_brushing,participant,minor,administrative_penalty,京市监罚〔2026〕12号,北京市市场监督管理局,参与刷单\n",
]
BAD_USCC = "unit,某公司,91110000600037341X,,order_brushing,organizer,general,enterprise_finding,,,刷单\n"
NO_DOC = "unit,某公司2,91330100MA2D7K8Q9U,,order_brushing,organizer,general,judicial_decision,,,刷单\n"


def post(client, tenant, text, *, encoding="utf-8", all_or_nothing=False, key=None, name="entries.csv"):
    headers = tenant.headers(Role.enterprise_operator)
    if key:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/v1/uploads?all_or_nothing={'true' if all_or_nothing else 'false'}",
        files={"file": (name, text.encode(encoding), "text/csv")},
        headers=headers,
    )


def counts(db):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Entry)), s.scalar(
            select(func.count()).select_from(Subject)
        )


def test_valid_rows_accepted_with_a_per_row_report(client, world, db):
    ent = world.enterprise()
    r = post(client, ent, HEADER + "".join(GOOD) + BAD_USCC + NO_DOC, encoding="gbk")
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["encoding"] == "gbk" and out["total_rows"] == 5
    assert out["accepted"] == 3 and out["rejected_rows"] == 2
    assert {(e["row"], e["field"]) for e in out["errors"]} == {(5, "uscc"), (6, "document_number")}
    # the two rows with one USCC are one subject
    assert counts(db) == (3, 2)
    with db.session() as s:
        assert audit.verify(s).ok
        batch = s.get(UploadBatch, __import__("uuid").UUID(out["batch_id"]))
        assert batch.accepted == 3 and len(batch.errors) == 2
    listed = client.get("/v1/entries", headers=ent.headers(Role.enterprise_operator)).json()["entries"]
    assert len(listed) == 3 and all(e["status"] == "submitted" for e in listed)


def test_all_or_nothing_writes_nothing(client, world, db):
    ent = world.enterprise()
    r = post(client, ent, HEADER + "".join(GOOD) + BAD_USCC, all_or_nothing=True)
    assert r.status_code == 422, r.text
    assert r.json()["accepted"] == 0 and r.json()["errors"][0]["row"] == 5
    assert counts(db) == (0, 0)


def test_repeat_with_the_same_key_writes_nothing(client, world, db):
    ent = world.enterprise()
    first = post(client, ent, HEADER + "".join(GOOD), key="batch-2026-11-27")
    again = post(client, ent, HEADER + "".join(GOOD), key="batch-2026-11-27")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert counts(db) == (3, 2)
    other = post(client, ent, HEADER + GOOD[0], key="batch-2026-11-27")
    assert other.status_code == 409


def test_a_known_identifier_of_another_kind_goes_to_the_reviewer_not_the_submitter(client, world, db):
    ent, other, platform = world.enterprise(), world.enterprise(), world.platform()
    assert post(client, ent, HEADER + GOOD[0]).status_code == 201
    courier = "courier_company,某快递,91110000600037341L,,empty_parcel,facilitator,general,enterprise_finding,,,空包\n"
    r = post(client, other, HEADER + courier + GOOD[2])
    # the row report says nothing of the unit another enterprise reported (unpublished)
    assert r.status_code == 201 and r.json()["accepted"] == 2 and r.json()["errors"] == []
    assert "unit" not in r.text
    mine = client.get("/v1/entries", headers=other.headers(Role.enterprise_operator)).json()["entries"]
    sent = next(e for e in mine if e["subject"]["kind"] == "courier_company")
    assert sent["subject"] == {
        "id": None,
        "kind": "courier_company",
        "name": "某快递",
        "identifiers": [{"type": "uscc", "value": "91110000600037341L"}],
    }
    seen = client.get(f"/v1/entries/{sent['id']}", headers=platform.headers(Role.platform_reviewer)).json()
    (note,) = seen["resolution_conflicts"]
    assert note["type"] == "identifier_kind_conflict" and note["subject_kind"] == "unit"
    assert note["field"] == "subject.identifiers[0]"
    assert seen["subject"]["kind"] == "courier_company" and seen["subject"]["identifiers"] == []


def test_unusable_file_is_one_clear_error(client, world, db):
    ent = world.enterprise()
    r = post(client, ent, "subject_kind,subject_name,colour\nunit,x,red\n")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "colour" in r.json()["detail"]
    r = client.post(
        "/v1/uploads",
        files={"file": ("x.csv", (HEADER + GOOD[0]).encode("utf-16"), "text/csv")},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 422
    assert counts(db) == (0, 0)


def test_jsonl_upload(client, world, db):

    ent = world.enterprise()
    text = (
        json.dumps(judicial(), ensure_ascii=False)
        + "\n"
        + json.dumps(person_entry(), ensure_ascii=False)
        + "\n"
    )
    r = client.post(
        "/v1/uploads",
        files={"file": ("e.jsonl", text.encode(), "application/x-ndjson")},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "jsonl" and r.json()["accepted"] == 2
