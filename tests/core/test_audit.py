"""The hash-chained audit log: one event per change, tampering detected, linear under concurrency."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core import audit, crypto
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation


def _events(db):
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_each_change_is_one_chained_event(client, world, db):
    platform = world.platform()
    n0 = len(_events(db))
    r = client.post(
        "/v1/organisations",
        json={"kind": "department", "name": "某局", "department_kind": "market_regulation"},
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


# --- the chain head is locked only while a transaction commits (issue #13) ---------------------------


@pytest.fixture
def impatient(db, backend):
    """A second session that gives up on a lock at once, as an audited look-up would after its timeout."""
    s = db.sessionmaker()
    if backend.name == "postgresql":
        s.execute(text("SET LOCAL lock_timeout = '200ms'"))
        yield s
        s.close()
    else:
        conn = s.connection().connection.dbapi_connection
        (usual,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute("PRAGMA busy_timeout = 50")
        yield s
        s.rollback()
        conn.execute(f"PRAGMA busy_timeout = {int(usual)}")
        s.close()


def test_an_open_transaction_does_not_hold_the_chain_head(db, impatient):
    long = db.sessionmaker()  # a bulk upload, say: it recorded its events and goes on working
    try:
        audit.record_many(
            long,
            Actor("key:bulk"),
            [{"action": "entry.submit", "target_type": "entry", "target_id": i} for i in range(3)],
        )
        audit.record_read(long, Actor("key:bulk"), "lookup", "subject", "-", detail={"results": 0})
        # Meanwhile an audited look-up commits without waiting for it.
        audit.record_read(impatient, Actor("key:reader"), "lookup", "subject", "-", detail={"results": 1})
        impatient.commit()
        long.commit()
    finally:
        long.close()
    events = _events(db)
    assert [(e.id, e.actor) for e in events] == [
        (1, "key:reader"),
        (2, "key:bulk"),
        (3, "key:bulk"),
        (4, "key:bulk"),
        (5, "key:bulk"),
    ]
    with db.session() as s:
        assert audit.verify(s).ok


def test_events_keep_the_order_they_were_recorded_in(db):
    a = Actor("x")
    with db.session() as s:
        audit.record(s, a, "first", "t", "1")
        audit.record_many(s, a, [{"action": "second", "target_type": "t", "target_id": "2"},
                                 {"action": "third", "target_type": "t", "target_id": "3"}])  # fmt: skip
        audit.record_pii_read(s, a, "subject", "4", purpose="review", fields=["phone"])
        audit.record(s, a, "fifth", "t", "5")
    assert [e.action for e in _events(db)] == ["first", "second", "third", "pii.read", "fifth"]
    with db.session() as s:
        assert audit.verify(s).ok


def test_a_transaction_reads_its_own_events(db):
    a = Actor("x")
    with db.session() as s:
        audit.record(s, a, "one", "t", "1")
        # A query of another table leaves the event queued (the head unlocked).
        assert s.scalar(select(func.count()).select_from(Organisation)) == 0
        assert len(s.info[audit._QUEUE]) == 1
        # A count names no mapper, only the table.
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1
        assert [e.action for e in s.scalars(select(AuditEvent))] == ["one"]
        audit.record(s, a, "two", "t", "2")
        assert [e.action for e in audit.search(s, action="tw%")] == ["two"]
        assert [e.action for e in audit.search(s)] == ["two", "one"]
        audit.record(s, a, "three", "t", "3")
        assert audit.verify(s).checked == 3
        audit.record(s, a, "four", "t", "4")
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 4
        audit.record(s, a, "five", "t", "5")
    assert [e.id for e in _events(db)] == [1, 2, 3, 4, 5]
    with db.session() as s:
        assert audit.verify(s).ok


def test_a_rolled_back_savepoint_takes_its_events_with_it(db):
    a = Actor("x")
    with db.session() as s:
        audit.record(s, a, "outer.before", "t", "1")
        with pytest.raises(RuntimeError), s.begin_nested():
            audit.record(s, a, "inner", "t", "2")
            raise RuntimeError("the savepoint goes")
        with pytest.raises(RuntimeError), s.begin_nested():
            # Reading the log inside a savepoint must not write the earlier events into it.
            assert audit.verify(s).checked == 0
            raise RuntimeError("this one goes too")
        with s.begin_nested():
            audit.record(s, a, "kept", "t", "3")
        audit.record(s, a, "outer.after", "t", "4")
    assert [e.action for e in _events(db)] == ["outer.before", "kept", "outer.after"]
    with db.session() as s:
        assert audit.verify(s).ok


def test_a_big_batch_is_stored_exactly_as_it_was_hashed(db, monkeypatch):
    # Small COPY chunks, so that a batch of a few thousand crosses several of them.
    monkeypatch.setattr(audit, "_COPY_CHUNK", 10_000)
    tricky = {"name": '制表\t换行\n回车\r反斜杠\\ 引号" \\N', "nested": {"list": [1, 2.5, None, True]}}
    events = [
        {"action": "entry.submit", "target_type": "entry", "target_id": f"e{i}",
         "after": {"row": i}, "detail": {**tricky, "row": i}}
        for i in range(3000)
    ]  # fmt: skip
    with db.session() as s:
        assert audit.record_many(s, Actor("key:bulk", uuid.uuid4()), events) == 3000
        events[0]["detail"]["row"] = "changed after recording"
    stored = _events(db)
    assert len(stored) == 3000
    assert stored[0].detail == {**tricky, "row": 0}
    assert stored[-1].detail == {**tricky, "row": 2999}
    assert stored[5].after_digest == audit.digest({"row": 5})
    with db.session() as s:
        result = audit.verify(s)
    assert result.ok and result.checked == 3000


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(
    actor=_text,
    action=_text,
    target_type=_text,
    target_id=_text,
    org=st.one_of(st.none(), st.uuids()),
    detail=st.dictionaries(_text, st.one_of(_text, st.integers(), st.none(), st.lists(_text, max_size=3))),
    seq=st.integers(min_value=1, max_value=10**12),
)
def test_the_prepared_content_is_the_canonical_content(
    actor, action, target_type, target_id, org, detail, seq
):
    at = datetime(2026, 10, 1, 8, 30, 1, 5, tzinfo=UTC)
    q = audit._queued(
        crypto.active(),
        None,
        True,
        Actor(actor, org),
        at,
        action,
        target_type,
        target_id,
        {"a": 1},
        None,
        detail,
    )
    expected = audit.event_content(
        seq=seq, at=at, actor=actor, actor_org_id=org, action=action, target_type=target_type,
        target_id=target_id, before_digest=audit.digest({"a": 1}), after_digest=None, detail=detail,
    )  # fmt: skip
    assert (q.head + str(seq).encode() + q.tail).decode() == expected
