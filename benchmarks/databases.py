"""Where each backend's benchmark databases live, and a plain way to look into them from outside.

SQLite files sit under benchmarks/results/ (git-ignored); PostgreSQL databases are named ib_bench*
on the server at BENCH_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from procs import RESULTS
from sqlalchemy.engine import Engine

from storage import db

PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


def url_for(backend: str, name: str) -> str:
    """The URL of benchmark database `name` on `backend` (a file under results/ for SQLite)."""
    if backend == "sqlite":
        return f"sqlite:///{RESULTS / (name + '.db')}"
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _admin() -> Engine:
    return db.create_db_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")


def exists(backend: str, name: str) -> bool:
    if backend == "sqlite":
        return (RESULTS / (name + ".db")).exists()
    engine = _admin()
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    finally:
        engine.dispose()
    return found is not None


def create(backend: str, name: str, *, fresh: bool) -> str:
    """Make sure database `name` exists (empty when `fresh`); returns its URL."""
    if backend == "sqlite":
        if fresh:
            # The intake's spool too (storage/spool.py): what it still held belongs to the old file.
            spool = (".db.spool", ".db.spool-wal", ".db.spool-shm")
            for suffix in (".db", ".db-wal", ".db-shm", ".db.migrate-lock", *spool):
                (RESULTS / (name + suffix)).unlink(missing_ok=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        return url_for(backend, name)
    if fresh or not exists(backend, name):
        engine = _admin()
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
    return url_for(backend, name)


def observer(url: str) -> Engine:
    """An engine for looking at a database the bot is writing to, without taking its locks.

    Not storage.db's engine: on SQLite that one begins every transaction IMMEDIATE (a write lock),
    which would make the benchmark's own polling compete with the bot's writers.
    """
    return sa.create_engine(db.normalise_url(url), poolclass=sa.pool.NullPool)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


def postgres_available() -> bool:
    try:
        engine = _admin()
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False
