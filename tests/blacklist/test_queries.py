"""Bulk work stays bulk: reading a page of entries costs the same queries for 5 rows as for 30."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from fanchaoxin.core.roles import Role
from tests.blacklist.registry_helpers import person_entry


@contextmanager
def counted(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    statements: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        # The decision-log writer runs beside requests on its own thread, and the key revocation check
        # runs once per FCX_AUTH_REVOCATION_CHECK_SECONDS, whichever request comes then (on a slow
        # machine, the second page): neither is the page's work.
        if threading.current_thread().name == "fcx-decision-log" or "count(api_keys.revoked_at)" in statement:
            return
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def _submit(client, shop, n: int, start: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(start, start + n):
        body = person_entry()
        body["subject"]["name"] = f"测试{i}"
        body["subject"]["identifiers"] = [{"type": "phone", "value": f"1380013{i:04d}"}]
        r = client.post("/v1/entries", json=body, headers=shop.headers(Role.enterprise_operator))
        assert r.status_code == 201, r.text


def test_a_page_of_entries_loads_identifiers_in_bulk(client, world, db):  # type: ignore[no-untyped-def]
    platform, shop = world.platform(), world.enterprise()
    headers = platform.headers(Role.platform_reviewer)
    client.get("/v1/entries?limit=5", headers=headers)  # warm the key cache: count only the page's work

    _submit(client, shop, 5, 0)
    with counted(db.engine) as small:
        r = client.get("/v1/entries?limit=30", headers=headers)
    assert r.status_code == 200 and len(r.json()["entries"]) == 5
    assert all(e["subject"]["identifiers"] for e in r.json()["entries"])

    _submit(client, shop, 25, 5)
    with counted(db.engine) as large:
        r = client.get("/v1/entries?limit=30", headers=headers)
    assert r.status_code == 200 and len(r.json()["entries"]) == 30
    assert len(large) == len(small), "\n".join(large)
