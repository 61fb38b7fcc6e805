"""A fresh install posts nothing on its first start; one created before the digest's time catches up once.

The bot runs for real (bot_harness) with its start-up catch-up; the clock is frozen at a Wednesday,
so "last Monday 10:00" is a fixed instant and no test depends on the day it runs. It stays frozen
(ticking) until each test has stopped its bots: a scheduler left running on the real clock would
fire this week's digest on a real Monday morning (it did, on 2026-12-07).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from bot_harness import Bot, poll
from conftest import create_pg_database, drop_pg_database
from freezegun import freeze_time
from sqlmodel import select

from storage import db
from storage.db import SessionFactory, unit_of_work
from storage.models import DigestRun
from storage.service_state import Installation

WEDNESDAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # last Monday 10:00: 2026-11-23, for 2026-W47
LAST_WEEK = date(2026, 11, 16)
FIRST_CLAIM = datetime(2026, 6, 8, 10, 0, 1, tzinfo=UTC)


def runs(sessions: SessionFactory) -> list[DigestRun]:
    with unit_of_work(sessions) as session:
        return list(session.exec(select(DigestRun)))


def created(sessions: SessionFactory, at: datetime) -> None:
    with unit_of_work(sessions) as session:
        row = session.get(Installation, 1)
        assert row is not None
        row.created_at = at


def start_and_catch_up(make_bot: object, db_url: str) -> Bot:
    bot: Bot = make_bot(digest_cron="0 10 * * mon", database_url=db_url)  # type: ignore[operator]
    # The catch-up is a one-off job at start-up: once it has run, it is gone from the scheduler.
    poll(
        lambda: bot.service.background.scheduler.get_job("digest-catch-up") is None,
        timeout=20,
        message="the start-up catch-up ran",
    )
    return bot


def test_a_fresh_install_posts_nothing_at_its_first_start(
    make_bot: object, sessions: SessionFactory, db_url: str
) -> None:
    with freeze_time(WEDNESDAY, tick=True):
        # Created "now" (Wednesday): last Monday's 10:00 came before the database existed.
        created(sessions, WEDNESDAY)
        bot = start_and_catch_up(make_bot, db_url)
        assert runs(bot.sessions) == []
        bot.fake.assert_no_more("chat.postMessage", 0, settle=1.0)
        bot.stop()


def test_a_database_created_before_last_monday_posts_last_weeks_digest_once(
    make_bot: object, sessions: SessionFactory, db_url: str
) -> None:
    with freeze_time(WEDNESDAY, tick=True):
        created(sessions, datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
        bot = start_and_catch_up(make_bot, db_url)
        # The chart is rendered before the post: a few seconds, many more on a loaded machine.
        poll(
            lambda: any(r.delivered_at for r in runs(bot.sessions)), timeout=90, message="last week's digest delivered"
        )
        assert [(r.period, r.period_start) for r in runs(bot.sessions)] == [("weekly", LAST_WEEK)]
        bot.stop()
        # A restart in the same week posts nothing more.
        again = start_and_catch_up(make_bot, db_url)
        again.fake.assert_no_more("chat.postMessage", 1, settle=1.0, where=lambda c: "thread_ts" not in c.params)
        assert len(runs(again.sessions)) == 1
        again.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def installation(engine: sa.Engine) -> datetime:
    with unit_of_work(db.session_factory(engine)) as session:
        row = session.get(Installation, 1)
    assert row is not None
    return row.created_at


def test_a_fresh_database_records_when_it_was_created(empty_url: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    engine = db.create_db_engine(empty_url)
    db.upgrade(engine)
    assert before <= installation(engine) <= datetime.now(UTC)
    engine.dispose()


def test_an_existing_database_dates_from_its_first_digest(empty_url: str) -> None:
    # A database from before the revision: its first claimed digest proves how old the install is,
    # so a digest it missed while down is still caught up after the upgrade.
    engine = db.create_db_engine(empty_url)
    config = db.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(
            sa.text("INSERT INTO digest_run (period, period_start, claimed_at) VALUES (:p, :s, :c), (:p, :s2, :c2)"),
            {
                "p": "weekly",
                "s": date(2026, 6, 1),
                "c": FIRST_CLAIM if engine.dialect.name != "sqlite" else FIRST_CLAIM.replace(tzinfo=None),
                "s2": date(2026, 6, 8),
                "c2": datetime(2026, 6, 15, 10, tzinfo=UTC)
                if engine.dialect.name != "sqlite"
                else datetime(2026, 6, 15, 10),
            },
        )
    db.upgrade(engine)
    assert installation(engine) == FIRST_CLAIM
    engine.dispose()
