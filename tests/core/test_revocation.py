"""A revoked key stops working in every API process within FCX_AUTH_REVOCATION_CHECK_SECONDS, and a
revoked key can never grant authority (issue #13, point 4).

Two `create_app` on one database are two API processes: each has its own key cache and revocation
watch (app.state.keys). Time is a clock the test moves, never a sleep.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text, update
from sqlalchemy.exc import OperationalError

from fanchaoxin.app import create_app
from fanchaoxin.core.auth import Principal, PrincipalCache, RevocationWatch, install_authenticator
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import service
from fanchaoxin.orgs.models import ApiKey, Organisation
from tests.core.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def two_processes(db, settings, clock) -> Iterator[tuple[TestClient, TestClient]]:  # type: ignore[no-untyped-def]
    apps = [create_app(settings, db=db) for _ in range(2)]
    for app in apps:
        install_authenticator(app, service.authenticate_key, clock=clock)
    with (
        TestClient(apps[0], raise_server_exceptions=False) as a,
        TestClient(apps[1], raise_server_exceptions=False) as b,
    ):
        yield a, b


def _prefix(headers: dict[str, str]) -> str:
    return headers["Authorization"].split("_")[1]


def _key_id(db, headers: dict[str, str]) -> uuid.UUID:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.prefix == _prefix(headers)))


def _revoke_elsewhere(db, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The revocation as another API process's commit looks from here: a row changed, nobody told."""
    with db.session() as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.prefix == _prefix(headers))
            .values(revoked_at=utcnow(), revoked_reason="revoked by another process")
        )


def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_the_interval(
    two_processes, world, db, settings, clock
):
    a, b = two_processes
    ent = world.enterprise()
    node = ent.headers(Role.enterprise_node)
    assert a.get("/v1/whoami", headers=node).status_code == 200
    assert b.get("/v1/whoami", headers=node).status_code == 200  # b has it cached now
    r = a.post(
        f"/v1/keys/{_key_id(db, node)}/revoke",
        json={"reason": "node decommissioned"},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200, r.text
    assert a.get("/v1/whoami", headers=node).status_code == 401  # the revoking process: at once
    clock.advance(settings.auth_revocation_check_seconds)
    assert b.get("/v1/whoami", headers=node).status_code == 401
    assert b.get("/v1/policy", headers=node).status_code == 401


def test_a_revocation_committed_elsewhere_is_noticed_within_the_interval(
    two_processes, world, db, settings, clock
):
    _, b = two_processes
    ent = world.enterprise()
    node = ent.headers(Role.enterprise_node)
    assert b.get("/v1/whoami", headers=node).status_code == 200
    _revoke_elsewhere(db, node)
    clock.advance(settings.auth_revocation_check_seconds)
    assert b.get("/v1/whoami", headers=node).status_code == 401


def test_a_deactivated_organisation_is_noticed_within_the_interval(two_processes, world, db, settings, clock):
    _, b = two_processes
    ent = world.enterprise()
    node = ent.headers(Role.enterprise_node)
    assert b.get("/v1/whoami", headers=node).status_code == 200
    with db.session() as s:
        s.execute(update(Organisation).where(Organisation.id == ent.org.id).values(active=False))
    clock.advance(settings.auth_revocation_check_seconds)
    assert b.get("/v1/whoami", headers=node).status_code == 401


def test_a_revoked_key_can_never_grant_authority(two_processes, world, db):
    """Whatever a process's cache says: no new key, no revocation, no organisation, policy or quota."""
    _, b = two_processes
    platform = world.platform()
    ent = world.enterprise()
    operator, admin = ent.headers(Role.enterprise_operator), platform.headers(Role.platform_admin)
    for headers in (operator, admin):
        assert b.get("/v1/whoami", headers=headers).status_code == 200  # cached in b
        _revoke_elsewhere(db, headers)
    with db.session() as s:
        keys_before = s.scalar(select(func.count()).select_from(ApiKey))
    node_key = _key_id(db, ent.headers(Role.enterprise_node))
    attempts = [
        b.post(
            f"/v1/organisations/{ent.org.id}/keys", json={"role": "enterprise_operator"}, headers=operator
        ),
        b.post(f"/v1/organisations/{ent.org.id}/keys", json={"role": "enterprise_operator"}, headers=admin),
        b.post(f"/v1/keys/{node_key}/revoke", json={"reason": "hijack"}, headers=operator),
        b.post(
            "/v1/organisations",
            json={"kind": "department", "name": "某部门", "department_kind": "posts"},
            headers=admin,
        ),
        b.post("/v1/policies", content="version: x", headers={**admin, "Content-Type": "application/yaml"}),
        b.put(f"/v1/sharing/quotas/{ent.org.id}", json={"declared_users": 10**9}, headers=admin),
    ]
    assert [r.status_code for r in attempts] == [401] * len(attempts), [r.text for r in attempts]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == keys_before
        assert s.scalar(select(ApiKey.revoked_at).where(ApiKey.id == node_key)) is None
        assert s.scalar(select(func.count()).select_from(Organisation)) == 2
        assert s.get(Organisation, ent.org.id).declared_users is None


def test_granting_routes_still_work_with_a_good_key(two_processes, world):
    _, b = two_processes
    ent = world.enterprise()
    r = b.post(
        f"/v1/organisations/{ent.org.id}/keys",
        json={"role": "enterprise_node"},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201, r.text
    assert b.get("/v1/whoami", headers={"X-API-Key": r.json()["secret"]}).status_code == 200


def _selects_on(db, table: str) -> tuple[list[str], object]:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if table in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", listener)


def test_the_hot_path_reads_the_revocation_epoch_at_most_once_per_interval(
    two_processes, world, db, settings, clock
):
    _, b = two_processes
    ent = world.enterprise()
    node = ent.headers(Role.enterprise_node)
    assert b.get("/v1/whoami", headers=node).status_code == 200
    seen, stop = _selects_on(db, "api_keys")
    try:
        for _ in range(20):
            assert b.get("/v1/whoami", headers=node).status_code == 200
        assert seen == []
        clock.advance(settings.auth_revocation_check_seconds)
        for _ in range(20):
            assert b.get("/v1/whoami", headers=node).status_code == 200
    finally:
        stop()
    assert len(seen) == 1  # the epoch; the key itself stays cached, nothing was revoked


def test_an_answer_read_before_a_forgetting_is_not_cached_after_it():
    """A request that read the key just before a revocation must not put it back in the cache."""
    cache = PrincipalCache()
    p = Principal(role=Role.enterprise_node, org_id=uuid.uuid4(), key_prefix="abc")
    generation = cache.generation  # the request starts reading the key
    cache.invalidate(key_prefix="abc")  # the revocation lands meanwhile
    cache.put("fp", p, 30, None, generation=generation)
    assert cache.get("fp") is None
    cache.put("fp", p, 30, None, generation=cache.generation)
    assert cache.get("fp") is p


def test_a_failed_epoch_read_keeps_the_cache_and_the_next_read_catches_up():
    """Through a database outage, cached keys serve until their entries expire (decisions answer from
    memory); a revocation made meanwhile empties the cache at the first read that succeeds."""
    clock = FakeClock()
    cache, watch = PrincipalCache(clock=clock), RevocationWatch(clock=clock)
    p = Principal(role=Role.enterprise_node, org_id=uuid.uuid4(), key_prefix="abc")
    watch.check(lambda: (0, None, 0, None), cache, 1)
    cache.put("fp", p, 30, None)

    def down() -> tuple[object, ...]:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    clock.advance(1)
    watch.check(down, cache, 1)
    assert cache.get("fp") is p and not watch.due(1)  # tried again after the interval, not at once
    clock.advance(1)
    watch.check(lambda: (0, None, 0, None), cache, 1)  # back, nothing revoked: the cache stays
    assert cache.get("fp") is p
    clock.advance(1)
    watch.check(down, cache, 1)
    clock.advance(1)
    watch.check(lambda: (1, None, 0, None), cache, 1)  # back, and a key was revoked meanwhile
    assert cache.get("fp") is None


def test_one_request_reads_the_epoch_the_others_go_on():
    clock = FakeClock()
    cache, watch = PrincipalCache(clock=clock), RevocationWatch(clock=clock)
    reads = []

    def read() -> tuple[object, ...]:
        reads.append(1)
        assert not watch.due(1)  # while it reads, no other request is sent to read it too
        watch.check(read, cache, 1)  # nor does one that got there anyway read it a second time
        return (0, None, 0, None)

    assert watch.due(1)
    watch.check(read, cache, 1)
    assert reads == [1] and not watch.due(1)


def test_a_granting_check_holds_the_key_until_its_transaction_ends(db, world):
    """Between the check and the grant no revocation can commit: it waits for the grant, or was first."""
    raw = world.enterprise().keys[Role.enterprise_operator]
    other = Database(db.url, schema=db.schema)  # another process, with no patience for locks
    try:
        with db.session() as granting:
            service.authenticate_key(granting, raw, lock=True)
            with other.engine.connect() as conn:
                if other.engine.dialect.name == "postgresql":
                    conn.execute(text("SET lock_timeout = '50ms'"))
                else:
                    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
                with pytest.raises(OperationalError):
                    conn.execute(
                        update(ApiKey).where(ApiKey.prefix == raw.split("_")[1]).values(revoked_at=utcnow())
                    )
        with other.engine.begin() as conn:  # the grant's transaction is over: now it goes through
            revoke = update(ApiKey).where(ApiKey.prefix == raw.split("_")[1]).values(revoked_at=utcnow())
            assert conn.execute(revoke).rowcount == 1
    finally:
        other.dispose()
