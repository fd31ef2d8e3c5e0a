"""Health, readiness, metrics, and the schema matching the models."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient

from fanchaoxin.app import create_app
from fanchaoxin.core.db import Base, Database
from fanchaoxin.core.settings import Settings


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_database_and_revision(client, backend):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["database"] == backend.name
    assert r.json()["revision"] == backend.db.head_revision()


def test_readyz_fails_when_migrations_are_behind(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/empty.db")
    with TestClient(create_app(Settings(database_url=db.url), db=db)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert "fcx db upgrade" in r.json()["detail"]
    db.dispose()


def test_metrics_count_requests_by_route_template(client):
    client.get("/healthz")
    client.get("/v1/organisations/00000000-0000-0000-0000-000000000000")
    text = client.get("/metrics").text
    assert 'fcx_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/organisations/{org_id}"' in text


def test_migrations_match_the_models(backend):
    with backend.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/m.db")
    db.upgrade()

    command.downgrade(db.alembic_config(), "base")
    assert db.current_revision() is None
    db.upgrade()
    assert db.migrations_current()
    db.dispose()
