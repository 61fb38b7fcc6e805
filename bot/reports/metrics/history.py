"""Queries over the history: repeats, weekly anomalies, follow-up ages, runbooks, recurring issues, open incidents."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from bot.reports.metrics.results import (
    ANOMALY_SIGMAS,
    ANOMALY_TRAILING_WEEKS,
    FOLLOW_UP_BUCKETS,
    REPEAT_WINDOW,
    FollowUpAges,
    OpenIncident,
    RecurringIssue,
    RunbookCount,
    WeekAnomaly,
)
from bot.reports.metrics.sql import (
    _bucket,
    check_consecutive,
    declared_in,
    dialect_of,
    epoch_seconds,
    fetch_rows,
    follow_up_table,
    incident_table,
    runbook_use_table,
)
from bot.reports.metrics.stats import as_utc
from bot.reports.periods import Period, current_period, period_before, periods_back


def repeat_incidents(session: Session, *, start: datetime, end: datetime) -> tuple[str, ...]:
    """Ids of incidents declared in [start, end) whose category and service (or alert name) match
    an incident resolved in the 30 days before their declaration."""
    dialect = dialect_of(session)
    c = incident_table.c
    resolved = sa.select(
        c.category,
        c.affected,
        c.alert_name,
        c.resolved_at.label("t"),
        sa.literal(1).label("is_resolution"),
        sa.cast(sa.null(), sa.String).label("id"),
    ).where(c.resolved_at >= start - REPEAT_WINDOW, c.resolved_at < end, c.category.is_not(None))
    declared = sa.select(
        c.category,
        c.affected,
        c.alert_name,
        c.declared_at.label("t"),
        sa.literal(0).label("is_resolution"),
        c.id,
    ).where(declared_in(start, end), c.category.is_not(None))
    events = sa.union_all(resolved, declared).subquery()

    def last_resolution(key: Any) -> Any:
        # Declarations sort before resolutions at the same instant: an incident resolved in the
        # instant it was declared is not its own predecessor.
        return sa.func.max(sa.case((events.c.is_resolution == 1, events.c.t), else_=None)).over(
            partition_by=(events.c.category, key),
            order_by=(events.c.t, events.c.is_resolution),
            rows=(None, 0),
        )

    windowed = sa.select(
        events.c.id,
        events.c.t,
        events.c.is_resolution,
        events.c.affected,
        events.c.alert_name,
        last_resolution(events.c.affected).label("by_service"),
        last_resolution(events.c.alert_name).label("by_alert"),
    ).subquery()
    w = windowed.c
    window = REPEAT_WINDOW.total_seconds()

    def recent(key: Any, last: Any) -> ColumnElement[bool]:
        return sa.and_(
            key.is_not(None),
            last.is_not(None),
            epoch_seconds(w.t, dialect) - epoch_seconds(last, dialect) <= window,
        )

    statement = (
        sa.select(w.id)
        .where(w.is_resolution == 0, sa.or_(recent(w.affected, w.by_service), recent(w.alert_name, w.by_alert)))
        .order_by(w.id)
    )
    return tuple(row[0] for row in fetch_rows(session, statement))


def counts_per_period(session: Session, *, periods: Sequence[Period]) -> list[int]:
    """Incidents declared in each of the consecutive periods (one grouped query)."""
    if not periods:
        return []
    check_consecutive(periods)
    bucket = _bucket(incident_table.c.declared_at, periods).label("bucket")
    statement = (
        sa.select(bucket, sa.func.count()).where(declared_in(periods[0].start, periods[-1].end)).group_by(bucket)
    )
    counts = [0] * len(periods)
    for index, count in fetch_rows(session, statement):
        if index is not None:
            counts[int(index)] = int(count)
    return counts


def week_anomalies(session: Session, *, weeks: Sequence[Period]) -> tuple[WeekAnomaly, ...]:
    """Each week's count against the trailing 12 weeks: flagged above mean + 2 standard deviations
    (population standard deviation; weeks without incidents count as zero)."""
    if not weeks:
        return ()
    trailing = periods_back(period_before(weeks[0]), ANOMALY_TRAILING_WEEKS)
    counts = counts_per_period(session, periods=[*trailing, *weeks])
    result = []
    for index, week in enumerate(weeks):
        history = counts[index : index + ANOMALY_TRAILING_WEEKS]
        count = counts[index + ANOMALY_TRAILING_WEEKS]
        mean = sum(history) / len(history)
        stdev = statistics.pstdev(history)
        result.append(WeekAnomaly(week, count, mean, stdev, count > mean + ANOMALY_SIGMAS * stdev))
    return tuple(result)


def weeks_starting_in(period: Period) -> list[Period]:
    if period.kind == "weekly":
        return [period]
    week = current_period("weekly", period.start, period.timezone)
    if week.start < period.start:
        week = current_period("weekly", week.end, period.timezone)
    weeks = []
    while week.start < period.end:
        weeks.append(week)
        week = current_period("weekly", week.end, period.timezone)
    return weeks


def follow_up_ages(session: Session, *, today: date) -> FollowUpAges:
    """Open follow-ups, and the overdue ones by how long past their due date."""
    f = follow_up_table.c
    week_ago = today - timedelta(days=7)
    month_ago = today - timedelta(days=30)
    one = sa.literal(1)
    statement = sa.select(
        sa.func.count(),
        sa.func.sum(sa.case((f.due_date < today, one), else_=0)),
        sa.func.sum(sa.case((sa.and_(f.due_date < today, f.due_date > week_ago), one), else_=0)),
        sa.func.sum(sa.case((sa.and_(f.due_date <= week_ago, f.due_date >= month_ago), one), else_=0)),
        sa.func.sum(sa.case((f.due_date < month_ago, one), else_=0)),
    ).where(f.done.is_(False))
    row = fetch_rows(session, statement)[0]
    numbers = [int(v or 0) for v in row]
    return FollowUpAges(
        open=numbers[0],
        overdue=numbers[1],
        overdue_by_age=tuple(zip(FOLLOW_UP_BUCKETS, numbers[2:], strict=True)),
    )


def runbook_counts(session: Session, *, start: datetime, end: datetime, limit: int = 5) -> tuple[RunbookCount, ...]:
    r = runbook_use_table.c
    count = sa.func.count().label("uses")
    statement = (
        sa.select(r.runbook, count)
        .where(r.used_at >= start, r.used_at < end)
        .group_by(r.runbook)
        .order_by(count.desc(), r.runbook)
        .limit(limit)
    )
    return tuple(RunbookCount(name, int(n)) for name, n in fetch_rows(session, statement))


def recurring_issues(session: Session, *, start: datetime, end: datetime, limit: int = 3) -> tuple[RecurringIssue, ...]:
    """The (category, affected service) pairs declared most often, at least twice, in [start, end)."""
    c = incident_table.c
    count = sa.func.count().label("n")
    statement = (
        sa.select(c.category, c.affected, count)
        .where(declared_in(start, end), c.category.is_not(None), c.affected.is_not(None))
        .group_by(c.category, c.affected)
        .having(sa.func.count() >= 2)
        .order_by(count.desc(), c.category, c.affected)
        .limit(limit)
    )
    return tuple(RecurringIssue(cat, affected, int(n)) for cat, affected, n in fetch_rows(session, statement))


def open_incidents(session: Session, *, limit: int = 50) -> tuple[tuple[OpenIncident, ...], int]:
    """The oldest `limit` unresolved incidents and how many there are in all."""
    c = incident_table.c
    statement = (
        sa.select(c.id, c.severity, c.status, c.title, c.declared_at, c.commander)
        .where(c.resolved_at.is_(None))
        .order_by(c.severity, c.declared_at, c.id)
        .limit(limit)
    )
    rows = tuple(
        OpenIncident(row[0], row[1], row[2], row[3], as_utc(row[4]), row[5]) for row in session.execute(statement)
    )
    total = session.execute(sa.select(sa.func.count()).where(c.resolved_at.is_(None))).scalar_one()
    return rows, int(total)
