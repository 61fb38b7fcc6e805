"""Per-period aggregates in SQL: counts, durations, target shares, lapsed targets, P0 downtime intervals."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from bot.reports.metrics.results import PeriodSummary, SeverityTotals
from bot.reports.metrics.sql import (
    _bucket,
    _by_severity,
    _durations,
    check_consecutive,
    deadline_passed,
    declared_in,
    dialect_of,
    escalation_table,
    fetch_rows,
    incident_table,
    reopen_table,
    with_reopens,
)
from bot.reports.metrics.stats import as_utc
from bot.reports.periods import Period
from bot.settings import Settings
from storage.models import (
    EscalationKind,
)

# SeverityTotals' twelve counts and sums (count … affected_users), in the order summaries() selects them.
_COUNTS = tuple(f.name for f in dataclasses.fields(SeverityTotals))[1:13]


def summaries(session: Session, *, settings: Settings, periods: Sequence[Period], now: datetime) -> list[PeriodSummary]:
    """Counts, duration sums and target tallies for each period, in one grouped query."""
    if not periods:
        return []
    check_consecutive(periods)
    dialect = dialect_of(session)
    c = incident_table.c
    one = sa.literal(1)
    # Each duration computed once per incident: inlined, the CTE's expressions are evaluated once
    # per aggregate that reads them (an incident's `ack` four times), so it is materialised. On
    # SQLite too: its temp table costs less than those julianday() calls on a year of incidents
    # (the tracker's twelve months: 421 -> 371 ms on 100,000 incidents). SQLite takes the hint
    # from 3.35; an older one inlines.
    reopened, ack, mitigate, resolve, to_resolution = _durations(dialect)
    per_incident = (
        sa.select(
            _bucket(c.declared_at, periods).label("bucket"),
            c.severity,
            c.category,
            c.root_cause_class,
            ack.label("ack"),
            mitigate.label("mitigate"),
            resolve.label("resolve"),
            to_resolution.label("to_resolution"),
            _by_severity(settings.response_targets).label("response_target"),
            _by_severity(settings.resolution_targets).label("resolution_target"),
            sa.case((deadline_passed(settings.response_targets, now), one), else_=0).label("response_due"),
            sa.case((deadline_passed(settings.resolution_targets, now), one), else_=0).label("resolution_due"),
            c.affected_users,
            c.revenue_impact,
        )
        .select_from(with_reopens(reopened))
        .where(declared_in(periods[0].start, periods[-1].end))
        .cte("per_incident")
    )
    if dialect == "postgresql" or sqlite3.sqlite_version_info >= (3, 35):
        per_incident = per_incident.prefix_with("MATERIALIZED")
    d = per_incident.c
    statement = sa.select(
        d.bucket,
        d.severity,
        d.category,
        d.root_cause_class,
        sa.func.count(),
        sa.func.count(d.ack),
        sa.func.coalesce(sa.func.sum(d.ack), 0),
        sa.func.count(d.mitigate),
        sa.func.coalesce(sa.func.sum(d.mitigate), 0),
        sa.func.count(d.resolve),
        sa.func.coalesce(sa.func.sum(d.resolve), 0),
        sa.func.sum(sa.case((d.ack <= d.response_target, one), else_=0)),
        sa.func.sum(sa.case((d.ack.is_not(None), one), (d.response_due == 1, one), else_=0)),
        sa.func.sum(sa.case((d.to_resolution <= d.resolution_target, one), else_=0)),
        sa.func.sum(sa.case((d.to_resolution.is_not(None), one), (d.resolution_due == 1, one), else_=0)),
        sa.func.coalesce(sa.func.sum(d.affected_users), 0),
        sa.func.coalesce(sa.func.sum(d.revenue_impact), 0.0),
    ).group_by(d.bucket, d.severity, d.category, d.root_cause_class)
    totals: list[dict[str, list[int | float]]] = [{} for _ in periods]
    categories: list[dict[str, int]] = [{} for _ in periods]
    root_causes: list[dict[str, int]] = [{} for _ in periods]
    for row in fetch_rows(session, statement):
        if row[0] is None:
            continue
        index = int(row[0])
        numbers = [int(v) for v in row[4:16]] + [float(row[16])]
        acc = totals[index].setdefault(row[1], [0] * 12 + [0.0])
        for position, value in enumerate(numbers):
            acc[position] += value
        if row[2] is not None:
            categories[index][row[2]] = categories[index].get(row[2], 0) + int(row[4])
        if row[3] is not None:
            root_causes[index][row[3]] = root_causes[index].get(row[3], 0) + int(row[4])
    result = []
    for index, period in enumerate(periods):
        severities = tuple(
            SeverityTotals(
                severity,
                **{name: int(v) for name, v in zip(_COUNTS, totals[index][severity][:12], strict=True)},
                revenue_impact=round(float(totals[index][severity][12]), 2),
            )
            for severity in sorted(totals[index])
        )
        result.append(
            PeriodSummary(
                period=period,
                total=sum(s.count for s in severities),
                severities=severities,
                categories=categories[index],
                root_causes=root_causes[index],
            )
        )
    return result


def merge_summaries(period: Period, parts: Sequence[PeriodSummary]) -> PeriodSummary:
    """One summary for a period made of whole smaller ones (a quarter from its months): no new query."""
    severities = []
    for severity in sorted({s.severity for part in parts for s in part.severities}):
        rows = [part.severity(severity) for part in parts]
        numbers = {
            name: sum(getattr(row, name) for row in rows)
            for name in SeverityTotals.__dataclass_fields__
            if name not in ("severity", "revenue_impact")
        }
        revenue = round(sum(row.revenue_impact for row in rows), 2)
        severities.append(SeverityTotals(severity, revenue_impact=revenue, **numbers))
    categories: dict[str, int] = {}
    root_causes: dict[str, int] = {}
    for part in parts:
        for name, count in part.categories.items():
            categories[name] = categories.get(name, 0) + count
        for name, count in part.root_causes.items():
            root_causes[name] = root_causes.get(name, 0) + count
    return PeriodSummary(
        period=period,
        total=sum(part.total for part in parts),
        severities=tuple(severities),
        categories=categories,
        root_causes=root_causes,
    )


def duration_samples(session: Session, *, period: Period) -> dict[str, tuple[list[int], list[int], list[int]]]:
    """Per severity: the MTTA, MTTM and MTTR samples (whole seconds) of the period's incidents."""
    dialect = dialect_of(session)
    c = incident_table.c
    reopened, ack, mitigate, resolve, _ = _durations(dialect)
    statement = (
        sa.select(c.severity, ack, mitigate, resolve, c.resolved_at.is_not(None))
        .select_from(with_reopens(reopened))
        .where(declared_in(period.start, period.end))
    )
    samples: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for severity, ack, mitigate, resolve, resolved in fetch_rows(session, statement):
        acks, mitigations, resolutions = samples.setdefault(severity, ([], [], []))
        if ack is not None:
            acks.append(int(ack))
        if mitigate is not None:
            mitigations.append(int(mitigate))
        if resolved:
            resolutions.append(int(resolve))
    return samples


def lapsed_targets(
    session: Session, *, settings: Settings, period: Period, now: datetime
) -> dict[str, tuple[int, int]]:
    """Per severity: (incidents whose response target lapsed, whose resolution target lapsed)."""
    dialect = dialect_of(session)
    c = incident_table.c
    e = escalation_table.c
    target_kinds = (EscalationKind.RESPONSE.value, EscalationKind.RESOLUTION.value)
    # One row per escalated incident (a join, not a correlated EXISTS per incident).
    announced = (
        sa.select(
            e.incident_id,
            sa.func.max(sa.case((e.kind == EscalationKind.RESPONSE.value, 1), else_=0)).label("response"),
            sa.func.max(sa.case((e.kind == EscalationKind.RESOLUTION.value, 1), else_=0)).label("resolution"),
        )
        .where(e.kind.in_(target_kinds))
        .group_by(e.incident_id)
        .subquery()
    )
    has_rows = announced.c.incident_id.is_not(None)
    reopened, ack, _, _, to_resolution = _durations(dialect)
    response_judged = sa.or_(
        sa.and_(c.acknowledged_at.is_not(None), ack > _by_severity(settings.response_targets)),
        sa.and_(c.acknowledged_at.is_(None), deadline_passed(settings.response_targets, now)),
    )
    resolution_judged = sa.or_(
        sa.and_(c.resolved_at.is_not(None), to_resolution > _by_severity(settings.resolution_targets)),
        sa.and_(c.resolved_at.is_(None), deadline_passed(settings.resolution_targets, now)),
    )
    one = sa.literal(1)
    response = sa.case(
        (has_rows, announced.c.response),
        (response_judged, one),
        else_=0,
    )
    resolution = sa.case(
        (has_rows, announced.c.resolution),
        (resolution_judged, one),
        else_=0,
    )
    statement = (
        sa.select(c.severity, sa.func.sum(response), sa.func.sum(resolution))
        .select_from(with_reopens(reopened).outerjoin(announced, announced.c.incident_id == c.id))
        .where(declared_in(period.start, period.end))
        .group_by(c.severity)
    )
    return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in fetch_rows(session, statement)}


def resolved_gaps(session: Session, incident_ids: Sequence[str]) -> dict[str, timedelta]:
    """Per reopened incident among these: how long it sat resolved before its reopenings."""
    if not incident_ids:
        return {}
    r = reopen_table.c
    gaps: dict[str, timedelta] = {}
    statement = sa.select(r.incident_id, r.resolved_before, r.reopened_at).where(r.incident_id.in_(incident_ids))
    for incident_id, resolved_before, reopened_at in fetch_rows(session, statement):
        gaps[incident_id] = gaps.get(incident_id, timedelta()) + (as_utc(reopened_at) - as_utc(resolved_before))
    return gaps


def p0_intervals(session: Session, *, start: datetime, end: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """P0 impact intervals (started -> mitigated, else resolved, else now) overlapping [start, end),
    and those of reopened P0s (reopened -> its mitigation, else resolution, else now)."""
    c = incident_table.c
    r = reopen_table.c
    spells = (
        sa.select(r.reopened_at, r.mitigated_at)
        .select_from(reopen_table.join(incident_table, c.id == r.incident_id))
        .where(c.severity == "P0", r.reopened_at < end, sa.or_(r.mitigated_at.is_(None), r.mitigated_at > start))
    )
    impact_end = sa.func.coalesce(c.mitigated_at, c.resolved_at)
    statement = sa.select(c.started_at, c.mitigated_at, c.resolved_at).where(
        c.severity == "P0",
        c.started_at < end,
        sa.or_(impact_end.is_(None), impact_end > start),
    )
    intervals = []
    for row in session.execute(statement):
        started, mitigated, resolved = (
            as_utc(row[0]),
            as_utc(row[1]) if row[1] else None,
            as_utc(row[2]) if row[2] else None,
        )
        finished = mitigated or resolved or now
        if finished > started:
            intervals.append((started, finished))
    for reopened_at, mitigated_at in session.execute(spells):
        began, ended = as_utc(reopened_at), as_utc(mitigated_at) if mitigated_at else now
        if ended > began:
            intervals.append((began, ended))
    return intervals
