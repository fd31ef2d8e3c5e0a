"""/readyz during a rolling upgrade (#23): a schema of a later release keeps this one ready; an older one
does not."""

from __future__ import annotations

from sqlalchemy import text

from fanchaoxin.core.db import Database


def _stamp(db: Database, revision: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_ready_on_a_later_releases_schema_not_on_an_older_one(client, db) -> None:  # type: ignore[no-untyped-def]
    head = db.head_revision()
    try:
        _stamp(db, "9999")  # a revision this code has never seen: the next release's expand step
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["revision"] == "9999" and r.json()["code_revision"] == head
        _stamp(db, "0001")  # behind this code: the migration has not run
        assert client.get("/readyz").status_code == 503
    finally:
        _stamp(db, head)
