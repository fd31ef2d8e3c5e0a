"""The core's places wired to the crypto profile (#18): the audit chain across a change of profile, signed
checkpoints, the data key ring and blind indexes, the change of profile of the data at rest
(``rekey.migrate_profile``), stored secret hashes and passwords. Runs under either profile (``make test``
runs it again with FCX_CRYPTO_PROFILE=gm); each test names the profiles it needs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from fanchaoxin.appeals.models import Report
from fanchaoxin.blacklist.models import EvidenceBlob
from fanchaoxin.core import audit, crypto, crypto_record, rekey, vault
from fanchaoxin.core.audit import Actor, AuditCheckpoint, AuditEvent
from fanchaoxin.core.crypto_record import CryptoProfilePeriod
from fanchaoxin.core.idempotency import request_hash
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.vault import DataKeyError
from fanchaoxin.orgs.models import ApiKey, DecisionLogIdentifier, DecisionLogRecord
from fanchaoxin.orgs.service import authenticate
from fanchaoxin.subjects.models import Subject, SubjectIdentifier

OP = Actor("cli:operator")


def _other(name: str) -> str:
    return "gm" if name == "international" else "international"


def _use(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("FCX_CRYPTO_PROFILE", name)
    get_settings.cache_clear()
    vault.forget()


def _created_under(db, monkeypatch: pytest.MonkeyPatch, name: str) -> None:  # type: ignore[no-untyped-def]
    """A platform created under ``name``: the setting, and the record the migration makes."""
    _use(monkeypatch, name)
    periods = CryptoProfilePeriod.__table__
    with db.engine.begin() as conn:
        conn.execute(periods.delete())
        conn.execute(periods.insert().values(profile=name, since_seq=1, since_at=datetime.now(UTC)))


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Set up before and torn down after monkeypatch: the next test reads the restored environment."""
    yield
    get_settings.cache_clear()
    vault.forget()


@pytest.fixture
def start() -> str:
    """The profile the run began under (international, or gm under `make test`'s second run)."""
    return crypto.active().name


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys" / "data.json"
    vault.write_ring(vault.new_ring(path), exclusive=True)
    monkeypatch.setenv("FCX_DATA_KEY_FILE", str(path))
    get_settings.cache_clear()
    vault.forget()
    yield path
    get_settings.cache_clear()
    vault.forget()


def _record(db, n: int, action: str = "test.event") -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        for i in range(n):
            audit.record(s, Actor("test"), action, "test", str(i), after={"i": i})


def _verify(db, **kw):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return audit.verify(s, **kw)


# --- the audit chain ------------------------------------------------------------------------------------


def test_a_chain_that_changed_profile_verifies(db, settings, monkeypatch, start) -> None:  # type: ignore[no-untyped-def]
    to = _other(start)
    _record(db, 3)
    with db.session() as s:
        seq = audit.switch_profile(s, to, OP)
        audit.record(s, Actor("test"), "test.after", "test", "same-session")
    assert seq == 4
    _use(monkeypatch, to)  # the platform restarts under the new profile
    _record(db, 2, "test.later")
    result = _verify(db)
    assert result.ok, result.reason
    assert result.checked == 3 + 1 + 1 + 2
    with db.session() as s:
        events = {e.id: e for e in s.scalars(select(AuditEvent))}
        periods = [(p.profile.name, p.since_seq) for p in crypto_record.periods(s)]
    assert periods == [(start, 1), (to, 5)]
    changed = events[4]
    assert changed.action == "crypto.profile_changed" and changed.detail == {"from": start, "to": to}
    # the announcing event under the old profile's digest, everything after it under the new one's
    assert audit._intact(changed, crypto.profile(start)) and not audit._intact(changed, crypto.profile(to))
    for i in (5, 6, 7):
        assert audit._intact(events[i], crypto.profile(to))
        assert not audit._intact(events[i], crypto.profile(start))
    assert events[6].after_digest == crypto.profile(to).hexdigest(b'{"i":0}')


def test_editing_the_periods_table_is_caught(db, settings, monkeypatch, start) -> None:  # type: ignore[no-untyped-def]
    to = _other(start)
    _record(db, 2)
    with db.session() as s:
        audit.switch_profile(s, to, OP)
    _use(monkeypatch, to)
    _record(db, 3)
    assert _verify(db).ok

    def edit(stmt) -> None:  # type: ignore[no-untyped-def]
        with db.engine.begin() as conn:
            conn.execute(stmt)

    later = CryptoProfilePeriod.since_seq > 1
    # moved one event later: the event before it announced nothing
    edit(update(CryptoProfilePeriod).where(later).values(since_seq=CryptoProfilePeriod.since_seq + 1))
    r = _verify(db)
    assert not r.ok and "periods table" in (r.reason or "")
    edit(update(CryptoProfilePeriod).where(later).values(since_seq=CryptoProfilePeriod.since_seq - 1))
    assert _verify(db).ok
    # removed: the announcement has no period
    with db.engine.begin() as conn:
        row = conn.execute(
            select(CryptoProfilePeriod.profile, CryptoProfilePeriod.since_seq).where(later)
        ).one()
        conn.execute(CryptoProfilePeriod.__table__.delete().where(later))
    r = _verify(db)
    assert not r.ok and r.broken_at == 3
    # a period never announced, past the end of the chain
    with db.engine.begin() as conn:
        conn.execute(CryptoProfilePeriod.__table__.insert().values(profile=row[0], since_seq=row[1]))
        conn.execute(CryptoProfilePeriod.__table__.insert().values(profile=start, since_seq=50))
    r = _verify(db)
    assert not r.ok and "no event announced" in (r.reason or "")


def test_switching_to_the_profile_in_force_is_refused(db, settings, start) -> None:  # type: ignore[no-untyped-def]
    _record(db, 1)
    with db.session() as s, pytest.raises(ValueError, match="already hashed"):
        audit.switch_profile(s, start, OP)
    with db.session() as s, pytest.raises(crypto.UnknownProfile):
        audit.switch_profile(s, "sm9", OP)


# --- signed checkpoints -----------------------------------------------------------------------------------

OLD = datetime(2020, 1, 10, 8, 0, tzinfo=UTC)


def _old_events(db, monkeypatch, n: int = 3) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(audit, "utcnow", lambda: OLD)
    _record(db, n)
    monkeypatch.setattr(audit, "utcnow", lambda: OLD + timedelta(days=3000))
    _record(db, 1, "test.recent")


@pytest.mark.parametrize("name", ["international", "gm"])
def test_a_checkpoint_is_signed_under_the_platforms_profile(db, settings, monkeypatch, name) -> None:  # type: ignore[no-untyped-def]
    _created_under(db, monkeypatch, name)
    p = crypto.profile(name)
    key = p.generate_signing_key()
    _old_events(db, monkeypatch)
    with db.session() as s:
        result = audit.prune(
            s,
            before=OLD + timedelta(days=1),
            sign=key.sign,
            key=lambda: ("s1", key.public_bytes()),
            now=OLD + timedelta(days=3000),
        )
        assert result.pruned == 3
    with db.session() as s:
        cp = s.scalars(select(AuditCheckpoint)).one()
        assert len(cp.public_key) == (88 if name == "gm" else 44)
        assert crypto.profile_of_public_key(base64.b64decode(cp.public_key)) is p
    assert _verify(db, trusted_keys={"s1": key.public_bytes()}).ok
    # a checkpoint made before a change of profile still verifies after it (its key says its algorithm)
    with db.session() as s:
        audit.switch_profile(s, _other(name), OP)
    _use(monkeypatch, _other(name))
    assert _verify(db, trusted_keys={"s1": key.public_bytes()}).ok
    with db.engine.begin() as conn:
        conn.execute(update(AuditCheckpoint).values(count=AuditCheckpoint.count + 1, last_seq=99))
    r = _verify(db)
    assert not r.ok and "altered" in (r.reason or "")


@pytest.mark.parametrize("name", ["international", "gm"])
def test_a_key_of_the_other_profile_cannot_sign_a_checkpoint(db, settings, monkeypatch, name) -> None:  # type: ignore[no-untyped-def]
    _created_under(db, monkeypatch, name)
    wrong = crypto.profile(_other(name)).generate_signing_key()
    _old_events(db, monkeypatch)
    with db.session() as s, pytest.raises(audit.PruneRefused, match=f"platform's '{name}' crypto profile"):
        audit.prune(
            s,
            before=OLD + timedelta(days=1),
            sign=wrong.sign,
            key=lambda: ("s1", wrong.public_bytes()),
            now=OLD + timedelta(days=3000),
        )
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 4
        assert s.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


# --- the data key ring -------------------------------------------------------------------------------------


def test_gm_ring_seals_with_16_byte_sm4_keys(key_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _use(monkeypatch, "gm")
    path = key_file.with_name("gm.json")
    vault.write_ring(vault.new_ring(path), exclusive=True)
    monkeypatch.setenv("FCX_DATA_KEY_FILE", str(path))
    get_settings.cache_clear()
    vault.forget()
    doc = json.loads(path.read_text())
    assert doc["profile"] == "gm"
    assert all(len(base64.b64decode(k)) == 16 for k in doc["keys"].values())
    assert len(base64.b64decode(doc["index_key"])) == 32
    ring = vault.ring()
    assert ring.crypto.aead_algorithm == "SM4-GCM"
    sealed = vault.encrypt("11010519491231002X", "subjects.name")
    assert vault.decrypt(sealed, "subjects.name") == "11010519491231002X"
    raw = base64.b64decode(sealed.split(":", 2)[2])
    key = ring.keys["d1"]
    # SM4-GCM indeed: the profile opens it with the 16-byte key, nonce first
    assert (
        crypto.profile("gm").aead_decrypt(key, raw[:12], raw[12:], b"subjects.name") == b"11010519491231002X"
    )
    blob = vault.encrypt_bytes(b"%PDF", "evidence_blobs.data")
    assert vault.decrypt_bytes(blob, "evidence_blobs.data") == b"%PDF"
    with pytest.raises(DataKeyError, match="does not open"):
        vault.decrypt(sealed, "subjects.other")
    # HMAC-SM3 under the same index key
    expected = crypto.profile("gm").mac(ring.index_key, b"identifier\x00phone:+8613800138000").hex()
    assert vault.blind("identifier", "phone:+8613800138000") == expected
    assert (
        expected
        != crypto.profile("international").mac(ring.index_key, b"identifier\x00phone:+8613800138000").hex()
    )


@pytest.mark.parametrize("name", ["international", "gm"])
def test_a_ring_of_the_other_profile_is_refused(key_file, monkeypatch, name) -> None:  # type: ignore[no-untyped-def]
    _use(monkeypatch, name)
    vault.write_ring(vault.new_ring(key_file, _other(name)), exclusive=False)
    vault.forget()
    with pytest.raises(DataKeyError, match="wrong algorithm for the profile") as caught:
        vault.ring(fresh=True)
    assert str(key_file) in str(caught.value) and f"runs under '{name}'" in str(caught.value)
    with pytest.raises(DataKeyError, match="wrong algorithm"):
        vault.encrypt("x", "t.c")


def test_a_ring_file_without_a_profile_is_international(key_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _use(monkeypatch, "international")
    doc = vault.new_ring(key_file, "international").document()
    del doc["profile"]
    key_file.write_text(json.dumps(doc))
    assert vault.read_ring(key_file).profile == "international"
    vault.forget()
    assert vault.decrypt(vault.encrypt("a", "t.c"), "t.c") == "a"
    # a gm key size in a file that names no profile: it reads as a (bad) AES-256 key
    doc["keys"]["d1"] = base64.b64encode(b"k" * 16).decode()
    key_file.write_text(json.dumps(doc))
    with pytest.raises(DataKeyError, match=r"AES-256-GCM data key \(international profile\) is 32 bytes"):
        vault.read_ring(key_file)


# --- the change of profile of the data at rest --------------------------------------------------------------


def _population(db) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        person = Subject(kind="individual", name="张三", name_key=vault.blind("name", "张三"))
        unit = Subject(kind="unit", name="甲公司", name_key="甲公司")
        s.add_all([person, unit])
        s.flush()
        s.add_all(
            [
                SubjectIdentifier(subject_id=person.id, type="resident_id", value="11010519491231002X"),
                SubjectIdentifier(subject_id=person.id, type="phone", value="+8613800138000"),
            ]
        )
        s.add(
            Report(
                tracking_number="JB20260101-00000001",
                secret_hash="0" * 64,
                status="received",
                channel="public",
                filed_by="public",
                description="组织刷单群。",
                behaviours=[],
                reported={"identifiers": [{"type": "phone", "value": "+8613900139000"}]},
                contact_email="r@example.cn",
                filed_on=datetime(2026, 1, 1).date(),
            )
        )
        s.add(EvidenceBlob(digest="a" * 64, size=3, media_type="text/plain", data=b"abc"))
        org = s.scalar(select(ApiKey.owner_org_id).limit(1))
        ids = {"person": person.id, "unit": unit.id}
    return {"ids": ids, "org": org}


def _raw(db) -> dict[str, list[tuple[object, ...]]]:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))]
            for t in (
                "subjects",
                "subject_identifiers",
                "reports",
                "evidence_blobs",
                "decision_log_identifiers",
            )
        }


@pytest.mark.parametrize("setting", ["old", "new"])  # the command run before or after the setting changed
def test_migrate_profile_moves_every_sealed_value_and_blind_index(
    db, world, key_file, monkeypatch, start, setting
) -> None:  # type: ignore[no-untyped-def]
    to = _other(start)
    org = world.enterprise("甲电商").org.id
    _population(db)
    held = vault.identifier_index("phone", "+8613800138000")
    never = vault.identifier_index("phone", "+8613700137000")  # asked about, never listed
    with db.session() as s:
        rec = DecisionLogRecord(
            at=datetime.now(UTC), org_id=org, channel="platform", kind="lookup", entry_ids=[]
        )
        s.add(rec)
        s.flush()
        s.add_all(
            [
                DecisionLogIdentifier(record_id=rec.id, digest=held),
                DecisionLogIdentifier(record_id=rec.id, digest=never),
                DecisionLogIdentifier(record_id=rec.id, digest="tag:" + "ab" * 32),
            ]
        )
    old_doc = key_file.read_text()
    if setting == "new":
        _use(monkeypatch, to)
    with db.session() as s:
        result = rekey.migrate_profile(s, to, actor=OP)
    assert (result.from_profile, result.to_profile) == (start, to)
    assert result.resealed[("subject_identifiers", "value")] == 2
    assert result.resealed[("evidence_blobs", "data")] == 1
    assert result.reindexed[("subject_identifiers", "value_index")] == 2
    assert result.reindexed[("subjects", "name_key")] == 2
    assert result.remapped[("decision_log_identifiers", "digest")] == 1
    # the new ring is in place, the old one beside it
    assert json.loads(key_file.read_text())["profile"] == to
    assert result.backup_path == key_file.with_name(f"data.json.{start}.bak")
    assert result.backup_path.read_text() == old_doc

    _use(monkeypatch, to)  # the platform restarts under the new profile
    ring = vault.ring(fresh=True)
    assert ring.profile == to and len(ring.keys["d1"]) == crypto.profile(to).aead_key_size
    vault.check_database(db.engine)  # every stored value names a key of the new ring
    with db.session() as s:
        idents = {i.type: i for i in s.scalars(select(SubjectIdentifier))}
        assert idents["resident_id"].value == "11010519491231002X"
        assert idents["phone"].value_index == vault.identifier_index("phone", "+8613800138000") != held
        person = s.scalars(select(Subject).where(Subject.kind == "individual")).one()
        assert person.name == "张三" and person.name_key == vault.blind("name", "张三")
        unit = s.scalars(select(Subject).where(Subject.kind == "unit")).one()
        assert unit.name_key == "甲公司"
        report = s.scalars(select(Report)).one()
        assert report.contact_email == "r@example.cn"
        assert report.reported["identifiers"][0]["value"] == "+8613900139000"
        assert s.scalars(select(EvidenceBlob)).one().data == b"abc"
        digests = set(s.scalars(select(DecisionLogIdentifier.digest)))
    # a digest of an identifier the platform holds follows it; one of an identifier never held cannot
    # be recomputed (kept as it was: it no longer matches anything); a node's tag is no blind index
    assert digests == {vault.identifier_index("phone", "+8613800138000"), never, "tag:" + "ab" * 32}
    r = _verify(db)
    assert r.ok, r.reason
    with db.session() as s:
        assert crypto_record.recorded_profile(s) == to


def test_a_failed_migration_leaves_the_database_and_the_ring_untouched(
    db, key_file, monkeypatch, start
) -> None:  # type: ignore[no-untyped-def]
    _population(db)
    _record(db, 2)
    before, ring_before = _raw(db), key_file.read_bytes()
    with db.session() as s:
        periods_before = [(p.profile.name, p.since_seq) for p in crypto_record.periods(s)]

    def fail(_session) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    with db.session() as s, pytest.raises(RuntimeError, match="disk full"):
        rekey.migrate_profile(s, _other(start), actor=OP, extra=fail)
    assert _raw(db) == before
    assert key_file.read_bytes() == ring_before
    assert not list(key_file.parent.glob("*.bak"))
    with db.session() as s:
        assert [(p.profile.name, p.since_seq) for p in crypto_record.periods(s)] == periods_before
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 2
    vault.forget()
    assert _verify(db).ok
    with db.session() as s:
        assert s.scalars(select(SubjectIdentifier)).first() is not None


def test_a_migration_to_the_rings_own_profile_is_refused(db, key_file, start) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s, pytest.raises(DataKeyError, match="already"):
        rekey.migrate_profile(s, start, actor=OP)


# --- stored secret hashes and passwords -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["international", "gm"])
def test_secret_hashes_made_under_either_profile_match(monkeypatch, name) -> None:  # type: ignore[no-untyped-def]
    _use(monkeypatch, name)
    h = crypto.secret_hash("s3cret")
    assert h == crypto.profile(name).hexdigest(b"s3cret") and len(h) == 64
    old = crypto.profile(_other(name)).hexdigest(b"s3cret")
    assert crypto.secret_matches(h, "s3cret") is crypto.profile(name)
    assert crypto.secret_matches(old, "s3cret") is crypto.profile(_other(name))
    assert crypto.secret_matches(h, "wrong") is None
    assert crypto.secret_hashes("s3cret") == [h, old]
    assert request_hash("a", b"b") == crypto.profile(name).hexdigest(b"a\x00b\x00")


@pytest.mark.parametrize("name", ["international", "gm"])
def test_passwords_verify_under_the_scheme_they_name(monkeypatch, name) -> None:  # type: ignore[no-untyped-def]
    _use(monkeypatch, name)
    stored = crypto.hash_password("correct horse")
    assert stored.startswith("pbkdf2-sm3$100000$" if name == "gm" else "scrypt$16384$8$1$")
    assert crypto.check_password(stored, "correct horse")
    assert not crypto.check_password(stored, "wrong horse")
    assert not crypto.password_needs_rehash(stored)
    _use(monkeypatch, _other(name))
    assert crypto.check_password(stored, "correct horse")  # made before a change of profile
    assert crypto.password_needs_rehash(stored)
    for bad in ("", "md5$x", "pbkdf2-sm3$0$AA==$AA==", "pbkdf2-sm3$x$y", "scrypt$1$2"):
        assert not crypto.check_password(bad, "correct horse")


def test_an_api_key_hashed_under_the_other_profile_still_works_and_is_rehashed(
    db, world, settings, start
) -> None:  # type: ignore[no-untyped-def]
    tenant = world.enterprise("甲电商")
    raw = next(iter(tenant.keys.values()))
    _, prefix, secret = raw.split("_", 2)
    old = crypto.profile(_other(start)).hexdigest(secret.encode())
    with db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(secret_hash=old))
    with db.session() as s:
        principal = authenticate(s, raw)
        assert principal.org_id == tenant.org.id
    with db.session() as s:
        assert s.scalar(select(ApiKey.secret_hash).where(ApiKey.prefix == prefix)) == crypto.secret_hash(
            secret
        )


@pytest.mark.parametrize("name", ["international", "gm"])
def test_the_fast_digest_is_the_profiles_digest(name) -> None:  # type: ignore[no-untyped-def]
    p = crypto.profile(name)
    for data in (b"", b"abc", b"abcd" * 16, bytes(range(256)) * 9):
        h = p.hasher()
        h.update(data)
        assert p.digest(data) == h.finalize()
    if name == "gm":  # GB/T 32905-2016 A.1
        assert p.hexdigest(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
