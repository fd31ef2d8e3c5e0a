"""Migration 0009 on a database that already holds subjects: plain values are sealed, blind indexes
computed, the tag cache re-keyed; the subject is still found by its identifier. Downgrade decrypts back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, select, text

from fanchaoxin.blacklist.models import Entry, Evidence, EvidenceBlob, ProposedIdentifier
from fanchaoxin.core import vault
from fanchaoxin.core.db import Database
from fanchaoxin.sharing.models import IdentifierTag
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.names import name_key

RID = "11010519491231002X"
PHONE = "+8613800138000"
USCC = "91110000600037341L"
NAME = "张小三"
EVIDENCE = b"chat log: 13800138000"
FILENAME = f"{NAME}身份证{RID}.txt"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def fresh(backend, tmp_path) -> Iterator[Database]:
    """An empty database of the test's backend, with no revision applied."""
    if backend.name == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/m.db")
        yield db
        db.dispose()
        return
    url = os.environ.get("FCX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"fcx_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(url, schema=schema)
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed_at_0008(db: Database) -> dict[str, uuid.UUID]:
    ids = {
        k: uuid.uuid4()
        for k in ("org", "person", "unit", "rid", "phone", "uscc", "entry", "proposed", "evidence")
    }
    with db.engine.begin() as conn:
        meta = MetaData()
        names = ["organisations", "subjects", "subject_identifiers", "entries", "proposed_identifiers"]
        meta.reflect(conn, only=[*names, "evidence", "evidence_blobs", "sharing_identifier_tags"])
        sqlite = conn.dialect.name == "sqlite"

        def u(x: uuid.UUID) -> object:
            return x.hex if sqlite else x

        t = meta.tables
        conn.execute(
            t["organisations"].insert(),
            {"id": u(ids["org"]), "kind": "enterprise", "name": "甲电商", "business_types": [],
             "active": True, "created_at": NOW, "updated_at": NOW},
        )  # fmt: skip
        conn.execute(
            t["subjects"].insert(),
            [
                {"id": u(ids["person"]), "kind": "individual", "name": NAME, "name_key": name_key(NAME), "created_at": NOW},
                {"id": u(ids["unit"]), "kind": "unit", "name": "某某科技有限公司", "name_key": name_key("某某科技有限公司"),
                 "created_at": NOW},
            ],
        )  # fmt: skip
        conn.execute(
            t["subject_identifiers"].insert(),
            [
                {"id": u(ids["rid"]), "subject_id": u(ids["person"]), "type": "resident_id", "value": RID, "created_at": NOW},
                {"id": u(ids["uscc"]), "subject_id": u(ids["unit"]), "type": "uscc", "value": USCC, "created_at": NOW},
            ],
        )  # fmt: skip
        sent = {"kind": "individual", "name": NAME, "identifiers": [{"type": "resident_id", "value": RID}]}
        conn.execute(
            t["entries"].insert(),
            {"id": u(ids["entry"]), "subject_id": u(ids["person"]), "owner_org_id": u(ids["org"]),
             "shared_with_all": False, "status": "submitted", "behaviours": ["order_brushing"], "role": "participant", "services": [], "severity": "minor",
             "basis": "enterprise_finding", "facts": "刷单", "submitted_at": NOW, "submitted_by": "test",
             "updated_at": NOW, "version": 1, "submitted_subject": sent},
        )  # fmt: skip
        conn.execute(
            t["proposed_identifiers"].insert(),
            {"id": u(ids["proposed"]), "entry_id": u(ids["entry"]), "subject_id": u(ids["person"]), "party": "subject",
             "type": "phone", "value": PHONE, "status": "proposed", "created_at": NOW},
        )  # fmt: skip
        conn.execute(
            t["evidence_blobs"].insert(),
            {"sha256": "ab" * 32, "size": len(EVIDENCE), "media_type": "text/plain", "data": EVIDENCE, "created_at": NOW},
        )  # fmt: skip
        conn.execute(
            t["evidence"].insert(),
            {"id": u(ids["evidence"]), "entry_id": u(ids["entry"]), "sha256": "ab" * 32, "filename": FILENAME,
             "media_type": "text/plain", "size": len(EVIDENCE), "uploaded_by": "test", "created_at": NOW},
        )  # fmt: skip
        conn.execute(
            t["sharing_identifier_tags"].insert(),
            {"key_id": "k1", "type": "resident_id", "value": RID, "tag": "tag-of-rid"},
        )
    return ids


def plain_rows(db: Database) -> None:
    """The rows as 0008 keeps them."""
    with db.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT value FROM subject_identifiers WHERE type = 'resident_id'")
            ).scalar_one()
            == RID
        )
        assert conn.execute(text("SELECT name, name_key FROM subjects WHERE kind = 'individual'")).one() == (
            NAME,
            name_key(NAME),
        )
        assert conn.execute(text("SELECT value FROM sharing_identifier_tags")).scalar_one() == RID
        assert conn.execute(text("SELECT value FROM proposed_identifiers")).scalar_one() == PHONE
        assert bytes(conn.execute(text("SELECT data FROM evidence_blobs")).scalar_one()) == EVIDENCE
        assert conn.execute(text("SELECT filename FROM evidence")).scalar_one() == FILENAME


def test_upgrade_seals_existing_rows_and_the_subject_is_found_by_identifier(fresh):
    fresh.upgrade("0008")
    ids = seed_at_0008(fresh)
    # 0009 alone, there and back: downgrade decrypts to 0008's plain columns (with the same key ring)
    fresh.upgrade("0009")
    command.downgrade(fresh.alembic_config(), "0008")
    plain_rows(fresh)
    fresh.upgrade()

    with fresh.session() as s:
        found = subjects.find_by_identifiers(s, [("resident_id", RID), ("uscc", USCC)])
        person, unit = found[("resident_id", RID)], found[("uscc", USCC)]
        assert (person.id, person.name) == (ids["person"], NAME)
        assert person.name_key == vault.blind("name", name_key(NAME))  # a person's: only as a blind index
        assert unit.name_key == name_key("某某科技有限公司")  # a unit's stays comparable
        assert subjects.search_by_name(s, NAME) == [person]
        entry = s.get(Entry, ids["entry"])
        assert entry.submitted_subject["identifiers"] == [{"type": "resident_id", "value": RID}]
        p = s.get(ProposedIdentifier, ids["proposed"])
        assert (p.value, p.value_index) == (PHONE, vault.identifier_index("phone", PHONE))
        assert s.get(EvidenceBlob, "ab" * 32).data == EVIDENCE
        assert s.get(Evidence, ids["evidence"]).filename == FILENAME
        tag = s.scalars(select(IdentifierTag)).one()
        assert (tag.value_index, tag.tag) == (vault.identifier_index("resident_id", RID), "tag-of-rid")
        # the identifier's unique key moved to the blind index: the same identifier cannot be added twice
        assert subjects.add_identifier(s, unit, "resident_id", RID) == "taken"
        raw = " ".join(
            str(v)
            for table in ("subjects", "subject_identifiers", "entries", "proposed_identifiers", "evidence",
                          "sharing_identifier_tags")
            for row in s.execute(text(f"SELECT * FROM {table}"))
            for v in row
        )  # fmt: skip
        blob = s.execute(text("SELECT data FROM evidence_blobs")).scalar_one()
    for plain in (RID, PHONE[3:], NAME):
        assert plain not in raw
    assert EVIDENCE not in bytes(blob)
