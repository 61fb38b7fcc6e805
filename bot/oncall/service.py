"""On-call queries: overrides, pages, and claiming each page notice and handoff notice exactly once.

A notice is claimed by inserting its row (unique on page, round, step, target, channel): of two
replicas that race, one inserts and owns the first attempt, the other inserts nothing. Retries
are claimed with a lease, fenced by `claimed_by` + `attempts` as the inbox does
(storage/inbox.py): PostgreSQL takes rows with FOR UPDATE SKIP LOCKED, SQLite has one writer at a
time (BEGIN IMMEDIATE, storage/db.py). A sender that dies mid-send loses its lease and the notice
is tried again: sends are once per claim, so a crash between sending and recording may repeat one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.oncall.pages import Notice
from bot.oncall.schedules import Override, OverrideIndex
from storage.oncall import HandoffNotice, OnCallOverride, Page, PageNotification

NOTIFICATIONS = PageNotification.__table__  # type: ignore[attr-defined]
HANDOFFS = HandoffNotice.__table__  # type: ignore[attr-defined]
DEFAULT_LEASE = timedelta(minutes=2)


class ClaimLost(RuntimeError):
    """Another sender holds this notice now (our lease ran out): our outcome must not be recorded."""


class OverrideError(ValueError):
    """An override that cannot be: it ends before it starts."""


@dataclass(frozen=True)
class Claim:
    """A claimed notice: what to send, and the fence that proves it is still ours."""

    id: int
    page_id: int
    round: int
    step: int
    target: str
    channel: str
    schedule: str | None
    worker: str
    attempt: int


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING (both dialects spell it the same)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# Overrides ------------------------------------------------------------------------------------


def add_override(
    *,
    session: Session,
    schedule: str,
    user_id: str,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str | None,
    now: datetime,
) -> OnCallOverride:
    if ends_at <= starts_at:
        raise OverrideError("an override must end after it starts")
    row = OnCallOverride(
        schedule=schedule, user_id=user_id, starts_at=starts_at, ends_at=ends_at, created_by=created_by, created_at=now
    )
    session.add(row)
    session.flush()
    return row


def list_overrides(
    *, session: Session, schedule: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[OnCallOverride]:
    """Overrides overlapping [start, end) (either bound optional), by schedule and start."""
    query = select(OnCallOverride)
    if schedule is not None:
        query = query.where(OnCallOverride.schedule == schedule)
    if start is not None:
        query = query.where(OnCallOverride.ends_at > start)
    if end is not None:
        query = query.where(OnCallOverride.starts_at < end)
    query = query.order_by(col(OnCallOverride.schedule), col(OnCallOverride.starts_at), col(OnCallOverride.id))
    return list(session.exec(query).all())


def to_override(row: OnCallOverride) -> Override:
    return Override(user_id=row.user_id, starts_at=row.starts_at, ends_at=row.ends_at, created_at=row.created_at,
                    id=row.id or 0)


def override_indexes(
    *, session: Session, start: datetime | None = None, end: datetime | None = None
) -> dict[str, OverrideIndex]:
    """Every schedule's overrides in [start, end) as an index, for fast who-is-on-call look-ups."""
    grouped: dict[str, list[Override]] = defaultdict(list)
    for row in list_overrides(session=session, start=start, end=end):
        grouped[row.schedule].append(to_override(row))
    return {schedule: OverrideIndex(overrides) for schedule, overrides in grouped.items()}


def delete_override(*, session: Session, override_id: int) -> bool:
    row = session.get(OnCallOverride, override_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


# Pages ----------------------------------------------------------------------------------------


def active_page(*, session: Session, incident_id: str) -> Page | None:
    query = select(Page).where(Page.incident_id == incident_id, col(Page.ended_at).is_(None))
    return session.exec(query.order_by(col(Page.spell).desc())).first()


def active_pages(*, session: Session) -> list[Page]:
    """Pages still running (neither acknowledged nor ended), for the sweep that sends due steps."""
    query = select(Page).where(col(Page.ended_at).is_(None), col(Page.acknowledged_at).is_(None))
    return list(session.exec(query.order_by(col(Page.id))).all())


def start_page(*, session: Session, incident_id: str, policy: str, now: datetime) -> Page | None:
    """Start a page for the incident; None when one is running already (or another replica won).

    On PostgreSQL the incident's row is locked first, so two replicas starting a page at once
    take turns: the second sees the first's page (else, between its two reads, it could count
    that page's spell and start a second spell beside it). SQLite has one writer at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        incidents = sa.table("incident", sa.column("id"))
        session.execute(sa.select(incidents.c.id).where(incidents.c.id == incident_id).with_for_update())
    if active_page(session=session, incident_id=incident_id) is not None:
        return None
    last = session.exec(select(sa.func.max(Page.spell)).where(Page.incident_id == incident_id)).one()
    spell = (last or 0) + 1
    table = Page.__table__  # type: ignore[attr-defined]
    statement = (
        _insert(session)(table)
        .values(incident_id=incident_id, spell=spell, policy=policy, started_at=now, next_step_at=now)
        .on_conflict_do_nothing(index_elements=["incident_id", "spell"])
        .returning(table.c.id)
    )
    page_id = session.execute(statement).scalar_one_or_none()
    if page_id is None:
        return None
    return session.get(Page, page_id)


def acknowledge_page(*, session: Session, incident_id: str, user_id: str, now: datetime) -> Page | None:
    """Stop the incident's running page; the first acknowledgement wins. None if none was running."""
    table = Page.__table__  # type: ignore[attr-defined]
    statement = (
        table.update()
        .where(table.c.incident_id == incident_id, table.c.ended_at.is_(None), table.c.acknowledged_at.is_(None))
        .values(
            acknowledged_at=now, acknowledged_by=user_id, ended_at=now, ended_reason="acknowledged", next_step_at=None
        )
        .returning(table.c.id)
    )
    page_id = session.execute(statement).scalar_one_or_none()
    if page_id is None:
        return None
    page = session.get(Page, page_id)
    if page is not None:
        session.refresh(page)
    return page


def end_pages(*, session: Session, incident_id: str, now: datetime, reason: str = "resolved") -> int:
    """End every running page of the incident (it was resolved); how many were running."""
    table = Page.__table__  # type: ignore[attr-defined]
    statement = (
        table.update()
        .where(table.c.incident_id == incident_id, table.c.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason, next_step_at=None)
        .execution_options(preserve_rowcount=True)
    )
    return int(session.connection().execute(statement).rowcount)


# Notices --------------------------------------------------------------------------------------


def claim_notices(
    *, session: Session, page_id: int, notices: Iterable[Notice], worker: str, now: datetime,
    lease: timedelta = DEFAULT_LEASE,
) -> list[Claim]:
    """Claim the notices of a running page that nobody has claimed yet: the ones inserted here.

    The page row is locked first (FOR UPDATE on PostgreSQL), so an acknowledgement racing this
    either lands before (nothing is claimed) or waits until the claims are committed.
    """
    pages = Page.__table__  # type: ignore[attr-defined]
    page_query = sa.select(pages.c.id).where(
        pages.c.id == page_id, pages.c.ended_at.is_(None), pages.c.acknowledged_at.is_(None)
    )
    if session.get_bind().dialect.name == "postgresql":
        page_query = page_query.with_for_update()
    if session.execute(page_query).first() is None:
        return []
    claims: list[Claim] = []
    for notice in notices:
        statement = (
            _insert(session)(NOTIFICATIONS)
            .values(
                page_id=page_id, round=notice.round, step=notice.step, target=notice.target, channel=notice.channel,
                schedule=notice.schedule, created_at=now, claimed_by=worker, claimed_at=now,
                lease_until=now + lease, attempts=1,
            )
            .on_conflict_do_nothing(index_elements=["page_id", "round", "step", "target", "channel"])
            .returning(NOTIFICATIONS.c.id)
        )
        notice_id = session.execute(statement).scalar_one_or_none()
        if notice_id is not None:
            claims.append(Claim(notice_id, page_id, notice.round, notice.step, notice.target, notice.channel,
                                notice.schedule, worker, 1))
    return claims


def claim_retries(
    *, session: Session, worker: str, now: datetime, limit: int = 50, lease: timedelta = DEFAULT_LEASE
) -> list[Claim]:
    """Claim notices of running pages that are due again: a retry whose time came, or a lapsed lease."""
    pages = Page.__table__  # type: ignore[attr-defined]
    running = sa.select(pages.c.id).where(pages.c.ended_at.is_(None), pages.c.acknowledged_at.is_(None))
    pending = (
        sa.select(NOTIFICATIONS.c.id)
        .where(
            NOTIFICATIONS.c.sent_at.is_(None),
            NOTIFICATIONS.c.dead_at.is_(None),
            NOTIFICATIONS.c.page_id.in_(running),
            sa.or_(NOTIFICATIONS.c.lease_until.is_(None), NOTIFICATIONS.c.lease_until < now),
            sa.or_(NOTIFICATIONS.c.next_attempt_at.is_(None), NOTIFICATIONS.c.next_attempt_at <= now),
        )
        .order_by(NOTIFICATIONS.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        pending = pending.with_for_update(of=NOTIFICATIONS, skip_locked=True)
    statement = (
        NOTIFICATIONS.update()
        .where(NOTIFICATIONS.c.id.in_(pending.scalar_subquery()))
        .values(claimed_by=worker, claimed_at=now, lease_until=now + lease, attempts=NOTIFICATIONS.c.attempts + 1)
        .returning(*(NOTIFICATIONS.c[name] for name in (
            "id", "page_id", "round", "step", "target", "channel", "schedule", "attempts")))
    )
    rows = session.execute(statement).all()
    claims = [Claim(r.id, r.page_id, r.round, r.step, r.target, r.channel, r.schedule, worker, r.attempts)
              for r in rows]
    return sorted(claims, key=lambda c: c.id)


def _fenced(claim: Claim) -> Any:
    return sa.and_(
        NOTIFICATIONS.c.id == claim.id,
        NOTIFICATIONS.c.claimed_by == claim.worker,
        NOTIFICATIONS.c.attempts == claim.attempt,
        NOTIFICATIONS.c.sent_at.is_(None),
        NOTIFICATIONS.c.dead_at.is_(None),
    )


def _settle(session: Session, claim: Claim, **values: Any) -> None:
    statement = (
        NOTIFICATIONS.update().where(_fenced(claim)).values(lease_until=None, **values)
        .execution_options(preserve_rowcount=True)
    )
    if session.connection().execute(statement).rowcount != 1:
        raise ClaimLost(f"page notification {claim.id} was taken over by another sender")


def mark_sent(*, session: Session, claim: Claim, now: datetime) -> None:
    _settle(session, claim, sent_at=now, last_error=None)


def mark_failed(
    *, session: Session, claim: Claim, now: datetime, error: str, retry_at: datetime | None
) -> None:
    """A failed send: tried again at `retry_at`, or set aside for good (a dead letter) when None."""
    if retry_at is None:
        _settle(session, claim, dead_at=now, last_error=error)
    else:
        _settle(session, claim, next_attempt_at=retry_at, last_error=error)


def notifications(*, session: Session, page_id: int) -> list[PageNotification]:
    query = select(PageNotification).where(PageNotification.page_id == page_id)
    return list(session.exec(query.order_by(col(PageNotification.id))).all())


# Handoff notices ------------------------------------------------------------------------------


def claim_handoff_notice(
    *, session: Session, schedule: str, shift_start: datetime, user_id: str, worker: str, now: datetime
) -> int | None:
    """Claim the notice for the shift starting at `shift_start`; its id, or None if already claimed."""
    statement = (
        _insert(session)(HANDOFFS)
        .values(schedule=schedule, shift_start=shift_start, user_id=user_id, claimed_by=worker, claimed_at=now)
        .on_conflict_do_nothing(index_elements=["schedule", "shift_start"])
        .returning(HANDOFFS.c.id)
    )
    notice_id = session.execute(statement).scalar_one_or_none()
    return int(notice_id) if notice_id is not None else None


def mark_handoff_sent(*, session: Session, notice_id: int, now: datetime, error: str | None = None) -> None:
    values: dict[str, Any] = {"last_error": error} if error else {"sent_at": now, "last_error": None}
    session.execute(HANDOFFS.update().where(HANDOFFS.c.id == notice_id).values(**values))
