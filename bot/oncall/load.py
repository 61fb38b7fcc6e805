"""On-call load over a period, read from the database: per person, pages, out-of-hours pages, hours, acks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from bot.oncall import service
from bot.oncall.config import OnCallConfig
from bot.oncall.pages import Acknowledgement, Load, OnCallStretch, PageReceived, oncall_load
from bot.oncall.schedules import OverrideIndex, effective_shifts
from storage.oncall import Page, PageNotification

USER_CHANNELS = ("dm", "email", "webhook")


def period_load(session: Session, config: OnCallConfig, start: datetime, end: datetime) -> dict[str, Load]:
    """DOMAIN.md "On-call load" for [start, end); empty when no schedule is configured."""
    if not config.schedules:
        return {}
    n, p = PageNotification.__table__.c, Page.__table__.c  # type: ignore[attr-defined]
    received = session.execute(
        sa.select(n.page_id, n.target, n.schedule, sa.func.coalesce(n.sent_at, n.created_at))
        .where(n.channel.in_(USER_CHANNELS), n.created_at >= start, n.created_at < end)
    ).all()
    pages = [PageReceived(page_id, user, at, schedule) for page_id, user, schedule, at in received]
    acked = session.execute(
        sa.select(p.incident_id, p.acknowledged_by, p.acknowledged_at)
        .where(p.acknowledged_at.is_not(None), p.acknowledged_at >= start, p.acknowledged_at < end)
    ).all()
    acknowledgements = [Acknowledgement(incident, user, at) for incident, user, at in acked if user]
    indexes = service.override_indexes(session=session, start=start, end=end)
    stretches = [
        OnCallStretch(segment.user_id, name, segment.starts_at, segment.ends_at)
        for name, schedule in config.schedules.items()
        for segment in effective_shifts(schedule, indexes.get(name) or OverrideIndex(), start, end)
    ]
    zones = {name: schedule.zone for name, schedule in config.schedules.items()}
    return oncall_load(pages, stretches, acknowledgements, (start, end), zones)


def ranked(load: dict[str, Load]) -> list[tuple[str, Load]]:
    """Busiest first: pages, then hours on call."""
    return sorted(load.items(), key=lambda item: (-item[1].pages, -item[1].hours_on_call, item[0]))
