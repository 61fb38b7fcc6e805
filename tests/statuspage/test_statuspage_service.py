"""bot/statuspage/service.py: publish, update, resolve, maintenance, lists, and reminders claimed once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.statuspage import service
from bot.statuspage.config import parse_status_page
from bot.statuspage.service import StatusPageError
from storage import db
from storage.statuspage import PublicIncident

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
CONFIG = parse_status_page({"components": [{"key": "api", "name": "API"}, {"key": "web", "name": "Website"}]})


def _publish(sessions: db.SessionFactory, *, at: datetime = T0, due: int | None = 15, title: str = "API errors") -> int:
    with db.unit_of_work(sessions) as session:
        incident = service.publish(
            session=session,
            title=title,
            components=["api"],
            impact="partial_outage",
            message="We are looking into elevated error rates.",
            now=at,
            author_id="U0ALICE",
            next_update_in=due,
            config=CONFIG,
        )
        assert incident.id is not None
        return incident.id


def test_publish_update_resolve(sessions: db.SessionFactory) -> None:
    public_id = _publish(sessions)
    with db.unit_of_work(sessions) as session:
        service.post_update(
            session=session,
            public_id=public_id,
            status="identified",
            message="A bad deploy; rolling back.",
            impact="major_outage",
            now=T0 + timedelta(minutes=10),
            next_update_in=30,
        )
    with db.unit_of_work(sessions) as session:
        service.resolve(session=session, public_id=public_id, message="Fixed.", now=T0 + timedelta(minutes=40))
    with db.unit_of_work(sessions) as session:
        view = service.get_incident(public_id, session=session)
        assert view is not None
        assert view.status == "resolved" and view.resolved_at == T0 + timedelta(minutes=40)
        assert [u.status for u in view.updates] == ["investigating", "identified", "resolved"]
        assert [u.impact for u in view.updates] == ["partial_outage", "major_outage", "major_outage"]
        assert view.worst_impact == "major_outage" and view.components == ("api",)
        assert service.list_active(session=session) == []
        assert service.current_version(session=session) == 3
        row = session.get(PublicIncident, public_id)
        assert row is not None and row.next_update_due is None
        with pytest.raises(StatusPageError, match="resolved"):
            service.post_update(session=session, public_id=public_id, status="monitoring", message="x", now=T0)


def test_mistakes_are_refused(sessions: db.SessionFactory) -> None:
    with db.unit_of_work(sessions) as session:
        with pytest.raises(StatusPageError, match="unknown component 'db'"):
            service.publish(
                session=session, title="t", components=["db"], impact="major_outage", message="m", now=T0, config=CONFIG
            )
        with pytest.raises(StatusPageError, match="impact must be one of"):
            service.publish(session=session, title="t", components=["api"], impact="minor", message="m", now=T0)
        with pytest.raises(StatusPageError, match="15, 30, 60"):
            service.publish(
                session=session,
                title="t",
                components=["api"],
                impact="major_outage",
                message="m",
                now=T0,
                next_update_in=45,
            )
        with pytest.raises(StatusPageError, match="end after"):
            service.schedule_maintenance(
                session=session, components=["api"], starts_at=T0, ends_at=T0, message="m", now=T0
            )


def test_lists_recent_and_by_month(sessions: db.SessionFactory) -> None:
    old = _publish(sessions, at=T0 - timedelta(days=40), title="Old")
    with db.unit_of_work(sessions) as session:
        service.resolve(session=session, public_id=old, message="ok", now=T0 - timedelta(days=40, minutes=-5))
    late = _publish(sessions, at=T0 + timedelta(hours=1, minutes=30), title="Late")  # 23:30 UTC, Dec 1st in Berlin
    with db.unit_of_work(sessions) as session:
        assert [i.title for i in service.list_recent(session=session, now=T0 + timedelta(hours=2))] == ["Late"]
        assert [i.id for i in service.list_active(session=session)] == [late]
        by_month = service.list_by_month(session=session)
        assert {k: [i.title for i in v] for k, v in by_month.items()} == {(2026, 11): ["Late"], (2026, 10): ["Old"]}
        berlin = service.list_by_month(session=session, zone=ZoneInfo("Europe/Berlin"))
        assert list(berlin) == [(2026, 12), (2026, 10)]


def test_maintenance_windows(sessions: db.SessionFactory) -> None:
    with db.unit_of_work(sessions) as session:
        service.schedule_maintenance(
            session=session,
            components=["api"],
            starts_at=T0,
            ends_at=T0 + timedelta(hours=2),
            message="Database upgrade",
            now=T0 - timedelta(days=1),
            config=CONFIG,
        )
    with db.unit_of_work(sessions) as session:
        assert service.in_maintenance(["api"], T0, session=session)
        assert service.in_maintenance(["api"], T0 + timedelta(minutes=119), session=session)
        assert not service.in_maintenance(["api"], T0 + timedelta(hours=2), session=session)  # end is exclusive
        assert not service.in_maintenance(["api"], T0 - timedelta(seconds=1), session=session)
        assert not service.in_maintenance(["api", "web"], T0, session=session)  # web is not covered
        assert not service.in_maintenance([], T0, session=session)
        assert service.components_for_alert({"service": "x"}, config=CONFIG) == []


def test_a_reminder_is_claimed_once_and_rearmed_by_the_next_promise(sessions: db.SessionFactory) -> None:
    public_id = _publish(sessions, due=15)
    with db.unit_of_work(sessions) as session:
        assert service.due_reminders(session=session, now=T0 + timedelta(minutes=14)) == []
        assert [i.id for i in service.due_reminders(session=session, now=T0 + timedelta(minutes=15))] == [public_id]
    with db.unit_of_work(sessions) as session:
        assert service.due_reminders(session=session, now=T0 + timedelta(hours=3)) == []
        service.post_update(
            session=session,
            public_id=public_id,
            status="monitoring",
            message="Recovering",
            now=T0 + timedelta(minutes=20),
            next_update_in=60,
        )
    with db.unit_of_work(sessions) as session:
        claimed = service.due_reminders(session=session, now=T0 + timedelta(minutes=80))
        assert [i.reminded_at for i in claimed] == [T0 + timedelta(minutes=80)]


def _pg_waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        return bool(connection.execute(sa.text(query)).scalar())


def test_two_replicas_racing_claim_each_reminder_once(db_url: str) -> None:
    first, second = db.create_db_engine(db_url), db.create_db_engine(db_url)
    try:
        sessions_a, sessions_b = db.session_factory(first), db.session_factory(second)
        ids = {_publish(sessions_a, due=15, title=f"Incident {n}") for n in range(3)}
        now = T0 + timedelta(minutes=30)
        got_b: list[int] = []

        def replica_b() -> None:
            with db.unit_of_work(sessions_b) as session:
                got_b.extend(i.id or 0 for i in service.due_reminders(session=session, now=now))

        # The worst moment: A has claimed and not committed when B looks and tries to claim.
        session_a = sessions_a()
        got_a = [i.id for i in service.due_reminders(session=session_a, now=now)]
        thread = threading.Thread(target=replica_b)
        thread.start()
        if first.dialect.name == "postgresql":
            deadline = time.monotonic() + 10
            while not _pg_waiting_on_a_lock(first) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _pg_waiting_on_a_lock(first), "replica B never blocked on A's claim"
        else:
            time.sleep(0.2)  # let B reach SQLite's write lock; the assertion holds whether it did or not
        session_a.commit()
        session_a.close()
        thread.join(timeout=30)
        assert set(got_a) == ids and got_b == []
    finally:
        first.dispose()
        second.dispose()


def test_many_replicas_at_once_claim_every_reminder_exactly_once(db_url: str) -> None:
    engines = [db.create_db_engine(db_url) for _ in range(2)]
    try:
        ids = {_publish(db.session_factory(engines[0]), due=15, title=f"I{n}") for n in range(20)}
        barrier = threading.Barrier(4)
        claims: list[int] = []
        lock = threading.Lock()

        def replica(engine: Engine) -> None:
            sessions = db.session_factory(engine)
            barrier.wait()
            for minute in (16, 17, 18):
                with db.unit_of_work(sessions) as session:
                    due = service.due_reminders(session=session, now=T0 + timedelta(minutes=minute))
                    got = [i.id or 0 for i in due]
                with lock:
                    claims.extend(got)

        threads = [threading.Thread(target=replica, args=(engines[n % 2],)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(claims) == sorted(ids)
    finally:
        for engine in engines:
            engine.dispose()
