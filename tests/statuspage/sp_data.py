"""A small published status page for the tests: components, incidents old and open, maintenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.statuspage import service
from bot.statuspage.config import StatusPageConfig, parse_status_page
from bot.statuspage.model import Snapshot
from bot.statuspage.summary import PageInfo, Summary, summarise
from storage import db

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
CONFIG: StatusPageConfig = parse_status_page(
    {
        "components": [
            {"key": "api", "name": "API", "description": "The public REST API", "services": ["api-gateway"]},
            {"key": "web", "name": "Website", "group": "Frontend"},
            {"key": "cdn", "name": "CDN", "group": "Frontend", "only_show_if_degraded": True},
            {"key": "db", "name": "Database"},
        ]
    }
)
INFO = PageInfo(name="Acme Status", url="https://status.example.com", page_id="acme")


def populate(sessions: db.SessionFactory, now: datetime = NOW) -> dict[str, int]:
    """Publish a resolved incident, an open one, and two maintenance windows; return their ids."""
    ids: dict[str, int] = {}
    with db.unit_of_work(sessions) as session:
        old = service.publish(
            session=session,
            title="Website slow",
            components=["web"],
            impact="degraded_performance",
            message="Pages load slowly.",
            now=now - timedelta(days=3),
            author_id="U0ALICE",
            config=CONFIG,
        )
        ids["resolved"] = old.id or 0
        service.post_update(
            session=session,
            public_id=ids["resolved"],
            status="identified",
            impact="partial_outage",
            message="A cache node failed.",
            now=now - timedelta(days=3) + timedelta(minutes=20),
        )
        service.resolve(
            session=session,
            public_id=ids["resolved"],
            message="All good.",
            now=now - timedelta(days=3) + timedelta(hours=1),
        )
        current = service.publish(
            session=session,
            title="API errors",
            components=["api", "db"],
            impact="major_outage",
            message="Requests fail.",
            now=now - timedelta(minutes=30),
            next_update_in=30,
            config=CONFIG,
        )
        ids["active"] = current.id or 0
        ids["maintenance_now"] = (
            service.schedule_maintenance(
                session=session,
                components=["cdn"],
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=1),
                message="CDN provider change",
                now=now - timedelta(days=1),
                title="CDN migration",
                config=CONFIG,
            ).id
            or 0
        )
        ids["maintenance_later"] = (
            service.schedule_maintenance(
                session=session,
                components=["db"],
                starts_at=now + timedelta(days=1),
                ends_at=now + timedelta(days=1, hours=2),
                message="Version upgrade",
                now=now - timedelta(days=1),
                config=CONFIG,
            ).id
            or 0
        )
    return ids


def load(sessions: db.SessionFactory, now: datetime = NOW) -> Snapshot:
    with db.unit_of_work(sessions) as session:
        return service.snapshot(session=session, now=now)


def summary(sessions: db.SessionFactory, now: datetime = NOW) -> Summary:
    return summarise(load(sessions, now), CONFIG, INFO)
