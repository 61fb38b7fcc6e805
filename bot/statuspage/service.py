"""Status page queries and changes (`*, session`): publish, update, resolve, maintenance, reminders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.statuspage.config import StatusPageConfig
from bot.statuspage.model import (
    NEXT_UPDATE_MINUTES,
    Impact,
    IncidentView,
    MaintenanceView,
    PublicStatus,
    Snapshot,
    UpdateView,
)
from storage.statuspage import (
    MaintenanceWindow,
    PublicIncident,
    PublicIncidentComponent,
    PublicUpdate,
    StatusPageVersion,
)


class StatusPageError(ValueError):
    """A request the status page cannot take (unknown component, bad impact…): safe to show the user."""


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; Slack never sends one, a pasted binary might.
    return text.replace("\x00", "")


def _check_components(components: Collection[str], config: StatusPageConfig | None) -> list[str]:
    keys = list(dict.fromkeys(components))
    if not keys:
        raise StatusPageError("choose at least one component")
    if config is not None:
        unknown = [k for k in keys if config.component(k) is None]
        if unknown:
            raise StatusPageError(f"unknown component {unknown[0]!r}")
    return keys


def _impact(value: str) -> str:
    try:
        return Impact(value).value
    except ValueError:
        raise StatusPageError(f"impact must be one of {', '.join(i.value for i in Impact)}") from None


def _status(value: str) -> str:
    try:
        return PublicStatus(value).value
    except ValueError:
        raise StatusPageError(f"status must be one of {', '.join(s.value for s in PublicStatus)}") from None


def _next_due(now: datetime, minutes: int | None) -> datetime | None:
    if minutes is None:
        return None
    if minutes not in NEXT_UPDATE_MINUTES:
        raise StatusPageError(f"next update is due in {', '.join(map(str, NEXT_UPDATE_MINUTES))} minutes")
    return now + timedelta(minutes=minutes)


def bump_version(*, session: Session, now: datetime) -> None:
    """Count one change, in the caller's transaction, so every replica's cache notices it."""
    table = StatusPageVersion.__table__  # type: ignore[attr-defined]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(id=1, version=1, changed_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"version": table.c.version + 1, "changed_at": now})
    session.execute(stmt)


def current_version(*, session: Session) -> int:
    """The change counter: one primary-key read, cheap enough to poll every second."""
    version = session.exec(select(StatusPageVersion.version).where(StatusPageVersion.id == 1)).first()
    return version or 0


def publish(
    *,
    session: Session,
    title: str,
    components: Collection[str],
    impact: str,
    message: str,
    now: datetime,
    incident_id: str | None = None,
    author_id: str | None = None,
    next_update_in: int | None = None,
    config: StatusPageConfig | None = None,
) -> PublicIncident:
    """Put an incident on the public page: its own title, components, impact and first message."""
    title = _clean(title).strip()
    if not title:
        raise StatusPageError("the public title is empty")
    keys = _check_components(components, config)
    incident = PublicIncident(
        incident_id=incident_id,
        title=title[:200],
        impact=_impact(impact),
        status=PublicStatus.INVESTIGATING.value,
        created_at=now,
        updated_at=now,
        next_update_due=_next_due(now, next_update_in),
    )
    session.add(incident)
    session.flush()
    assert incident.id is not None
    for key in keys:
        session.add(PublicIncidentComponent(public_incident_id=incident.id, component=key))
    session.add(
        PublicUpdate(
            public_incident_id=incident.id,
            status=incident.status,
            impact=incident.impact,
            message=_clean(message),
            created_at=now,
            author_id=author_id,
        )
    )
    bump_version(session=session, now=now)
    session.flush()
    return incident


def post_update(
    *,
    session: Session,
    public_id: int,
    status: str,
    message: str,
    now: datetime,
    impact: str | None = None,
    author_id: str | None = None,
    next_update_in: int | None = None,
) -> PublicUpdate:
    """A public update; `resolved` ends the incident. A new promise of an update re-arms its reminder."""
    incident = session.get(PublicIncident, public_id, with_for_update=True)
    if incident is None:
        raise StatusPageError(f"no public incident {public_id}")
    if incident.resolved_at is not None:
        raise StatusPageError("this public incident is resolved")
    status = _status(status)
    if impact is not None:
        incident.impact = _impact(impact)
    incident.status = status
    incident.updated_at = now
    if status == PublicStatus.RESOLVED:
        incident.resolved_at = now
        incident.next_update_due = None
    else:
        incident.next_update_due = _next_due(now, next_update_in)
    incident.reminded_at = None
    update = PublicUpdate(
        public_incident_id=public_id,
        status=status,
        impact=incident.impact,
        message=_clean(message),
        created_at=now,
        author_id=author_id,
    )
    session.add(incident)
    session.add(update)
    bump_version(session=session, now=now)
    session.flush()
    return update


def resolve(
    *, session: Session, public_id: int, message: str, now: datetime, author_id: str | None = None
) -> PublicUpdate:
    return post_update(
        session=session, public_id=public_id, status="resolved", message=message, now=now, author_id=author_id
    )


def schedule_maintenance(
    *,
    session: Session,
    components: Collection[str],
    starts_at: datetime,
    ends_at: datetime,
    message: str,
    now: datetime,
    title: str = "Scheduled maintenance",
    created_by: str | None = None,
    config: StatusPageConfig | None = None,
) -> MaintenanceWindow:
    keys = _check_components(components, config)
    if ends_at <= starts_at:
        raise StatusPageError("the maintenance must end after it starts")
    window = MaintenanceWindow(
        title=_clean(title).strip()[:200] or "Scheduled maintenance",
        components=keys,
        starts_at=starts_at,
        ends_at=ends_at,
        message=_clean(message),
        created_by=created_by,
        created_at=now,
    )
    session.add(window)
    bump_version(session=session, now=now)
    session.flush()
    return window


def components_for_alert(labels: Mapping[str, str], *, config: StatusPageConfig) -> list[str]:
    return config.components_for_alert(labels)


def in_maintenance(components: Iterable[str], t: datetime, *, session: Session) -> bool:
    """Are all these components (at least one) inside a maintenance window at t?

    An alert that also touches a component not under maintenance still opens an incident.
    """
    wanted = set(components)
    if not wanted:
        return False
    windows = session.exec(
        select(MaintenanceWindow).where(MaintenanceWindow.starts_at <= t, MaintenanceWindow.ends_at > t)
    ).all()
    covered = {key for window in windows for key in window.components}
    return wanted <= covered


def due_reminders(*, session: Session, now: datetime) -> list[PublicIncident]:
    """Public incidents whose promised update is due, each claimed by exactly one caller.

    The claim is a conditional UPDATE: on PostgreSQL a racing replica's UPDATE waits for ours and
    then finds reminded_at set; SQLite takes its write lock up front. Commit with what you send.
    """
    table = PublicIncident.__table__  # type: ignore[attr-defined]
    candidates = session.exec(
        select(PublicIncident.id).where(
            col(PublicIncident.next_update_due) <= now,
            col(PublicIncident.reminded_at).is_(None),
            col(PublicIncident.resolved_at).is_(None),
        )
    ).all()
    claimed: list[PublicIncident] = []
    for public_id in candidates:
        result = session.execute(
            sa.update(table)
            .where(
                table.c.id == public_id,
                table.c.reminded_at.is_(None),
                table.c.resolved_at.is_(None),
                table.c.next_update_due <= now,
            )
            .values(reminded_at=now)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            incident = session.get(PublicIncident, public_id, populate_existing=True)
            assert incident is not None
            claimed.append(incident)
    return claimed


def open_for_incident(incident_id: str, *, session: Session) -> PublicIncident | None:
    """The internal incident's public incident that is not resolved yet, if it has one."""
    query = select(PublicIncident).where(
        PublicIncident.incident_id == incident_id, col(PublicIncident.resolved_at).is_(None)
    )
    return session.exec(query.order_by(col(PublicIncident.id).desc())).first()


def get_incident(public_id: int, *, session: Session) -> IncidentView | None:
    rows = _views(session, PublicIncident.id == public_id)
    return rows[0] if rows else None


def list_active(*, session: Session) -> list[IncidentView]:
    return _views(session, col(PublicIncident.resolved_at).is_(None))


def list_recent(*, session: Session, now: datetime, days: int = 14) -> list[IncidentView]:
    """Incidents still open or active at any time in the last `days` days."""
    since = now - timedelta(days=days)
    return _views(session, sa.or_(col(PublicIncident.resolved_at).is_(None), col(PublicIncident.resolved_at) >= since))


def list_by_month(*, session: Session, zone: ZoneInfo | None = None) -> dict[tuple[int, int], list[IncidentView]]:
    """Every public incident by the (year, month) it began in, in `zone` (UTC by default), newest first."""
    months: dict[tuple[int, int], list[IncidentView]] = defaultdict(list)
    for incident in _views(session):
        local = incident.created_at.astimezone(zone) if zone else incident.created_at
        months[(local.year, local.month)].append(incident)
    return dict(sorted(months.items(), reverse=True))


def list_maintenance(*, session: Session, since: datetime | None = None) -> list[MaintenanceView]:
    query = select(MaintenanceWindow)
    if since is not None:
        query = query.where(MaintenanceWindow.ends_at >= since)
    windows = session.exec(query.order_by(col(MaintenanceWindow.starts_at).desc())).all()
    return [
        MaintenanceView(
            id=w.id or 0,
            title=w.title,
            components=tuple(w.components),
            starts_at=w.starts_at,
            ends_at=w.ends_at,
            message=w.message,
            created_at=w.created_at,
        )
        for w in windows
    ]


def snapshot(*, session: Session, now: datetime) -> Snapshot:
    """Everything the site renders, read together (call within one transaction)."""
    # The version first: on PostgreSQL each statement sees its own snapshot, so a change committed
    # while we read makes the data newer than the version, and the next poll renders again.
    version = current_version(session=session)
    incidents = _views(session)
    maintenance = list_maintenance(session=session)
    times = [i.created_at for i in incidents] + [m.created_at for m in maintenance]
    return Snapshot(
        now=now,
        version=version,
        incidents=tuple(incidents),
        maintenance=tuple(maintenance),
        first_seen=min(times, default=now),
    )


def _views(session: Session, *where: Any) -> list[IncidentView]:
    """Public incidents with their components and updates, newest first.

    Plain column reads, not ORM objects: a cold render of the page loads every public incident.
    """
    pi: sa.Table = PublicIncident.__table__  # type: ignore[attr-defined]
    pc: sa.Table = PublicIncidentComponent.__table__  # type: ignore[attr-defined]
    pu: sa.Table = PublicUpdate.__table__  # type: ignore[attr-defined]
    incidents = session.execute(
        sa.select(pi.c.id, pi.c.title, pi.c.impact, pi.c.status, pi.c.created_at, pi.c.updated_at, pi.c.resolved_at)
        .where(*where)
        .order_by(pi.c.created_at.desc(), pi.c.id.desc())
    ).all()
    if not incidents:
        return []
    ids = [row.id for row in incidents]
    components: dict[int, list[str]] = defaultdict(list)
    for row in session.execute(
        sa.select(pc.c.public_incident_id, pc.c.component)
        .where(pc.c.public_incident_id.in_(ids))
        .order_by(pc.c.component)
    ):
        components[row.public_incident_id].append(row.component)
    updates: dict[int, list[UpdateView]] = defaultdict(list)
    for u in session.execute(
        sa.select(pu.c.id, pu.c.public_incident_id, pu.c.status, pu.c.impact, pu.c.message, pu.c.created_at)
        .where(pu.c.public_incident_id.in_(ids))
        .order_by(pu.c.created_at, pu.c.id)
    ):
        updates[u.public_incident_id].append(
            UpdateView(id=u.id, status=u.status, impact=u.impact, message=u.message, created_at=u.created_at)
        )
    return [
        IncidentView(
            id=i.id,
            title=i.title,
            impact=i.impact,
            status=i.status,
            created_at=i.created_at,
            updated_at=i.updated_at,
            resolved_at=i.resolved_at,
            components=tuple(components[i.id]),
            updates=tuple(updates[i.id]),
        )
        for i in incidents
    ]
