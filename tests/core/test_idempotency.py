"""Concurrent requests with one Idempotency-Key: the first answer (replayed) or 409 "in progress",
never a 500, and the change is stored once."""

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import idempotency
from fanchaoxin.core.idempotency import IdempotencyRecord, RequestInProgress
from fanchaoxin.core.roles import Role
from tests.blacklist.registry_helpers import unit_entry


def _count(db, model):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def _post_at_once(client, n, path, **kw):
    barrier = threading.Barrier(n)
    results = []
    lock = threading.Lock()

    def go():
        barrier.wait()
        r = client.post(path, **kw)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _assert_in_progress(r):
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/idempotency-in-progress")
    assert body["title_zh"] == "相同幂等键的请求正在处理中，请稍后重试"
    assert int(r.headers["retry-after"]) > 0


def test_concurrent_submissions_with_one_key_store_one_entry_and_replay_it(client, world, db):
    ent = world.enterprise()
    headers = {**ent.headers(Role.enterprise_operator), "Idempotency-Key": "same-key"}
    results = _post_at_once(client, 8, "/v1/entries", json=unit_entry(), headers=headers)

    assert Counter(r.status_code for r in results).keys() <= {201, 409}, [r.text for r in results]
    ok = [r for r in results if r.status_code == 201]
    for r in results:
        if r.status_code == 409:
            _assert_in_progress(r)
    assert len({r.json()["id"] for r in ok}) == 1
    assert sum(1 for r in ok if r.headers.get("idempotent-replayed") != "true") == 1
    assert _count(db, Entry) == 1
    assert _count(db, IdempotencyRecord) == 1
    again = client.post("/v1/entries", json=unit_entry(), headers=headers)
    assert again.status_code == 201 and again.json()["id"] == ok[0].json()["id"]


def test_concurrent_uploads_with_one_key_store_one_batch(client, world, db):
    ent = world.enterprise()
    csv_body = (
        "subject_kind,subject_name,uscc,behaviours,role,severity,basis,facts\r\n"
        "unit,上海某某网络科技有限公司,91110000600037341L,order_brushing,organizer,serious,"
        "enterprise_finding,组织刷单炒信\r\n"
    ).encode()
    headers = {**ent.headers(Role.enterprise_operator), "Idempotency-Key": "upload-1"}
    results = _post_at_once(
        client, 4, "/v1/uploads", files={"file": ("a.csv", csv_body, "text/csv")}, headers=headers
    )
    codes = Counter(r.status_code for r in results)
    assert codes.keys() <= {201, 409}, [r.text for r in results]
    assert len({r.json()["batch_id"] for r in results if r.status_code == 201}) == 1
    assert _count(db, Entry) == 1


def _claim(db, org_id, key, req_hash):
    s = db.sessionmaker()
    assert idempotency.replay(s, org_id, key, req_hash) is None
    return s


def _wait_until_blocked(db, backend):
    """PostgreSQL shows a lock wait; SQLite shows none, so there the order is left to the threads."""
    if backend.name != "postgresql":
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                return
        time.sleep(0.01)
    pytest.fail("the second request never waited on the first one's claim")


def test_a_second_request_waits_for_the_first_and_gets_its_answer(db, world, backend):
    org_id = world.enterprise().org.id
    h = idempotency.request_hash("POST /v1/entries", "{}")
    first = _claim(db, org_id, "k-1", h)
    got = {}

    def second():
        with db.session() as s:
            rec = idempotency.replay(s, org_id, "k-1", h)
            got["answer"] = None if rec is None else (rec.status_code, rec.body)

    t = threading.Thread(target=second)
    t.start()
    _wait_until_blocked(db, backend)
    idempotency.remember(first, org_id, "k-1", h, 201, {"id": "the first answer"})
    first.commit()
    first.close()
    t.join(60)
    assert got["answer"] == (201, {"id": "the first answer"})


def test_a_first_request_that_fails_leaves_the_key_to_the_next(db, world):
    org_id = world.enterprise().org.id
    h = idempotency.request_hash("x")
    first = _claim(db, org_id, "k-2", h)
    first.rollback()
    first.close()
    with db.session() as s:
        assert idempotency.replay(s, org_id, "k-2", h) is None
        idempotency.remember(s, org_id, "k-2", h, 201, {"n": 2})
    with db.session() as s:
        rec = idempotency.replay(s, org_id, "k-2", h)
        assert rec is not None and rec.body == {"n": 2}


@pytest.fixture
def short_wait(db, backend):
    """A session whose lock waits run out at once (the deployment's timeouts, made short)."""
    s = db.sessionmaker()
    if backend.name == "postgresql":
        s.execute(text("SET LOCAL lock_timeout = '100ms'"))
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


def test_a_wait_that_runs_out_is_409_in_progress(db, world, short_wait):
    org_id = world.enterprise().org.id
    h = idempotency.request_hash("x")
    first = _claim(db, org_id, "k-3", h)
    try:
        with pytest.raises(RequestInProgress) as caught:
            idempotency.replay(short_wait, org_id, "k-3", h)
    finally:
        first.rollback()
        first.close()
    problem = caught.value.to_dict()
    assert problem["status"] == 409 and problem["title_zh"]
    assert caught.value.headers["Retry-After"] == str(idempotency.RETRY_AFTER_SECONDS)


def test_remember_without_a_claim_turns_a_unique_race_into_409(db, world):
    org_id = world.enterprise().org.id
    h = idempotency.request_hash("x")
    late = db.sessionmaker()
    assert late.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    with db.session() as s:
        idempotency.remember(s, org_id, "k-4", h, 201, {"n": 1})
    try:
        with pytest.raises(RequestInProgress):
            idempotency.remember(late, org_id, "k-4", h, 201, {"n": 2})
    finally:
        late.rollback()
        late.close()
    with db.session() as s:
        rec = idempotency.replay(s, org_id, "k-4", h)
        assert rec is not None and rec.body == {"n": 1}


def test_same_key_different_request_is_a_named_409(db, world):
    org_id = world.enterprise().org.id
    with db.session() as s:
        assert idempotency.replay(s, org_id, "k-5", "a" * 64) is None
        idempotency.remember(s, org_id, "k-5", "a" * 64, 201, {})
    with db.session() as s, pytest.raises(idempotency.KeyReused) as caught:
        idempotency.replay(s, org_id, "k-5", "b" * 64)
    assert caught.value.status == 409 and caught.value.title_zh
