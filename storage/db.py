"""Engine and session factory from a URL, SQLite pragmas, and migrations under a lock."""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do; it only has to be the same for every replica of the bot.
MIGRATION_LOCK_ID = 0x1AC1DE27

SessionFactory = Callable[[], Session]
# Set while a worker runs one inbox request (bot/runtime/inbox_worker.py): called with the session
# of the first unit of work that writes, before it commits, so the request is marked done in the
# same transaction as its effect. A crash before that commit redoes the work; after it, nothing.
_FIRST_WRITE: contextvars.ContextVar[Callable[[Session], None] | None] = contextvars.ContextVar(
    "first_write", default=None
)


class DatabaseError(RuntimeError):
    """The database could not be reached or prepared; the message is safe to show."""


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, whatever SQLAlchemy's default driver is."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, *, wait: float = 30.0, **kwargs: Any) -> Engine:
    """`wait`: the longest a statement waits for a lock or a connection, in seconds.

    The request path (acks) uses a short one: Slack wants its answer within 3 s, and an answer of
    503 that Slack retries beats an ack that never comes.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": wait},
            pool_pre_ping=True,
            **kwargs,
        )
        busy_ms = int(wait * 1000)
        event.listen(engine, "connect", lambda connection, _record: _sqlite_pragmas(connection, busy_ms))
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over so
        # writers take the lock up front and wait on busy_timeout instead of failing mid-way.
        _WriterTurns(wait).install(engine)
        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_timeout", wait)
    connect_args: dict[str, Any] = {"connect_timeout": max(1, min(5, int(wait)))}
    if wait < 30:
        connect_args["options"] = f"-c lock_timeout={int(wait * 1000)} -c statement_timeout={int(wait * 1000)}"
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=1800, connect_args=connect_args, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, busy_ms: int) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _WriterTurns:
    """SQLite: the threads of one process take turns at the writer lock in a queue of our own.

    SQLite's busy handler does not queue: a waiting writer sleeps 1, 2, 5, 10, 15… ms between tries,
    so with the worker's 32 threads writing, most of each thread's wait was sleep after the lock
    was free (0.56 cores busy while ingesting). A turn is taken at BEGIN and given back when the
    connection returns to the pool (a session returns it at commit): the lock is SQLite's between
    processes, and ours between threads. A connection that begins again before it is returned
    (Alembic commits between revisions) keeps its turn.
    """

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.lock = threading.Lock()

    def install(self, engine: Engine) -> None:
        event.listen(engine, "begin", self.begin)
        for name in ("checkin", "invalidate", "close", "detach"):
            event.listen(engine.pool, name, self.returned)

    def begin(self, conn: sa.Connection) -> None:
        info = conn.connection.info  # the pooled DBAPI connection's own dictionary
        if not info.get(_TURN):
            if not self.lock.acquire(timeout=self.wait):
                raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
            info[_TURN] = self
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.give_back(info)
            raise

    def returned(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        if record is not None:
            self.give_back(record.info)

    def give_back(self, info: dict[Any, Any]) -> None:
        if info.pop(_TURN, None) is self:
            self.lock.release()


_TURN = "sqlite_writer_turn"


def session_factory(engine: Engine) -> SessionFactory:
    def make() -> Session:
        return Session(engine, expire_on_commit=False)

    return make


@contextlib.contextmanager
def on_first_write(callback: Callable[[Session], None]) -> Iterator[None]:
    """Within this block, `callback` joins the transaction of every unit of work that writes.

    The callback decides itself whether it still has anything to do (it runs once, in effect).
    """
    token = _FIRST_WRITE.set(callback)
    try:
        yield
    finally:
        _FIRST_WRITE.reset(token)


_WROTE = "wrote"  # session.info key: set while a unit of work watches whether it writes


# Listened for once, on every session (a listener added per session cost ~0.3 ms a unit of work).
@event.listens_for(Session, "do_orm_execute")
def _executed(state: Any) -> None:
    if not state.is_select and _WROTE in state.session.info:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    if _WROTE in session.info:
        session.info[_WROTE] = True


def _watch_writes(session: Session) -> Callable[[], bool]:
    session.info[_WROTE] = False

    def did_write() -> bool:
        session.flush()  # pending ORM changes count too
        return bool(session.info[_WROTE])

    return did_write


@contextlib.contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One session per unit of work: commit on success, roll back on any error."""
    session = factory()
    joined = _FIRST_WRITE.get()
    did_write = _watch_writes(session) if joined is not None else None
    try:
        yield session
        if joined is not None and did_write is not None and did_write():
            joined(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


# The newest migration in migrations/versions. tests/storage/test_storage.py checks it against
# Alembic's own head, so a migration added without changing this line fails the suite. Knowing it
# here lets the CLI, /healthz and a start-up on an up-to-date database tell so with one SELECT,
# without importing Alembic and reading every migration script (a quarter of a second of CPU).
HEAD_REVISION = "0011"


def head_revision(engine: Engine) -> str | None:
    return HEAD_REVISION


def alembic_head(engine: Engine) -> str | None:
    """The head revision as Alembic reads it from the migration scripts (what HEAD_REVISION must be)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, or None when it has no bot tables (Alembic's version table)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:  # our history is one line; several heads are not a state we ever write
        raise DatabaseError(f"the database has several migration heads ({', '.join(sorted(rows))})")
    return rows[0] if rows else None


def upgrade(engine: Engine) -> None:
    """Apply migrations to head, serialised across processes.

    Several replicas started at once against a fresh database must all come up: the first takes
    the lock and migrates, the others wait, then find nothing left to do.
    """
    if is_ready(engine):
        return  # nothing to migrate (the usual start-up): no lock, no Alembic
    from alembic import command

    try:
        with _migration_lock(engine) as connection:
            config = alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot migrate the database: {_safe_reason(exc)}") from None


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[sa.Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
            try:
                yield connection
                connection.commit()
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()
        return
    database = engine.url.database or ""
    if not database or database == ":memory:":
        with engine.connect() as connection:
            yield connection
            connection.commit()
        return
    # SQLite is one file on one host: an flock beside it serialises the processes that share it.
    with open(database + ".migrate-lock", "a+") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.connect() as connection:
                yield connection
                connection.commit()
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def is_ready(engine: Engine) -> bool:
    """The database answers and is at the head revision (what /healthz reports)."""
    try:
        with engine.connect() as connection:
            return current_revision(connection) == head_revision(engine)
    except (sa.exc.SQLAlchemyError, DatabaseError):
        return False


def _safe_reason(exc: BaseException) -> str:
    # The driver's message can quote the URL; keep only the first line and never the password.
    text = str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else type(exc).__name__
    password = os.environ.get("PGPASSWORD")
    return text.replace(password, "***") if password else text


def ping(engine: Engine) -> bool:
    """The database answers right now (pool pre-ping reconnects after a restart)."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False


def is_disconnect(exc: BaseException) -> bool:
    """The database could not be reached (or not in time), as opposed to a bug in a statement.

    Jobs log the first as "unavailable" and try again; the second is logged with its traceback.
    """
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    return False
