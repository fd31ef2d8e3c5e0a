"""`fcx crypto migrate --to` (#18): the platform moves to the other crypto profile in one transaction and
everything still works under it — look-ups by identifier (blind indexes recomputed), sealed personal data
(re-encrypted), evidence (re-addressed), the audit chain (switched, history kept), the feed (new signing
key, manifest naming the profile) — and a start under the old setting is refused. Runs from whichever
profile this run uses to the other one (the file is marked `crypto`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fanchaoxin.app import create_app
from fanchaoxin.blacklist.models import EvidenceBlob
from fanchaoxin.core import audit, crypto_record, vault
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.crypto import active, profile
from fanchaoxin.core.crypto_record import ProfileMismatch
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import protocol as P
from fanchaoxin.workflows.crypto import migrate
from tests.appeals.test_appeals import PDF, market, outbox, publish  # noqa: F401
from tests.blacklist.registry_helpers import RID_A, judicial, person_entry

OPERATOR = Actor("cli:operator")


@pytest.fixture
def own_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data key ring and sharing keys of this test's own: the migration replaces them."""
    ring = tmp_path / "keys" / "data.json"
    monkeypatch.setenv("FCX_DATA_KEY_FILE", str(ring))
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "sharing"))
    get_settings.cache_clear()
    vault.write_ring(vault.new_ring(ring), exclusive=True)
    vault.forget()
    yield ring
    monkeypatch.undo()
    get_settings.cache_clear()
    vault.forget()


def _other(name: str) -> str:
    return "gm" if name == "international" else "international"


def test_the_platform_moves_to_the_other_profile_and_keeps_working(
    own_keys, client, market, db, monkeypatch  # noqa: F811
):
    here, there = active().name, _other(active().name)
    shop, dept, platform = market["shop"], market["dept"], market["platform"]
    entry_id = publish(db, dept.org.id, judicial(subject=person_entry()["subject"]))
    h = shop.headers(Role.enterprise_operator)
    assert client.post(f"/v1/evidence/{entry_id}", files={"file": ("书.pdf", PDF, "application/pdf")},
                       headers=dept.headers(Role.department_officer)).status_code == 201  # fmt: skip
    before = client.get(f"/v1/lookup?type=resident_id&value={RID_A}", headers=h).json()["subjects"]
    assert [s["entries"][0]["id"] for s in before] == [str(entry_id)]
    node = shop.headers(Role.enterprise_node)
    assert client.get("/v1/sharing/manifest", headers=node).json()["manifest"]["crypto_profile"] == here

    done = migrate(db, there, OPERATOR)
    assert done.database_migrated and (done.from_profile, done.to_profile) == (here, there)
    assert done.resealed > 0 and done.reindexed > 0 and done.evidence_readdressed == 1
    assert done.signing_key_changed and done.snapshot_seq is not None
    assert done.log_key  # the transparency log's key follows the profile
    assert vault.read_ring(own_keys).profile == there
    assert done.ring_backup is not None and vault.read_ring(done.ring_backup).profile == here

    # Until the setting follows the record, the platform refuses to start.
    with pytest.raises(ProfileMismatch, match=f"fcx crypto migrate --to {here}"):
        crypto_record.check(db.engine)
    monkeypatch.setenv("FCX_CRYPTO_PROFILE", there)
    get_settings.cache_clear()
    vault.forget()
    assert crypto_record.check(db.engine) == there

    with db.session() as s:
        result = audit.verify(s)
        assert result.ok, result.reason
        switched = s.scalars(select(AuditEvent).where(AuditEvent.action == "crypto.profile_changed")).one()
        assert switched.id == done.audit_seq and switched.detail["to"] == there
        assert [b.digest for b in s.scalars(select(EvidenceBlob))] == [profile(there).hexdigest(PDF)]
    assert [p.profile.name for p in crypto_record.periods(db.engine)] == [here, there]

    with TestClient(create_app(get_settings(), db=db), raise_server_exceptions=False) as moved:
        after = moved.get(f"/v1/lookup?type=resident_id&value={RID_A}", headers=h).json()["subjects"]
        assert [s["entries"][0]["id"] for s in after] == [str(entry_id)]
        detail = moved.get(
            f"/v1/entries/{entry_id}?reveal=true", headers=platform.headers(Role.platform_reviewer)
        )
        assert detail.status_code == 200 and detail.json()["subject"]["name"] == "张小三"
        digest = profile(there).hexdigest(PDF)
        got = moved.get(f"/v1/evidence/{entry_id}/{digest}", headers=dept.headers(Role.department_officer))
        assert got.status_code == 200 and got.content == PDF
        document = moved.get("/v1/sharing/manifest", headers=node).json()
        public = sharing_keys.load(get_settings().sharing_key_dir).signing.public
        assert P.verify_manifest(document, public)["crypto_profile"] == there
        assert len(public) == profile(there).public_key_size

        log_key = moved.get("/v1/log/key", headers=node).json()
        assert log_key["vkeys"][0] == done.log_key or done.log_key in log_key["vkeys"]

    again = migrate(db, there, OPERATOR)  # a second run finds everything done
    assert not again.database_migrated and not again.signing_key_changed and not again.log_key


def test_an_unknown_profile_is_refused_before_anything_is_written(own_keys, db):
    with pytest.raises(ValueError, match="unknown crypto profile 'sm9'"):
        migrate(db, "sm9", OPERATOR)
    assert [p.profile.name for p in crypto_record.periods(db.engine)] == [active().name]
