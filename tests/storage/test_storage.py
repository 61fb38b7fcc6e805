"""storage/: migrations match the models, migrate safely in parallel, ids, time zones, SQLite set-up."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cli_process import run_cli
from conftest import BACKENDS, create_pg_database, drop_pg_database
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from bot.incidents.forms import DeclareForm
from bot.incidents.lifecycle import declare
from bot.incidents.queries import allocate_id
from bot.settings import Settings
from storage import db
from storage.models import DayCounter, Incident, TimelineEntry

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CONFIG_FILE"}
ID_RE = re.compile(r"^INC-(\d{4}-\d{2}-\d{2})-(\d{3})$")
NOW = datetime(2026, 3, 14, 23, 59, 58, 500_000, tzinfo=UTC)


def _settings(url: str = "sqlite://") -> Settings:
    return Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]


def _schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return db.current_revision(connection)


def _table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env.update(DATABASE_URL=url, PYTHONPATH=str(ROOT))
    return run_cli(args, env=env, cwd=cwd, timeout=60)


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


# -- schema -------------------------------------------------------------------------------------


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert _revision(engine) == db.head_revision(engine)
    # The bot knows its head without reading the migrations: it must be Alembic's.
    assert db.head_revision(engine) == db.alembic_head(engine)
    assert _table_names(engine) >= {t.name for t in SQLModel.metadata.sorted_tables}
    assert _schema_diff(engine) == []


def test_schema_diff_would_notice_a_missing_column(empty_url: str) -> None:
    # The comparison above is only worth something if it can see a difference.
    engine = db.create_db_engine(empty_url)
    try:
        db.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE runbook_use"))
        diff = _schema_diff(engine)
        assert any(d[0] == "add_table" and d[1].name == "runbook_use" for d in diff), diff
    finally:
        engine.dispose()


def test_db_upgrade_twice_is_a_no_op(empty_url: str, tmp_path: Path) -> None:
    first = _cli("db", "upgrade", url=empty_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    engine = db.create_db_engine(empty_url)
    try:
        head = db.head_revision(engine)
        assert _revision(engine) == head
        with db.unit_of_work(db.session_factory(engine)) as session:
            session.add(DayCounter(day=date(2026, 1, 1), last=7))

        second = _cli("db", "upgrade", url=empty_url, cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert "Traceback" not in second.stderr
        assert _revision(engine) == head
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        with db.unit_of_work(db.session_factory(engine)) as session:
            kept = session.get(DayCounter, date(2026, 1, 1))
            assert kept is not None and kept.last == 7
        assert _schema_diff(engine) == []
    finally:
        engine.dispose()


def test_is_ready_only_after_upgrade(empty_url: str) -> None:
    engine = db.create_db_engine(empty_url)
    try:
        assert db.ping(engine) is True
        assert db.is_ready(engine) is False
        db.upgrade(engine)
        assert db.is_ready(engine) is True
        db.upgrade(engine)
        assert db.is_ready(engine) is True
    finally:
        engine.dispose()


def test_unreachable_database_is_neither_pinged_nor_ready(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    engine = sa.create_engine(f"sqlite:///{blocker}/sub/x.db")
    assert db.ping(engine) is False
    assert db.is_ready(engine) is False
    engine.dispose()


# -- concurrent migrations ----------------------------------------------------------------------


def test_replicas_migrating_at_once_in_threads_all_come_up(empty_url: str) -> None:
    replicas = 4
    barrier = threading.Barrier(replicas)
    outcomes: list[str] = []
    lock = threading.Lock()

    def replica() -> None:
        engine = db.create_db_engine(empty_url)
        try:
            barrier.wait(timeout=30)
            db.upgrade(engine)
            outcome = "ready" if db.is_ready(engine) else "not ready"
        except Exception as exc:  # recorded and asserted on below
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            engine.dispose()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == ["ready"] * replicas

    engine = db.create_db_engine(empty_url)
    try:
        assert _revision(engine) == db.head_revision(engine)
        assert _schema_diff(engine) == []
    finally:
        engine.dispose()


REPLICA_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from storage import db
    url, ready, go = sys.argv[1], sys.argv[2], sys.argv[3]
    engine = db.create_db_engine(url)
    open(ready, "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)
    db.upgrade(engine)
    print("ready" if db.is_ready(engine) else "not ready")
    """
)


@pytest.mark.slow
def test_replicas_migrating_at_once_in_processes_all_come_up(empty_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA_SCRIPT, empty_url, str(tmp_path / f"ready-{n}"), str(go)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"ready-{n}").exists() for n in range(3)):
            assert time.monotonic() < deadline, "replicas did not start"
            assert all(child.poll() is None for child in children), [c.communicate() for c in children]
            time.sleep(0.01)
        go.touch()  # all three migrate from here, at once
        results = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == "ready", err
        assert "Traceback" not in err

    engine = db.create_db_engine(empty_url)
    try:
        assert _revision(engine) == db.head_revision(engine)
        assert _schema_diff(engine) == []
    finally:
        engine.dispose()


# -- incident ids -------------------------------------------------------------------------------


def _declare_once(sessions: db.SessionFactory, now: datetime, title: str = "Checkout is down") -> str:
    with db.unit_of_work(sessions) as session:
        incident = declare(
            session,
            DeclareForm(title=title, severity="P1"),
            declared_by="U0ALICE",
            policy=_settings().policy(),
            now=now,
        )
        return incident.id


def test_incident_ids_are_unique_and_gapless_under_concurrent_declares(sessions: db.SessionFactory) -> None:
    workers, each = 8, 10
    barrier = threading.Barrier(workers)
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(each):
                incident_id = _declare_once(sessions, NOW, title=f"worker {n} incident {i}")
                with lock:
                    ids.append(incident_id)
        except Exception as exc:  # recorded and asserted on below
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(ids) == workers * each
    assert len(set(ids)) == workers * each
    assert sorted(ids) == [f"INC-2026-03-14-{n:03d}" for n in range(1, workers * each + 1)]
    with db.unit_of_work(sessions) as session:
        stored = session.exec(select(Incident.id)).all()
        titles = session.exec(select(Incident.title)).all()
    assert sorted(stored) == sorted(ids)
    assert len(set(titles)) == workers * each  # every declare stored its own incident

    next_day = NOW + timedelta(seconds=2)  # 00:00:00.5 UTC on the 15th
    assert _declare_once(sessions, next_day) == "INC-2026-03-15-001"
    assert _declare_once(sessions, next_day) == "INC-2026-03-15-002"
    assert _declare_once(sessions, NOW) == "INC-2026-03-14-081"


def test_incident_id_uses_the_utc_day(sessions: db.SessionFactory) -> None:
    # 01:30 on the 15th in UTC+02:00 is still the 14th in UTC.
    local = datetime(2026, 3, 15, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert _declare_once(sessions, local) == "INC-2026-03-14-001"
    west = datetime(2026, 3, 14, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 01:00Z on the 15th
    with db.unit_of_work(sessions) as session:
        assert allocate_id(session, west) == "INC-2026-03-15-001"


def test_a_rolled_back_declare_does_not_use_up_a_number(sessions: db.SessionFactory) -> None:
    with pytest.raises(RuntimeError), db.unit_of_work(sessions) as session:
        declare(session, DeclareForm(title="x", severity="P2"), declared_by=None, policy=_settings().policy(), now=NOW)
        raise RuntimeError("abandon the unit of work")
    assert _declare_once(sessions, NOW) == "INC-2026-03-14-001"


# -- timestamps ---------------------------------------------------------------------------------


def _incident(incident_id: str, when: datetime) -> Incident:
    return Incident(id=incident_id, title="t", severity="P2", started_at=when, declared_at=when)


def test_timestamps_come_back_aware_utc(sessions: db.SessionFactory) -> None:
    plus_two = datetime(2026, 6, 1, 12, 30, 15, 123_456, tzinfo=timezone(timedelta(hours=2)))
    utc = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    with db.unit_of_work(sessions) as session:
        incident = _incident("INC-2026-06-01-001", plus_two)
        incident.acknowledged_at = utc
        session.add(incident)

    with db.unit_of_work(sessions) as session:
        stored = session.get(Incident, "INC-2026-06-01-001")
        assert stored is not None
        for value in (stored.started_at, stored.declared_at, stored.acknowledged_at):
            assert value is not None
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert stored.declared_at == plus_two
        assert stored.declared_at.replace(tzinfo=None) == datetime(2026, 6, 1, 10, 30, 15, 123_456)
        assert stored.acknowledged_at == utc
        assert stored.mitigated_at is None

        # Comparisons in SQL see the same instant, whatever zone it was written in.
        found = session.exec(
            select(Incident.id).where(Incident.declared_at > datetime(2026, 6, 1, 10, 30, tzinfo=UTC))
        ).all()
        assert found == ["INC-2026-06-01-001"]
        missed = session.exec(
            select(Incident.id).where(Incident.declared_at > datetime(2026, 6, 1, 10, 31, tzinfo=UTC))
        ).all()
        assert missed == []


def test_a_naive_datetime_is_refused(sessions: db.SessionFactory) -> None:
    naive = datetime(2026, 6, 1, 12, 0)
    with pytest.raises(sa.exc.StatementError, match="naive"), db.unit_of_work(sessions) as session:
        session.add(_incident("INC-2026-06-01-001", naive))
    with db.unit_of_work(sessions) as session:
        assert session.get(Incident, "INC-2026-06-01-001") is None


def test_foreign_keys_are_enforced(sessions: db.SessionFactory) -> None:
    entry = TimelineEntry(incident_id="INC-1999-01-01-001", kind="system", text="x", occurred_at=NOW)
    with pytest.raises(sa.exc.IntegrityError), db.unit_of_work(sessions) as session:
        session.add(entry)
    with db.unit_of_work(sessions) as session:
        assert session.exec(select(TimelineEntry)).all() == []


# -- SQLite set-up ------------------------------------------------------------------------------


def _sqlite_engine(tmp_path: Path) -> Engine:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    db.upgrade(engine)
    return engine


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = _sqlite_engine(tmp_path)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one().lower() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_up_front(tmp_path: Path) -> None:
    # BEGIN IMMEDIATE: a writer waits at BEGIN (on busy_timeout) instead of failing on its first write.
    engine = _sqlite_engine(tmp_path)
    other = sqlite3.connect(tmp_path / "pragmas.db", timeout=0, isolation_level=None)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")  # a read only: the lock comes from BEGIN itself
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_sqlite_savepoints_work(tmp_path: Path) -> None:
    engine = _sqlite_engine(tmp_path)
    try:
        with db.unit_of_work(db.session_factory(engine)) as session:
            session.add(DayCounter(day=date(2026, 1, 1), last=1))
            session.flush()
            with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
                session.add(DayCounter(day=date(2026, 1, 1), last=2))
                session.flush()
            session.add(DayCounter(day=date(2026, 1, 2), last=3))
        with db.unit_of_work(db.session_factory(engine)) as session:
            rows = session.exec(select(DayCounter).order_by(DayCounter.day)).all()  # type: ignore[arg-type]
            assert [(r.day, r.last) for r in rows] == [(date(2026, 1, 1), 1), (date(2026, 1, 2), 3)]
    finally:
        engine.dispose()


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["postgresql://bot:s3cret@db.example:5432/incidents", "postgres://bot:s3cret@db.example:5432/incidents"],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    normalised = db.normalise_url(url)
    assert normalised == "postgresql+psycopg://bot:s3cret@db.example:5432/incidents"
    engine = db.create_db_engine(url)  # no connection is made until it is used
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_other_urls_are_left_alone() -> None:
    assert db.normalise_url("sqlite:///incidents.db") == "sqlite:///incidents.db"
    assert db.normalise_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"


def test_each_backend_fixture_is_the_backend_it_names(engine: Engine, request: pytest.FixtureRequest) -> None:
    assert engine.dialect.name == request.node.callspec.params["db_url"]
    assert db.ping(engine) is True
