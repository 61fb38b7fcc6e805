"""The shared fixtures themselves: what tests/conftest.py and tests/bot_harness.py promise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import _truncate_all
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from bot.incidents.forms import DeclareForm
from bot.incidents.lifecycle import declare
from bot.settings import Settings
from storage import db
from storage.models import TimelineEntry

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def _declare(sessions: db.SessionFactory) -> list[int]:
    policy = Settings(_env_file=None, database_url="sqlite://").policy()
    with db.unit_of_work(sessions) as session:
        declare(session, DeclareForm(title="x", severity="P2"), declared_by=None, policy=policy, now=NOW)
    with db.unit_of_work(sessions) as session:
        return [entry.id for entry in session.exec(select(TimelineEntry).order_by(TimelineEntry.id)) if entry.id]


def test_the_postgresql_database_is_emptied_and_its_ids_restart(db_url: str, engine: Engine) -> None:
    """Each test's PostgreSQL database is the session's one, emptied as TRUNCATE ... RESTART IDENTITY would."""
    if not db_url.startswith("postgresql"):
        pytest.skip("each SQLite test gets a fresh copy of the migrated file")
    sessions = db.session_factory(engine)
    first = _declare(sessions)
    assert first and first[0] == 1
    _declare(sessions)
    _truncate_all(engine)
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            # A fresh database's one row, as its migration writes it (the install time), is put back.
            expected = 1 if table.name == "installation" else 0
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == expected, (
                table.name
            )
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert _declare(sessions) == first  # the ids start again from 1
