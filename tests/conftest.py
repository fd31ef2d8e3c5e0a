"""Test fixtures: the same suite runs on the embedded SQLite default and on PostgreSQL.

PostgreSQL is read from FCX_TEST_POSTGRES_URL (default: the local server, database `test`). Each
test run gets a fresh schema, dropped at the end; each test starts from empty tables. An unreachable
PostgreSQL fails the run (it never skips), unless FCX_TEST_BACKENDS=sqlite is set explicitly.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hyp_settings
from sqlalchemy import create_engine, text

from fanchaoxin.app import create_app
from fanchaoxin.core import vault
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.db import Base, Database, utcnow
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.models import Base as _all_models  # noqa: F401  (registers every table)
from fanchaoxin.orgs import service as org_service
from fanchaoxin.orgs.models import Organisation

# Property tests must not fail because a shared CI machine was slow: no per-example deadline.
hyp_settings.register_profile("fcx", deadline=None)
hyp_settings.load_profile("fcx")

# Personal data is encrypted at rest under a data key ring (core.vault): every test process (and the CLI
# processes tests start, which inherit the environment) uses one ring of its own, made here.
if "FCX_DATA_KEY_FILE" not in os.environ:
    _KEY_DIR = tempfile.mkdtemp(prefix="fcx-test-keys-")
    os.environ["FCX_DATA_KEY_FILE"] = os.path.join(_KEY_DIR, "data.json")
    vault.write_ring(vault.new_ring(Path(os.environ["FCX_DATA_KEY_FILE"])), exclusive=True)
# The sharing keys likewise: a key left in var/keys by a run under one crypto profile is (rightly) refused
# by a run under the other.
if "FCX_SHARING_KEY_DIR" not in os.environ:
    os.environ["FCX_SHARING_KEY_DIR"] = tempfile.mkdtemp(prefix="fcx-test-sharing-keys-")

# The tests that hash, sign or encrypt (by file): `make test` runs them a second time under the 国密 profile
# (FCX_CRYPTO_PROFILE=gm), as the whole suite runs on both databases (#18).
CRYPTO_TOUCHING = (
    "tests/core/test_audit",
    "tests/core/test_at_rest.py",
    "tests/core/test_crypto",
    "tests/core/test_idempotency.py",
    "tests/core/test_rekey.py",
    "tests/core/test_vault.py",
    "tests/core/test_tlog",
    "tests/core/test_verify_log_script.py",
    "tests/console/test_log_proofs.py",
    "tests/node/",
    "tests/sharing/",
    "tests/test_crypto_done_when.py",
    "tests/test_crypto_migrate.py",
    "tests/blacklist/test_evidence_digest.py",
    "tests/operations/test_backup.py",  # #23: digests and sealed keys of a backup set (SM3, SM4-GCM under gm)
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).resolve().parent.parent
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(root).as_posix()
        if where.startswith(CRYPTO_TOUCHING):
            item.add_marker(pytest.mark.crypto)


POSTGRES_URL = os.environ.get("FCX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [
    b.strip() for b in os.environ.get("FCX_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()
]


@dataclass
class Backend:
    name: str
    db: Database
    url: str  # a URL that reaches the same schema from a new process (for CLI tests)


def _postgres_backend() -> Iterator[Backend]:
    schema = f"fcx_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc}); start it or set FCX_TEST_POSTGRES_URL"
        )
    db = Database(POSTGRES_URL, schema=schema)
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        db.upgrade()
        yield Backend("postgresql", db, url)
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "fcx.db"
        url = f"sqlite:///{path}"
        db = Database(url)
        db.upgrade()
        yield Backend("sqlite", db, url)
        db.dispose()
    elif request.param == "postgresql":
        yield from _postgres_backend()
    else:
        raise ValueError(f"unknown backend {request.param}")


def _empty_tables(db: Database) -> None:
    tables = [
        t for t in reversed(Base.metadata.sorted_tables) if t.name not in ("audit_chain_head", "feed_head")
    ]
    # DELETE, children first, on both backends: a test leaves few rows, and PostgreSQL's TRUNCATE of every
    # table costs ~200 ms whatever they hold (new files for each of ~60 tables) against ~10 ms here —
    # twice per database test, it was a third of the suite's time on PostgreSQL.
    with db.engine.begin() as conn:
        for t in tables:
            conn.execute(t.delete())
        conn.execute(text("UPDATE audit_chain_head SET seq = 0, hash = :h WHERE id = 1"), {"h": "0" * 64})
        conn.execute(text("UPDATE feed_head SET seq = 0 WHERE id = 1"))
        # As the migration records it on a new platform: the run's profile from the first audit event.
        conn.execute(
            text("INSERT INTO crypto_profile_periods (profile, since_seq, since_at) VALUES (:p, 1, :at)"),
            {"p": get_settings().crypto_profile, "at": utcnow()},
        )


@pytest.fixture
def db(backend: Backend) -> Iterator[Database]:
    """A database with the current schema and no rows."""
    _empty_tables(backend.db)
    yield backend.db
    _empty_tables(backend.db)


@pytest.fixture
def settings(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FCX_DATABASE_URL", backend.url)
    # Test receivers (webhooks) listen on 127.0.0.1; production refuses such URLs by default.
    monkeypatch.setenv("FCX_SHARING_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    s = get_settings()
    yield s
    get_settings.cache_clear()


@pytest.fixture
def app(db: Database, settings: Settings):  # type: ignore[no-untyped-def]

    return create_app(settings, db=db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class Tenant:
    org: Organisation
    keys: dict[Role, str]

    def headers(self, role: Role | None = None) -> dict[str, str]:
        role = role or next(iter(self.keys))
        return {"Authorization": f"Bearer {self.keys[role]}"}


class World:
    """Organisations with keys, made through the service layer (as the CLI would)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._n = 0

    def org(
        self,
        kind: OrgKind,
        roles: list[Role],
        *,
        name: str | None = None,
        business_types: list[BusinessType] | None = None,
        department_kind: str | None = None,
        actor: Actor = SYSTEM,
    ) -> Tenant:
        self._n += 1
        with self.db.session() as s:
            org = org_service.create_organisation(
                s,
                actor,
                kind=kind,
                name=name or f"{kind.value} {self._n}",
                business_types=business_types
                if business_types is not None
                else ([BusinessType.ecommerce] if kind == OrgKind.enterprise else []),
                agreement_signed_on=date(2017, 1, 1) if kind == OrgKind.enterprise else None,
                department_kind=department_kind,
            )
            keys = {r: org_service.create_key(s, actor, org, r).secret for r in roles}
        return Tenant(org, keys)

    def platform(self) -> Tenant:
        return self.org(
            OrgKind.platform, [Role.platform_admin, Role.platform_reviewer, Role.auditor], name="平台"
        )

    def enterprise(self, name: str | None = None, **kw: object) -> Tenant:
        return self.org(OrgKind.enterprise, [Role.enterprise_operator, Role.enterprise_node], name=name, **kw)  # type: ignore[arg-type]

    def department(self, name: str | None = None, kind: str = "market_regulation") -> Tenant:
        """A department of a kind (department_kinds.yaml): market regulation unless told."""
        return self.org(OrgKind.department, [Role.department_officer], name=name, department_kind=kind)


@pytest.fixture
def world(db: Database) -> World:
    return World(db)
