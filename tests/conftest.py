"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, fresh for every test."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Bytecode for the project's own modules, cached outside the tree. With PYTHONDONTWRITEBYTECODE
# set (as on our CI machines), every `python -m bot run` and `incident-bot` a test starts compiled
# bot/ and storage/ from source again: about 0.3 s of CPU each, some hundreds of times a run.
# Set before anything of the project is imported, so the test processes cache theirs too.
_PYCACHE = os.path.join(tempfile.gettempdir(), f"incident-bot-pycache-{os.getuid()}")
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = _PYCACHE
sys.dont_write_bytecode, sys.pycache_prefix = False, _PYCACHE

import cli_process
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import storage.schema  # noqa: F401  (every table, for truncating between tests)
from storage import db

# CI sets REQUIRE_POSTGRES=1 so that an unreachable server fails the run instead of skipping.
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


def _pg_available() -> bool:
    try:
        engine = db.create_db_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # any failure to connect means "no server here"
        return False


_PG_OK: bool | None = None


def pg_available() -> bool:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    return _PG_OK


def require_postgres() -> None:
    if not pg_available():
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but {PG_ADMIN_URL} does not answer")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")


def create_pg_database(prefix: str = "ib_test", *, template: str | None = None) -> str:
    """A new PostgreSQL database, empty or a copy of the database at URL `template` (which must
    have no connection open); returns its URL."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = db.create_db_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    copy_of = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{copy_of}'))
        # A test database need not survive a crash of the PostgreSQL server itself (the bot's own
        # kills are unaffected: a commit is still visible to everyone once it returns). Waiting on
        # the WAL flush of every commit made single acks take over a second when the whole suite
        # shared the disk, and failed the tests that time them.
        connection.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = db.create_db_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.create_db_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _migrated_pg_url() -> Iterator[str]:
    url = create_pg_database()
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


def _truncate_all(engine: Engine) -> None:
    """Empty every table and restart every sequence: what `TRUNCATE ... RESTART IDENTITY` does.

    DELETE, children first, then setval: TRUNCATE gives every table and index a new file, which
    took about half a second per test here, while the few rows a test leaves are deleted at once.
    All of it goes as one string of statements, one round trip: a statement each (some fifty)
    cost 15 ms more of CPU per PostgreSQL test, client and server together.
    """
    with engine.begin() as connection:
        name = "quote_literal(quote_ident(schemaname) || '.' || quote_ident(sequencename))"
        sequences = connection.execute(sa.text(f"SELECT {name} FROM pg_sequences")).scalars()
        statements = [f'DELETE FROM "{table.name}"' for table in reversed(SQLModel.metadata.sorted_tables)]
        statements += [f"SELECT setval({sequence}, 1, false)" for sequence in sequences]
        # As a fresh database has it (its migration writes the one row): created now.
        statements.append("INSERT INTO installation (id) VALUES (1)")
        connection.exec_driver_sql("; ".join(statements))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a migrated, empty database: a copied SQLite file, or a truncated PostgreSQL one."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_migrated_sqlite_template")
        path = tmp_path / "incidents.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    require_postgres()
    url = request.getfixturevalue("_migrated_pg_url")
    engine = db.create_db_engine(url, poolclass=sa.pool.NullPool)
    _truncate_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> db.SessionFactory:
    return db.session_factory(engine)


@pytest.fixture(scope="session", autouse=True)
def _forkserver_first() -> None:
    """Before any test: the forkserver that CLI commands and in-test bots' workers share, started
    with everything both import (tests/cli_process.py says why it must come first)."""
    cli_process.start_forkserver()


# The fake Slack Web API and the in-process bot, for every test module.
from bot_harness import bot, make_bot  # noqa: F401
from fake_slack import fake_slack, recent_slack  # noqa: F401


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: three workers per core. Most of the suite's time is spent waiting (bot processes
    starting, a fake Slack answering, PostgreSQL): with two per core the cores were still a third
    idle (4:38 here, 6 CPU-minutes in 4.6 minutes on 2 cores); three took 3:48, four 4:01.
    PYTEST_XDIST_AUTO_NUM_WORKERS still overrides this, as pytest-xdist documents."""
    override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "")
    if override.strip().isdigit():
        return int(override)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 3 * cores


# `.ci/run` reruns, alone, the few tests that failed under the full parallel load (tests that time
# a bot on a shared 2-core machine): it names a file here, and the controller writes the node ids
# of the failed tests to it. Workers (xdist) report to the controller, which alone writes.
_FAILED_FILE = os.environ.get("PYTEST_FAILED_FILE")
_failed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _FAILED_FILE and report.failed and report.nodeid not in _failed:
        _failed.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _FAILED_FILE and not hasattr(session.config, "workerinput"):
        Path(_FAILED_FILE).write_text("".join(f"{nodeid}\n" for nodeid in _failed))


# Modules whose tests start a bot (or are marked slow) run first, so the last tests to be handed
# out are quick ones and no worker is left finishing a long end-to-end test while the others sit
# idle. Whole modules move, in their own order, so module-scoped fixtures are set up once; the
# order is the same in every worker, as pytest-xdist requires.
_STARTS_A_BOT = {"make_bot", "bot", "split_bot"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    heavy = {
        item.module.__name__
        for item in items
        if isinstance(item, pytest.Function)
        and (_STARTS_A_BOT & set(item.fixturenames) or item.get_closest_marker("slow"))
    }
    items.sort(key=lambda item: 0 if isinstance(item, pytest.Function) and item.module.__name__ in heavy else 1)
