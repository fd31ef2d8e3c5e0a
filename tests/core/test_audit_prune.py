"""Retention (#14 point 2): decision logs and audit events older than FCX_AUDIT_RETENTION_YEARS are pruned
by the scheduler, and the audit chain stays verifiable behind a signed checkpoint."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor, AuditCheckpoint, AuditEvent
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.workflows.jobs import audit_signing_keys, prune_logs, retention_cutoff, run_jobs

OLD = datetime(2020, 1, 10, 8, 0, tzinfo=UTC)
RECENT = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def signing(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    return sharing_keys.load().signing


def _at(monkeypatch, when: datetime) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(audit, "utcnow", lambda: when)


def _history(db, world, monkeypatch) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """Events and decision-log records in 2020, then in 2024."""
    _at(monkeypatch, OLD)
    org = world.enterprise("甲电商").org.id
    with db.session() as s:
        for i in range(3):
            audit.record(s, Actor("test"), "test.old", "test", str(i))
    _at(monkeypatch, RECENT)
    with db.session() as s:
        for i in range(2):
            audit.record(s, Actor("test"), "test.recent", "test", str(i))
    monkeypatch.setattr(audit, "utcnow", utcnow)
    with db.session() as s:
        for at in (OLD, OLD, RECENT):
            record = DecisionLogRecord(at=at, org_id=org, channel="platform", kind="lookup", entry_ids=[])
            s.add(record)
            s.flush()
            s.add(DecisionLogIdentifier(record_id=record.id, digest=f"d{record.id.hex}"))
    return org


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _verify(db, trusted=None):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return audit.verify(s, trusted_keys=trusted)


def test_old_logs_are_pruned_and_the_chain_still_verifies(db, world, signing, monkeypatch):
    _history(db, world, monkeypatch)
    events = _count(db, AuditEvent)
    with db.session() as s:
        old = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.at < RECENT))
        result = prune_logs(s, today=date(2025, 6, 2), now=NOW)
    assert result == {"pruned_decision_log": 2, "pruned_audit_events": old}
    assert _count(db, AuditEvent) == events - old
    assert _count(db, DecisionLogRecord) == 1 and _count(db, DecisionLogIdentifier) == 1
    with db.session() as s:
        (cp,) = s.scalars(select(AuditCheckpoint))
        assert (cp.last_seq, cp.count, cp.key_id) == (old, old, signing.key_id)
        assert cp.first_at == OLD and cp.last_at == OLD and cp.made_at == NOW
        first = s.scalar(select(AuditEvent).order_by(AuditEvent.id).limit(1))
        assert first.prev_hash == cp.last_hash and first.at == RECENT
    got = _verify(db, audit_signing_keys())
    assert got.ok and got.pruned == old and got.checked == events - old, got
    # newer events chain on; a later pruning moves the checkpoint over everything
    with db.session() as s:
        audit.record(s, Actor("test"), "test.after", "test", "x")
    with db.session() as s:
        result = prune_logs(s, today=date(2040, 1, 1), now=NOW)
    assert result["pruned_decision_log"] == 1 and result["pruned_audit_events"] == events - old + 1
    assert _count(db, AuditEvent) == 0 and _count(db, AuditCheckpoint) == 2
    with db.session() as s:
        audit.record(s, Actor("test"), "test.later", "test", "y")
    got = _verify(db, audit_signing_keys())
    assert got.ok and got.pruned == events + 1 and got.checked == 1, got
    out = CliRunner().invoke(cli, ["audit", "verify"])
    said = " ".join(out.output.split())  # rich wraps lines
    assert (
        out.exit_code == 0
        and "intact" in said
        and f"{events + 1} older events pruned behind a signed checkpoint" in said
    )


def test_nothing_younger_than_the_retention_period_is_pruned(db, world, signing, monkeypatch):
    _history(db, world, monkeypatch)
    events = _count(db, AuditEvent)
    with db.session() as s:
        # five years after the oldest record, to the day: kept
        assert prune_logs(s, today=date(2025, 1, 10), now=NOW) == {
            "pruned_decision_log": 0,
            "pruned_audit_events": 0,
        }
    assert _count(db, AuditEvent) == events and _count(db, AuditCheckpoint) == 0


def test_the_scheduler_prunes_six_years_ahead(db, world, signing):
    world.platform()
    with db.session() as s:
        audit.record(s, Actor("test"), "test.event", "test", "1")
    with db.session() as s:
        result = run_jobs(s, today=date.today() + timedelta(days=6 * 366))
    assert result["pruned_audit_events"] >= 2
    assert _verify(db, audit_signing_keys()).ok


def test_a_tampered_checkpoint_is_named(db, world, signing, monkeypatch):
    _history(db, world, monkeypatch)
    with db.session() as s:
        prune_logs(s, today=date(2025, 6, 2), now=NOW)
    with db.engine.begin() as conn:
        conn.execute(update(AuditCheckpoint).values(count=AuditCheckpoint.count - 1))
    got = _verify(db, audit_signing_keys())
    assert not got.ok and "audit checkpoint" in (got.reason or "") and "altered" in (got.reason or "")
    out = CliRunner().invoke(cli, ["audit", "verify"])
    assert out.exit_code == 1 and "audit checkpoint" in out.output


def test_a_checkpoint_re_signed_with_another_key_is_refused(db, world, signing, monkeypatch):
    _history(db, world, monkeypatch)
    with db.session() as s:
        prune_logs(s, today=date(2025, 6, 2), now=NOW)
    forger = Ed25519PrivateKey.generate()
    with db.session() as s:
        cp = s.scalars(select(AuditCheckpoint)).one()
        cp.last_hash = "f" * 64  # hides events the forger deleted
        cp.public_key = base64.b64encode(forger.public_key().public_bytes_raw()).decode()
        cp.signature = base64.b64encode(forger.sign(cp.content())).decode()
    got = _verify(db, audit_signing_keys())
    assert not got.ok and "not the platform's signing key" in (got.reason or "")


def test_a_missing_first_event_after_the_checkpoint_is_named(db, world, signing, monkeypatch):
    _history(db, world, monkeypatch)
    with db.session() as s:
        prune_logs(s, today=date(2025, 6, 2), now=NOW)
        first = s.scalar(select(func.min(AuditEvent.id)))
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": first})
    got = _verify(db, audit_signing_keys())
    assert not got.ok and got.reason == f"event {first} is missing"


def test_a_broken_prefix_is_not_pruned_nor_signed(db, world, signing, monkeypatch):
    _history(db, world, monkeypatch)
    events = _count(db, AuditEvent)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET detail = '{\"x\": 1}' WHERE id = 2"))
    with db.session() as s:
        result = prune_logs(s, today=date(2025, 6, 2), now=NOW)
    assert result["pruned_audit_events"] == 0 and "event 2" in result["audit_prune_refused"]
    assert _count(db, AuditEvent) == events and _count(db, AuditCheckpoint) == 0


def test_retention_cutoff_is_beijing_midnight_and_handles_29_february():
    assert retention_cutoff(date(2030, 6, 2), 5) == datetime(2025, 6, 1, 16, 0, tzinfo=UTC)
    assert retention_cutoff(date(2028, 2, 29), 5) == datetime(2023, 2, 27, 16, 0, tzinfo=UTC)  # 28 Feb


def test_retention_is_at_least_five_years(monkeypatch):
    monkeypatch.setenv("FCX_AUDIT_RETENTION_YEARS", "4")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="audit_retention_years"):
            get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_verify_route_refuses_a_checkpoint_re_signed_with_another_key(  # type: ignore[no-untyped-def]
    client, db, world, signing, monkeypatch
):
    _history(db, world, monkeypatch)
    with db.session() as s:
        prune_logs(s, today=date(2025, 6, 2), now=NOW)
    platform = world.platform()
    r = client.get("/v1/audit/verify", headers=platform.headers(Role.auditor))
    assert r.status_code == 200 and r.json()["ok"], r.text
    forger = Ed25519PrivateKey.generate()
    with db.session() as s:
        cp = s.scalars(select(AuditCheckpoint)).one()
        cp.public_key = base64.b64encode(forger.public_key().public_bytes_raw()).decode()
        cp.signature = base64.b64encode(forger.sign(cp.content())).decode()
    r = client.get("/v1/audit/verify", headers=platform.headers(Role.auditor))
    assert r.status_code == 200 and not r.json()["ok"]
    assert "not the platform's signing key" in r.json()["reason"]
