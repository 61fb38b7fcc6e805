"""SQL building blocks shared by the metric queries: epoch seconds, severity-keyed targets, buckets, reopen spells."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from bot.reports.periods import Period
from storage.models import (
    SEVERITIES,
    Escalation,
    FollowUp,
    Incident,
    Reopen,
    RunbookUse,
    table_of,
)

incident_table = table_of(Incident)


escalation_table = table_of(Escalation)


follow_up_table = table_of(FollowUp)


runbook_use_table = table_of(RunbookUse)


reopen_table = table_of(Reopen)


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[Any]:
    """Seconds since 1970 of a UTC timestamp column, on either backend."""
    if dialect == "sqlite":
        # Stored as naive UTC text; julianday reads it as UTC.
        return (sa.func.julianday(column) - 2440587.5) * 86400.0
    return sa.extract("epoch", column)


def seconds_between(start: Any, end: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds from start to end (NULL if either is): whole seconds so both backends agree."""
    return sa.cast(sa.func.round(epoch_seconds(end, dialect) - epoch_seconds(start, dialect)), sa.Integer)


def _by_severity(values: Mapping[str, timedelta]) -> ColumnElement[Any]:
    return sa.case(
        *((incident_table.c.severity == sev, values[sev].total_seconds()) for sev in SEVERITIES if sev in values),
        else_=None,
    )


def deadline_passed(targets: Mapping[str, timedelta], now: datetime) -> ColumnElement[bool]:
    return sa.or_(
        *(
            sa.and_(incident_table.c.severity == sev, incident_table.c.declared_at < now - targets[sev])
            for sev in SEVERITIES
            if sev in targets
        )
    )


def declared_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return sa.and_(incident_table.c.declared_at >= start, incident_table.c.declared_at < end)


def _bucket(column: Any, periods: Sequence[Period]) -> ColumnElement[Any]:
    return sa.case(
        *((sa.and_(column >= p.start, column < p.end), index) for index, p in enumerate(periods)),
        else_=None,
    )


def _reopened(dialect: str) -> sa.Subquery:
    """Per reopened incident: seconds it sat resolved before reopenings, and its later spells' impact."""
    r = reopen_table.c
    return (
        sa.select(
            r.incident_id,
            sa.func.sum(seconds_between(r.resolved_before, r.reopened_at, dialect)).label("resolved_gap"),
            # SUM skips a spell still going on (no mitigation yet): only closed spells have a length.
            sa.func.sum(seconds_between(r.reopened_at, r.mitigated_at, dialect)).label("later_impact"),
        )
        .group_by(r.incident_id)
        .subquery("reopened")
    )


def _durations(dialect: str) -> tuple[sa.Subquery, Any, Any, Any, Any]:
    """The reopen subquery to outer-join on, and the MTTA, MTTM, MTTR and declared -> resolved
    expressions in whole seconds (NULL where an incident has no such duration yet)."""
    c = incident_table.c
    reopened = _reopened(dialect)
    gap = sa.func.coalesce(reopened.c.resolved_gap, 0)
    ack = seconds_between(c.declared_at, c.acknowledged_at, dialect)
    # Every mitigated incident, open or not; one resolved without being marked mitigated counts
    # from its resolution (its impact ended there).
    impact_end = sa.func.coalesce(c.mitigated_at, c.resolved_at)
    mitigate = sa.case(
        (
            impact_end.is_not(None),
            seconds_between(c.started_at, impact_end, dialect) + sa.func.coalesce(reopened.c.later_impact, 0),
        ),
        else_=None,
    )
    resolve = seconds_between(c.started_at, c.resolved_at, dialect) - gap
    to_resolution = seconds_between(c.declared_at, c.resolved_at, dialect) - gap
    return reopened, ack, mitigate, resolve, to_resolution


def with_reopens(reopened: sa.Subquery) -> Any:
    return incident_table.outerjoin(reopened, reopened.c.incident_id == incident_table.c.id)


def fetch_rows(session: Session, statement: Any) -> list[Any]:
    # Core statements on the session's connection: plain tuples, never ORM objects.
    return list(session.connection().execute(statement))


def check_consecutive(periods: Sequence[Period]) -> None:
    for before, after in itertools.pairwise(periods):
        if before.end > after.start:
            raise ValueError("periods must be in order and must not overlap")
