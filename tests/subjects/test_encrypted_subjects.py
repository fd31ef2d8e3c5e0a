"""Personal data of subjects encrypted at rest (#14 point 5): no plain resident ID, phone, e-mail or natural
person's name in the rows; exact look-ups through blind indexes; everything else behaves as before."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select, text

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry, ProposedIdentifier, UploadBatch
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import crypto, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import Role
from fanchaoxin.sharing import feed, oprf
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import MergeProposal, Subject
from fanchaoxin.subjects.names import name_key
from fanchaoxin.workflows import subjects as subject_flows
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_A, RID_B, USCC_A, USCC_B, judicial, person_entry

REVIEWER = Actor("test:reviewer")
PHONE_A, PHONE_B, PHONE_C = "+8613800138000", "+8613900139000", "+8613700137000"  # canonical
EMAIL = "zhang.xiaosan@example.com"
PERSON, LIABLE = "张小三", "王大锤"
RID_C = "110101198001010010"
# the national numbers: found in any form a phone could be stored in
SECRETS = [RID_A, RID_B, RID_C, PHONE_A[3:], PHONE_B[3:], PHONE_C[3:], EMAIL, PERSON, LIABLE]
TABLES = [
    "subjects",
    "subject_identifiers",
    "proposed_identifiers",
    "entries",
    "evidence_blobs",
    "upload_batches",
    "audit_events",
    "sharing_identifier_tags",
]


def serious(body):
    body.update(
        basis="judicial_decision",
        document_number="(2026)京0105刑初123号",
        issuing_authority="北京市朝阳区人民法院",
        severity="serious",
    )
    return body


def a_person(*identifiers, name=PERSON):
    body = serious(person_entry())
    body["subject"] = {
        "kind": "individual",
        "name": name,
        "identifiers": [{"type": t, "value": v} for t, v in identifiers],
    }
    return body


def submit(db, org_id, body, *, publish=False):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        if publish:
            take_step(s, REVIEWER, e, Action.start_review)
            take_step(s, REVIEWER, e, Action.publish)
        return e.id


def raw_dump(db) -> str:
    """Every row of the tables that hold subjects, as the database stores them (no type processing)."""
    out = []
    with db.session() as s:
        for table in TABLES:
            for row in s.execute(text(f"SELECT * FROM {table}")):
                out.append(
                    " ".join(
                        bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v)
                        for v in row
                    )
                )
    return "\n".join(out)


def test_rows_hold_no_plain_identifier_or_person_name(db, world, client):
    shop = world.enterprise("甲电商")
    unit = judicial(
        liable_persons=[
            {
                "role": "legal_representative",
                "name": LIABLE,
                "identifiers": [{"type": "resident_id", "value": RID_B}],
            }
        ]
    )
    unit_entry = submit(db, shop.org.id, unit, publish=True)
    submit(
        db, shop.org.id, a_person(("resident_id", RID_A), ("phone", PHONE_A), ("email", EMAIL)), publish=True
    )
    # the same person again with a new phone: proposed, not joined
    submit(db, shop.org.id, a_person(("resident_id", RID_A), ("phone", PHONE_B)))
    with db.session() as s:
        registry.add_evidence(
            s,
            REVIEWER,
            s.get(Entry, unit_entry),
            filename="聊天记录.txt",
            declared_type="text/plain",
            data=f"联系人 {LIABLE} {PHONE_A}".encode(),
        )
    csv = (
        "subject_kind,subject_name,resident_id,phone,behaviours,role,severity,basis,document_number,"
        "issuing_authority,facts\n"
        f"individual,{PERSON},{RID_C},{PHONE_C},order_brushing,participant,minor,enterprise_finding,,,刷单\n"
        f"individual,{PERSON},{RID_C[:-1]}9,,order_brushing,participant,minor,enterprise_finding,,,刷单\n"
    )
    r = client.post(
        "/v1/uploads",
        files={"file": ("entries.csv", csv.encode(), "text/csv")},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 1 and r.json()["rejected_rows"] == 1
    with db.session() as s:
        # the tag cache too
        feed.ensure_tags(s, [("phone", PHONE_A), ("resident_id", RID_A)], [oprf.KeyRing().generate("k1")])

    dump = raw_dump(db)
    assert "fcx1:" in dump
    for secret in [*SECRETS, f"{RID_C[:-1]}9"]:
        assert secret not in dump, secret

    # ... and everything still reads back, found by identifier and by exact name
    with db.session() as s:
        found = subjects.find_by_identifiers(
            s, [("resident_id", RID_A), ("phone", PHONE_C), ("email", EMAIL)]
        )
        assert {p: x.name for p, x in found.items()} == {
            ("resident_id", RID_A): PERSON,
            ("phone", PHONE_C): PERSON,
            ("email", EMAIL): PERSON,
        }
        assert found[("resident_id", RID_A)].id != found[("phone", PHONE_C)].id
        assert {(i.type, i.value) for i in found[("resident_id", RID_A)].identifiers} == {
            ("resident_id", RID_A),
            ("phone", PHONE_A),
            ("email", EMAIL),
        }
        assert {x.name for x in subjects.search_by_name(s, "张 小三")} == {PERSON}
        assert subjects.search_by_name(s, "张小") == []  # no similarity search over persons' names
        liable = subjects.find_by_identifiers(s, [("resident_id", RID_B)])[("resident_id", RID_B)]
        assert liable.name == LIABLE and liable.name_key == vault.blind("name", name_key(LIABLE))
        entry = s.get(Entry, unit_entry)
        _ev, blob = registry.get_evidence_blob(s, entry, entry.evidence[0].digest)
        assert blob.data == f"联系人 {LIABLE} {PHONE_A}".encode()
        assert blob.digest == crypto.active().hexdigest(blob.data)
        sent = s.scalars(select(Entry).where(Entry.subject_id == found[("resident_id", RID_A)].id)).all()
        assert {i["value"] for e in sent for i in e.submitted_subject["identifiers"]} == {
            RID_A,
            PHONE_A,
            PHONE_B,
            EMAIL,
        }


def test_a_proposed_identifier_is_kept_sealed_and_joins_at_publication(db, world):
    shop = world.enterprise()
    submit(db, shop.org.id, a_person(("resident_id", RID_A)), publish=True)
    second = submit(db, shop.org.id, a_person(("resident_id", RID_A), ("phone", PHONE_A)))
    with db.session() as s:
        (p,) = s.scalars(select(ProposedIdentifier)).all()
        assert (p.type, p.value, p.value_index) == (
            "phone",
            PHONE_A,
            vault.identifier_index("phone", PHONE_A),
        )
        assert subjects.find_by_identifiers(s, [("phone", PHONE_A)]) == {}
        e = s.get(Entry, second)
        take_step(s, REVIEWER, e, Action.start_review)
        take_step(s, REVIEWER, e, Action.publish)
    with db.session() as s:
        person = subjects.find_by_identifiers(s, [("phone", PHONE_A)])[("phone", PHONE_A)]
        assert (
            person.id == subjects.find_by_identifiers(s, [("resident_id", RID_A)])[("resident_id", RID_A)].id
        )
        # accepting it again finds it by its blind index: it is the subject's already
        assert subjects.add_identifier(s, person, "phone", PHONE_A) == "had"


def test_merge_and_split_move_identifiers_found_by_blind_index(db, world):
    shop = world.enterprise()
    a = submit(db, shop.org.id, judicial(), publish=True)
    body = judicial()
    body["subject"] = {
        "kind": "unit",
        "name": "北京某某网络科技有限公司",
        "identifiers": [{"type": "uscc", "value": USCC_B}],
    }
    b = submit(db, shop.org.id, body, publish=True)
    with db.session() as s:
        sa, sb = s.get(Entry, a).subject_id, s.get(Entry, b).subject_id
        # similar unit names still propose a merge (units' name keys are plain)
        assert s.scalars(select(MergeProposal)).all()
        merge_id = subject_flows.merge_subjects(s, REVIEWER, sa, sb, reason="同一公司").id
    with db.session() as s:
        found = subjects.find_by_identifiers(s, [("uscc", USCC_A), ("uscc", USCC_B)])
        assert {x.id for x in found.values()} == {sa}
        # what the audit log digests: identifiers as masked (a unit's registration code is public) with
        # their blind index
        logged = s.get(Subject, sa).snapshot()["identifiers"]
        assert f"uscc:{mask('uscc', USCC_B)}:{vault.identifier_index('uscc', USCC_B)}" in logged
        subject_flows.undo_merge(s, REVIEWER, merge_id, reason="不是同一公司")
    with db.session() as s:
        found = subjects.find_by_identifiers(s, [("uscc", USCC_A), ("uscc", USCC_B)])
        assert found[("uscc", USCC_A)].id == sa and found[("uscc", USCC_B)].id == sb


def test_persons_get_no_name_proposals_and_their_audit_snapshot_is_masked(db, world):
    shop = world.enterprise()
    submit(db, shop.org.id, a_person(("resident_id", RID_A)), publish=True)
    submit(db, shop.org.id, a_person(("resident_id", RID_B)), publish=True)
    with db.session() as s:
        people = s.scalars(select(Subject).where(Subject.kind == "individual")).all()
        assert len(people) == 2 and {p.name_key for p in people} == {vault.blind("name", name_key(PERSON))}
        assert s.scalars(select(MergeProposal)).all() == []
        logged = json.dumps([p.snapshot() for p in people], ensure_ascii=False)
        assert PERSON not in logged and RID_A not in logged and "张*三" in logged
        assert mask("resident_id", RID_A) in logged


def test_a_bulk_upload_finds_known_subjects_by_blind_index_and_stores_no_plain_value(client, world, db):
    shop = world.enterprise()
    submit(db, shop.org.id, judicial(), publish=True)
    bad_rid = RID_A[:-1] + "3"  # wrong check digit
    csv = (
        "subject_kind,subject_name,uscc,resident_id,behaviours,role,severity,basis,document_number,"
        "issuing_authority,facts\n"
        f"unit,北京某某网络科技有限公司,{USCC_A},,fake_review,organizer,general,enterprise_finding,,,刷单\n"
        f"individual,{PERSON},,{bad_rid},order_brushing,participant,minor,enterprise_finding,,,刷单\n"
        f"individual,{PERSON},,{RID_B},order_brushing,participant,minor,enterprise_finding,,,刷单\n"
        f"individual,{PERSON},,{RID_B},fake_review,participant,minor,enterprise_finding,,,刷单\n"
    )
    r = client.post(
        "/v1/uploads",
        files={"file": ("entries.csv", csv.encode(), "text/csv")},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 3 and [e["field"] for e in r.json()["errors"]] == ["resident_id"]
    with db.session() as s:
        assert s.query(Subject).count() == 2  # the unit attached; the two rows of one person: one subject
        (batch,) = s.scalars(select(UploadBatch)).all()
        assert bad_rid not in json.dumps(batch.errors)
        person = subjects.find_by_identifiers(s, [("resident_id", RID_B)])[("resident_id", RID_B)]
        (ident,) = person.identifiers
        assert ident.value_index == vault.identifier_index("resident_id", RID_B)
        raw = s.execute(
            text("SELECT value FROM subject_identifiers WHERE value_index = :ix"), {"ix": ident.value_index}
        ).scalar_one()
        assert raw.startswith("fcx1:") and RID_B not in raw
        uid = uuid.UUID(str(person.id))
        assert s.get(Subject, uid).name == PERSON
