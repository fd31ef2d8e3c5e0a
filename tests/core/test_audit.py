"""The hash-chained audit log: one event per change, tampering detected, linear under concurrency."""

import threading

from sqlalchemy import select, text
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.roles import Role


def _events(db):
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_each_change_is_one_chained_event(client, world, db):
    platform = world.platform()
    n0 = len(_events(db))
    r = client.post(
        "/v1/organisations",
        json={"kind": "department", "name": "某局"},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 201
    events = _events(db)
    assert len(events) == n0 + 1
    ev = events[-1]
    assert ev.action == "organisation.create"
    assert ev.target_id == r.json()["id"]
    assert ev.actor.startswith("key:")
    assert ev.actor_org_id == platform.org.id
    assert ev.before_digest is None and len(ev.after_digest) == 64
    assert ev.prev_hash == events[-2].hash
    assert [e.id for e in events] == list(range(1, len(events) + 1))


def test_reads_change_nothing_in_the_log(client, world, db):
    platform = world.platform()
    n = len(_events(db))
    client.get("/v1/organisations", headers=platform.headers(Role.auditor))
    assert len(_events(db)) == n


def test_verify_detects_an_edited_row(world, db):
    world.platform()
    world.enterprise()
    with db.session() as s:
        assert audit.verify(s).ok
    victim = _events(db)[2]
    with db.engine.begin() as conn:  # behind the app's back
        conn.execute(text("UPDATE audit_events SET actor = 'someone else' WHERE id = :id"), {"id": victim.id})
    with db.session() as s:
        result = audit.verify(s)
    assert not result.ok
    assert result.broken_at == victim.id
    assert "altered" in result.reason


def test_verify_detects_a_deleted_row_and_a_cut_tail(world, db):
    world.platform()
    world.enterprise()
    events = _events(db)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": events[1].id})
    with db.session() as s:
        result = audit.verify(s)
    assert not result.ok and result.broken_at == events[1].id

    world2_last = events[-1].id
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id >= :id"), {"id": events[1].id})
    with db.session() as s:
        result = audit.verify(s)
    assert not result.ok
    assert "head" in result.reason
    assert world2_last > events[1].id


def test_cli_verify_names_the_broken_event(world, db, settings):
    world.platform()
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET detail = '{\"x\": 1}' WHERE id = 2"))
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "event 2" in bad.output


def test_concurrent_appends_stay_one_linear_chain(db):
    errors = []

    def worker(n):
        try:
            for i in range(5):
                with db.session() as s:
                    audit.record(s, Actor(f"thread:{n}"), "test.event", "test", f"{n}-{i}")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = _events(db)
    assert len(events) == 30
    assert [e.id for e in events] == list(range(1, 31))
    with db.session() as s:
        assert audit.verify(s).ok


def test_rolled_back_change_leaves_no_event(db):
    try:
        with db.session() as s:
            audit.record(s, Actor("x"), "test.event", "test", "1")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert _events(db) == []
    with db.session() as s:
        audit.record(s, Actor("x"), "test.event", "test", "2")
    with db.session() as s:
        assert audit.verify(s).ok


def test_pii_reads_are_events(db):
    with db.session() as s:
        audit.record_pii_read(
            s, Actor("key:abc"), "subject", "42", purpose="objection review", fields=["resident_id"]
        )
    ev = _events(db)[-1]
    assert ev.action == "pii.read"
    assert ev.detail == {"purpose": "objection review", "fields": ["resident_id"]}


def test_audit_api_for_auditors_only(client, world):
    platform = world.platform()
    ent = world.enterprise()
    r = client.get("/v1/audit/events?limit=2", headers=platform.headers(Role.auditor))
    assert r.status_code == 200
    page = r.json()
    assert len(page["events"]) == 2 and page["next_after"] == 2
    assert client.get("/v1/audit/verify", headers=platform.headers(Role.auditor)).json()["ok"] is True
    assert client.get("/v1/audit/events", headers=ent.headers(Role.enterprise_operator)).status_code == 403
