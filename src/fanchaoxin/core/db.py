"""Storage: one SQLAlchemy engine per process, sessions per request, Alembic for the schema.

SQLite (a file under ./var/) is the embedded default for one machine; PostgreSQL is production.
Both run the same migrations and the same test suite.

A database that is gone or frozen must not hang a request (faults, issue #13). PostgreSQL gets a
connect timeout, a statement and a lock timeout (enforced by the server) and a pool timeout; since a
frozen server never sends the cancel for its own statement timeout, a watchdog also closes the socket of
a connection whose statement, commit or ping has not been answered by its deadline. SQLite waits for a
writer's lock at most the lock timeout. `unavailable(exc)` tells such failures (503, retry later)
from bugs (500).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from fanchaoxin.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

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


# A statement whose answer is this much later than the server's own statement_timeout is taken for
# lost (the server is frozen or gone): the cancel would have come back by now.
STATEMENT_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class Timeouts:
    """How long the platform waits for its database (FCX_DATABASE_*_TIMEOUT_SECONDS).

    `statement` and `lock` 0: no limit. psycopg waits at least 2 s for a connection, whatever is asked.
    """

    connect: float = 5.0
    statement: float = 30.0
    lock: float = 10.0
    pool: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        return cls(
            connect=settings.database_connect_timeout_seconds,
            statement=settings.database_statement_timeout_seconds,
            lock=settings.database_lock_timeout_seconds,
            pool=settings.database_pool_timeout_seconds,
        )

    @property
    def statement_budget(self) -> float | None:
        """When the watchdog gives up on one statement (None: never)."""
        return self.statement + STATEMENT_GRACE_SECONDS if self.statement > 0 else None

    @property
    def sqlite_busy(self) -> float:
        """SQLite's busy wait for a writer's lock: the lock timeout, else the statement timeout (0 for
        SQLite would mean not waiting at all, the opposite of "no limit")."""
        return self.lock or self.statement or 86_400.0


class _Watchdog:
    """Closes the socket of a PostgreSQL connection whose call has not returned by its deadline.

    The server enforces statement_timeout, but a frozen server (or a network that drops packets) sends
    nothing, and psycopg would wait for ever. Shutting the socket down wakes the waiting thread with a
    connection error; SQLAlchemy then drops that connection. One thread for the process, started on
    first use, waking a few times a second only while something is armed.
    """

    TICK = 0.2

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _reset_after_fork(self) -> None:
        # The child has no watchdog thread, and the lock may have been held by one of the parent's.
        self._armed = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def arm(self, connection: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._lock:
            if not self._armed:
                self._wake.set()
            self._armed[id(connection)] = (deadline, connection)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fcx-db-watchdog", daemon=True)
                self._thread.start()

    def disarm(self, connection: Any) -> None:
        with self._lock:
            self._armed.pop(id(connection), None)

    @contextmanager
    def watching(self, connection: Any, seconds: float) -> Iterator[None]:
        self.arm(connection, seconds)
        try:
            yield
        finally:
            self.disarm(connection)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.TICK if self._armed else None)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:  # held while closing, so that a call disarmed in time is never cut
                for key, (deadline, connection) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[key]
                        _cut(connection)


def _cut(connection: Any) -> None:
    raw = getattr(connection, "dbapi_connection", connection)  # a pooled proxy or the driver's own
    try:
        fd = raw.fileno()
        dup = socket.socket(fileno=os.dup(fd))
    except Exception:  # closed meanwhile: nothing left to cut
        return
    try:
        log.warning("the database did not answer in time; closing the connection")
        dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        dup.close()


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG._reset_after_fork)
# The watchdog's deadline for one statement, by guarded dialect (None: statements are not limited).
_STATEMENT_BUDGET: weakref.WeakKeyDictionary[Dialect, float | None] = weakref.WeakKeyDictionary()


def _guard_dialect(dialect: Dialect, timeouts: Timeouts) -> None:
    """Put the watchdog around every call that waits for PostgreSQL's answer.

    SQLAlchemy has no events around commit, rollback and the pool's ping, so the dialect's own methods
    are wrapped (on this engine's dialect instance only). Rows fetched later from a server-side cursor
    (`yield_per`) are not watched: only the statements that start them.
    """
    statement = _STATEMENT_BUDGET[dialect] = timeouts.statement_budget
    ping = float(max(2, math.ceil(timeouts.connect)))

    def watched(name: str, seconds: float, connection_of: Callable[[tuple[Any, ...]], Any]) -> None:
        method = getattr(dialect, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            connection = connection_of(args)
            with _WATCHDOG.watching(connection, seconds):
                return method(*args, **kwargs)

        setattr(dialect, name, call)

    watched("do_ping", ping, lambda a: a[0])
    if statement is not None:
        for name in ("do_execute", "do_executemany", "do_execute_no_params"):
            watched(name, statement, lambda a: a[0].connection)  # the cursor's connection
        for name in ("do_commit", "do_rollback"):
            watched(name, statement, lambda a: a[0])


def _pg_options(url: URL, schema: str | None, timeouts: Timeouts) -> str:
    """libpq `options`: the URL's own (e.g. a search_path), the schema, the server-side timeouts."""
    options = []
    given = url.query.get("options")
    if isinstance(given, str) and given:
        options.append(given)
    if schema:
        options.append(f"-csearch_path={schema}")
    if timeouts.statement > 0:
        options.append(f"-cstatement_timeout={round(timeouts.statement * 1000)}")
    if timeouts.lock > 0:
        options.append(f"-clock_timeout={round(timeouts.lock * 1000)}")
    return " ".join(options)


def create_db_engine(
    url: str, *, echo: bool = False, schema: str | None = None, timeouts: Timeouts | None = None
) -> Engine:
    """Build an engine; `schema` pins PostgreSQL's search_path (used by tests for isolation)."""
    timeouts = timeouts or Timeouts.from_settings(get_settings())
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": timeouts.sqlite_busy}
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["pool_timeout"] = timeouts.pool  # a file database is pooled (QueuePool)
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_timeout"] = timeouts.pool
        # libpq counts whole seconds (and psycopg at least 2).
        connect_args: dict[str, Any] = {"connect_timeout": max(1, math.ceil(timeouts.connect))}
        options = _pg_options(parsed, schema, timeouts)
        if options:
            connect_args["options"] = options
        kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        _guard_dialect(engine.dialect, timeouts)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    # (The busy wait for a writer's lock is sqlite3's `timeout`, set from the lock timeout.)
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# SQLite reports a missing or locked file as OperationalError, as it does a syntax error or a missing
# table; only these messages mean "the database is not there (now)".
_SQLITE_UNAVAILABLE = (
    "unable to open database",
    "database is locked",
    "disk i/o error",
    "database or disk is full",
)


def unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot be reached or did not answer in time (answer 503 and
    let the caller retry), rather than a fault in the request or the code (500).

    Connection failures, lost connections, server-side timeouts (statement, lock), an exhausted pool;
    also when any of these is the cause of the error raised.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen or len(seen) > 20:
            continue
        seen.add(id(e))
        if isinstance(e, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True  # no pooled connection came free in time / a connection found dead
        if isinstance(e, sa_exc.DBAPIError):
            if e.connection_invalidated:
                return True
            if e.orig is not None:
                todo.append(e.orig)
        if _driver_unavailable(e):
            return True
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
    return False


def _driver_unavailable(e: BaseException) -> bool:
    if isinstance(e, sqlite3.OperationalError):
        message = str(e).lower()
        return any(m in message for m in _SQLITE_UNAVAILABLE)
    # psycopg's OperationalError: connection failures and what the server cut short (statement and lock
    # timeouts, shutdown, too many connections). psycopg is loaded only once PostgreSQL is used.
    pg = sys.modules.get("psycopg")
    return pg is not None and isinstance(e, pg.OperationalError | pg.InterfaceError)


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


class DatabaseBusy(Exception):
    """An earlier readiness probe is still waiting for the database."""


class Database:
    """The engine and session factory of one process.

    `timeouts`: from the settings unless given (FCX_DATABASE_*_TIMEOUT_SECONDS).
    """

    def __init__(
        self, url: str, *, echo: bool = False, schema: str | None = None, timeouts: Timeouts | None = None
    ) -> None:
        self.url = normalise_url(url)
        self.schema = schema
        self.timeouts = timeouts or Timeouts.from_settings(get_settings())
        self.engine = create_db_engine(url, echo=echo, schema=schema, timeouts=self.timeouts)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._probing = threading.Lock()

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

    def probe(self) -> tuple[str | None, str | None]:
        """(schema revision in the database, the code's head revision), read on one connection.

        One probe at a time: while one still waits for a database that does not answer, the next
        raises DatabaseBusy at once instead of taking another connection and thread.
        """
        if not self._probing.acquire(blocking=False):
            raise DatabaseBusy("an earlier check is still waiting for the database")
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
            return current, self.head_revision()
        finally:
            self._probing.release()

    # --- migrations -------------------------------------------------------------------------
    def alembic_config(self, engine: Engine | None = None) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["engine"] = engine or self.engine
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        # A migration may rewrite a large table: no statement or lock limit for it (the operator runs
        # it on purpose and watches it), only the connect and pool timeouts.
        unlimited = Timeouts(self.timeouts.connect, 0, 0, self.timeouts.pool)
        engine = (
            self.engine
            if not is_postgres(self.engine)
            else create_db_engine(self.url, schema=self.schema, timeouts=unlimited)
        )
        try:
            command.upgrade(self.alembic_config(engine), revision)
        finally:
            if engine is not self.engine:
                engine.dispose()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrations_current(self) -> bool:
        return self.current_revision() == self.head_revision()

    def migration_scripts(self) -> list[Script]:
        """Every migration, oldest first."""
        return list(reversed(list(ScriptDirectory.from_config(self.alembic_config()).walk_revisions())))

    def schema_is_newer(self, revision: str | None) -> bool:
        """A revision this code does not know: a later release's migrations ran (a rolling upgrade
        applies them while this release still serves; by the phase rule it keeps working)."""
        known = {s.revision for s in ScriptDirectory.from_config(self.alembic_config()).walk_revisions()}
        return revision is not None and revision not in known

    def pending_revisions(self, target: str = "head") -> list[Script]:
        """The migrations `upgrade(target)` would run, oldest first; none when the schema is there."""
        script = ScriptDirectory.from_config(self.alembic_config())
        current = self.current_revision()
        if current is not None and script.get_revision(target) == script.get_revision(current):
            return []
        return list(reversed(list(script.iterate_revisions(target, current or "base"))))

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
    # COPY bypasses SQLAlchemy's bind processing: column types that transform values (encrypted
    # columns, core.vault) are applied here, or plain values would reach the table.
    processed = {
        c.name: c.type
        for c in columns
        if isinstance(c.type, TypeDecorator) and not isinstance(c.type, UTCDateTime)
    }
    defaults = {c.name: c.default for c in columns if c.default is not None and c.name not in rows[0]}
    names = ", ".join(f'"{c.name}"' for c in columns)
    # normalise_url() puts every PostgreSQL URL on psycopg 3, whose connections SQLAlchemy hands out as is.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    budget = _STATEMENT_BUDGET.get(conn.dialect)
    # COPY goes to the driver directly, past the guarded dialect: the watchdog is armed here instead.
    watch = _WATCHDOG.watching(dbapi, budget) if budget is not None else nullcontext()
    with watch, dbapi.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
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
                elif c.name in processed:
                    v = processed[c.name].process_bind_param(v, conn.dialect)
                values.append(v)
            copy.write_row(values)
