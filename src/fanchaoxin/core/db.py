"""Storage: one SQLAlchemy engine per process, sessions per request, Alembic for the schema.

SQLite (a file under ./var/) is the embedded default for one machine; PostgreSQL is production.
Both run the same migrations and the same test suite.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

if TYPE_CHECKING:
    import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Stable constraint names so that migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones and gives back naive values; PostgreSQL gives them back in the session's
    zone. Both are turned into aware UTC here so that comparisons and audit digests agree.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_db_engine(url: str, *, echo: bool = False, schema: str | None = None) -> Engine:
    """Build an engine; `schema` pins PostgreSQL's search_path (used by tests for isolation)."""
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        if schema:
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        self.url = normalise_url(url)
        self.schema = schema
        self.engine = create_db_engine(url, echo=echo, schema=schema)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # --- migrations -------------------------------------------------------------------------
    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        command.upgrade(self.alembic_config(), revision)

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrations_current(self) -> bool:
        return self.current_revision() == self.head_revision()

    def dispose(self) -> None:
        self.engine.dispose()


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]], *, chunk: int = 2000) -> None:
    """Insert many rows in the session's transaction, as fast as the backend allows.

    PostgreSQL: `COPY … FROM STDIN` (an order of magnitude faster than executemany for bulk
    submissions). SQLite: executemany, which is already fast in-process. Column defaults are applied
    here, since COPY bypasses SQLAlchemy's.
    """
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i : i + chunk])
        return
    columns = [c for c in table.columns if c.name in rows[0] or c.default is not None]
    json_cols = {c.name for c in columns if isinstance(c.type, JSON)}
    defaults = {c.name: c.default for c in columns if c.default is not None and c.name not in rows[0]}
    names = ", ".join(f'"{c.name}"' for c in columns)
    # normalise_url() puts every PostgreSQL URL on psycopg 3, whose connections SQLAlchemy hands out as is.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with dbapi.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = []
            for c in columns:
                if c.name in row:
                    v = row[c.name]
                else:
                    d = defaults[c.name]
                    v = d.arg(None) if callable(d.arg) else d.arg
                if c.name in json_cols and v is not None:
                    v = json.dumps(v)  # the text psycopg's Json(v) would send; COPY's text format parses it
                values.append(v)
            copy.write_row(values)
