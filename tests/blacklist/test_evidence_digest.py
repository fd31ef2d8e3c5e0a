"""Evidence and case attachments addressed by the crypto profile's digest (#18): stored, served and
checked under the platform's profile; re-addressed under another by `readdress_evidence` with every
link and byte kept; migration 0026 renames the columns and keeps the foreign keys on both databases."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from fanchaoxin.appeals.models import CaseAttachment
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.evidence_digest import REFERENCES, EvidenceIntegrityError, readdress_evidence
from fanchaoxin.blacklist.models import Entry, Evidence, EvidenceBlob
from fanchaoxin.core import crypto
from fanchaoxin.core.audit import SYSTEM, AuditEvent
from fanchaoxin.core.roles import Role
from fanchaoxin.models import Base
from tests.appeals.test_appeals import PDF, file_objection, market, outbox, publish, rv  # noqa: F401
from tests.blacklist.registry_helpers import judicial, unit_entry
from tests.subjects.test_migration_encrypted_subjects import EVIDENCE, fresh, seed_at_0008  # noqa: F401

TEXT = "行政处罚决定书 第1号".encode()
INTL, GM = crypto.profile("international"), crypto.profile("gm")


@pytest.fixture
def parties(world):
    return {
        "platform": world.platform(),
        "ent": world.enterprise("甲电商"),
        "other": world.enterprise("乙电商"),
    }


def _other(name: str) -> str:
    return "gm" if name == "international" else "international"


# --- under the platform's profile ---------------------------------------------------------------------


def test_evidence_is_stored_served_and_audited_under_the_profiles_digest(client, parties, db):
    ent, p = parties["ent"], parties["platform"]
    h = ent.headers(Role.enterprise_operator)
    e = client.post("/v1/entries", json=unit_entry(), headers=h).json()
    r = client.post(
        f"/v1/evidence/{e['id']}", files={"file": ("决定书.pdf", PDF, "application/pdf")}, headers=h
    )
    assert r.status_code == 201, r.text
    digest = r.json()["digest"]
    assert "sha256" not in r.json()
    assert digest == crypto.active().hexdigest(PDF)
    assert digest != crypto.profile(_other(crypto.active().name)).hexdigest(PDF)

    got = client.get(f"/v1/evidence/{e['id']}/{digest}", headers=h)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["etag"] == f'"{digest}"' and digest in got.headers["content-disposition"]
    detail = client.get(f"/v1/entries/{e['id']}", headers=p.headers(Role.platform_reviewer)).json()
    assert [x["digest"] for x in detail["evidence"]] == [digest]
    with db.session() as s:
        assert s.get(EvidenceBlob, digest).data == PDF
        details = [
            ev.detail for ev in s.scalars(select(AuditEvent).where(AuditEvent.action.like("%evidence%")))
        ]
    assert {"digest": digest, "size": len(PDF), "media_type": "application/pdf"} in details
    assert {"digest": digest} in details  # the read


def test_case_attachments_share_the_address_and_are_served_under_it(client, market, db):  # noqa: F811
    p = market["platform"]
    entry_id = publish(db, market["shop"].org.id, judicial())
    with db.session() as s:
        ev = registry.add_evidence(
            s, SYSTEM, s.get(Entry, entry_id), filename="a.pdf",
            declared_type="application/pdf", data=PDF,
        )  # fmt: skip
        evidence_digest = ev.digest
    filed = file_objection(client, entry_id)
    url = f"/v1/attachments/objections/{filed['tracking_number']}?secret={filed['secret']}"
    r = client.post(url, files={"file": ("判决书.pdf", PDF, "application/pdf")})
    assert r.status_code == 201, r.text
    digest = r.json()["digest"]
    assert digest == crypto.active().hexdigest(PDF) == evidence_digest  # one file, one blob
    got = client.get(f"/v1/objections/{filed['id']}/attachments/{digest}", headers=rv(p))
    assert got.status_code == 200 and got.content == PDF and got.headers["etag"] == f'"{digest}"'
    listed = client.get(f"/v1/objections/{filed['id']}", headers=rv(p)).json()["attachments"]
    assert [a["digest"] for a in listed] == [digest]
    with db.session() as s:
        assert len(s.scalars(select(EvidenceBlob)).all()) == 1


def test_a_file_that_no_longer_matches_its_address_is_not_served(client, parties, db):
    ent = parties["ent"]
    h = ent.headers(Role.enterprise_operator)
    e = client.post("/v1/entries", json=unit_entry(), headers=h).json()
    digest = client.post(
        f"/v1/evidence/{e['id']}", files={"file": ("a.txt", TEXT, "text/plain")}, headers=h
    ).json()["digest"]
    with db.session() as s:
        s.get(EvidenceBlob, digest).data = TEXT + b" (altered)"
    assert client.get(f"/v1/evidence/{e['id']}/{digest}", headers=h).status_code == 500
    with db.session() as s, pytest.raises(EvidenceIntegrityError, match=digest):
        registry.get_evidence_blob(s, s.get(Entry, uuid.UUID(e["id"])), digest)


# --- re-addressing -----------------------------------------------------------------------------------


def _seed_under(db, profile, entry_ids, objection_id) -> dict[str, bytes]:
    """Files stored as a platform of `profile` stored them: PDF on both entries and on the objection,
    TEXT on the first entry only."""
    with db.session() as s:
        for data in (PDF, TEXT):
            s.add(EvidenceBlob(digest=profile.hexdigest(data), size=len(data), media_type="x", data=data))
        s.flush()
        for i, entry_id in enumerate(entry_ids):
            for data in (PDF, TEXT) if i == 0 else (PDF,):
                s.add(
                    Evidence(
                        entry_id=entry_id, digest=profile.hexdigest(data), filename=f"{i}-{len(data)}",
                        media_type="x", size=len(data), uploaded_by="test",
                    )
                )  # fmt: skip
        s.add(
            CaseAttachment(
                case_type="objection", case_id=uuid.UUID(str(objection_id)), digest=profile.hexdigest(PDF),
                filename="判决书.pdf", media_type="application/pdf", size=len(PDF), uploaded_by="test",
            )
        )  # fmt: skip
    return {"pdf": PDF, "text": TEXT}


def _links(db) -> tuple[list[tuple[str, str]], list[str], dict[str, bytes]]:
    with db.session() as s:
        evidence = sorted((ev.filename, ev.digest) for ev in s.scalars(select(Evidence)))
        attached = [a.digest for a in s.scalars(select(CaseAttachment))]
        blobs = {b.digest: b.data for b in s.scalars(select(EvidenceBlob))}
    return evidence, attached, blobs


def test_readdress_from_international_to_gm_keeps_every_link_and_the_bytes(client, market, db):  # noqa: F811
    p = market["platform"]
    first, second = (
        publish(db, market["shop"].org.id, judicial()),
        publish(db, market["ride"].org.id, judicial()),
    )
    filed = file_objection(client, first)
    _seed_under(db, INTL, [first, second], filed["id"])
    before, _attached, _blobs = _links(db)

    with db.session() as s:
        assert readdress_evidence(s, "gm") == 2
    evidence, attached, blobs = _links(db)
    assert blobs == {GM.hexdigest(PDF): PDF, GM.hexdigest(TEXT): TEXT}  # the old addresses are gone
    by_intl = {INTL.hexdigest(d): GM.hexdigest(d) for d in (PDF, TEXT)}
    assert evidence == sorted((name, by_intl[old]) for name, old in before)
    assert attached == [GM.hexdigest(PDF)]
    with db.session() as s:
        assert readdress_evidence(s, "gm") == 0  # done already: a second run moves nothing

    if crypto.active().name != "gm":
        # served under the platform's profile only: bring the files back to it to download them
        with db.session() as s:
            assert readdress_evidence(s, crypto.active().name) == 2
    address = crypto.active().hexdigest
    h = market["shop"].headers(Role.enterprise_operator)
    for data in (PDF, TEXT):
        got = client.get(f"/v1/evidence/{first}/{address(data)}", headers=h)
        assert got.status_code == 200 and got.content == data and got.headers["etag"] == f'"{address(data)}"'
    got = client.get(
        f"/v1/evidence/{second}/{address(PDF)}", headers=market["ride"].headers(Role.enterprise_operator)
    )
    assert got.status_code == 200 and got.content == PDF
    got = client.get(f"/v1/objections/{filed['id']}/attachments/{address(PDF)}", headers=rv(p))
    assert got.status_code == 200 and got.content == PDF


def test_readdress_refuses_a_damaged_file_and_moves_nothing(client, market, db):  # noqa: F811
    entry_id = publish(db, market["shop"].org.id, judicial())
    filed = file_objection(client, entry_id)
    _seed_under(db, INTL, [entry_id], filed["id"])
    with db.session() as s:  # a file whose address no profile gives it, sorted after the good ones
        s.add(EvidenceBlob(digest="f" * 64, size=3, media_type="x", data=b"bad"))
        s.flush()
        s.add(
            Evidence(
                entry_id=entry_id, digest="f" * 64, filename="bad", media_type="x", size=3, uploaded_by="t"
            )
        )
    before = _links(db)
    with pytest.raises(EvidenceIntegrityError, match="f" * 64), db.session() as s:
        readdress_evidence(s, "gm")
    assert _links(db) == before


def test_every_column_that_points_at_a_file_is_readdressed():
    pointing = {
        (fk.parent.table.name, fk.parent.name)
        for table in Base.metadata.tables.values()
        for fk in table.foreign_keys
        if fk.column.table.name == "evidence_blobs"
    }
    assert pointing == set(REFERENCES)


def test_readdress_names_an_unknown_profile():
    with pytest.raises(crypto.UnknownProfile):
        readdress_evidence(None, "sha1")  # type: ignore[arg-type]


# --- migration 0026 ----------------------------------------------------------------------------------


def test_migration_renames_the_address_columns_and_keeps_the_links(fresh):  # noqa: F811
    fresh.upgrade("0008")
    ids = seed_at_0008(fresh)
    fresh.upgrade("0025")
    sqlite = fresh.engine.dialect.name == "sqlite"
    attachment = {
        "id": "0" * 32 if sqlite else "00000000-0000-0000-0000-000000000000",
        "case": ids["entry"].hex if sqlite else ids["entry"],
    }
    with fresh.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO case_attachments (id, case_type, case_id, sha256, filename, media_type, size, "
                "uploaded_by, created_at) VALUES (:id, 'report', :case, :a, 'f', 'text/plain', 1, 't', :at)"
            ),
            {**attachment, "a": "ab" * 32, "at": "2026-12-01 00:00:00+00:00"},
        )

    fresh.upgrade("0026")
    for _ in range(2):  # there, back, and there again
        with fresh.engine.connect() as conn:
            for table in ("evidence_blobs", "evidence", "case_attachments"):
                assert conn.execute(text(f"SELECT digest FROM {table}")).scalars().all() == ["ab" * 32]
        with fresh.session() as s:
            assert s.get(EvidenceBlob, "ab" * 32).data == EVIDENCE
            assert s.get(Evidence, ids["evidence"]).digest == "ab" * 32
        # the foreign keys still hold: no row may point at a file that is not there
        for table in ("evidence", "case_attachments"):
            with pytest.raises(IntegrityError), fresh.engine.begin() as conn:
                conn.execute(text(f"UPDATE {table} SET digest = :d"), {"d": "cd" * 32})
        command.downgrade(fresh.alembic_config(), "0025")
        with fresh.engine.connect() as conn:
            assert conn.execute(text("SELECT sha256 FROM case_attachments")).scalars().all() == ["ab" * 32]
            assert conn.execute(text("SELECT sha256 FROM evidence")).scalars().all() == ["ab" * 32]
        with pytest.raises(IntegrityError), fresh.engine.begin() as conn:
            conn.execute(text("UPDATE evidence SET sha256 = :d"), {"d": "cd" * 32})
        fresh.upgrade("0026")
