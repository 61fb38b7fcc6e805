"""What several tracker sections share, fetched once, and the tracker's size limits."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from bot.reports import metrics
from bot.reports.metrics import PeriodSummary
from bot.reports.periods import Period
from bot.settings import Settings
from storage.models import (
    Incident,
    table_of,
)

LOG_LIMIT = 50  # incidents written out in full in the tracker's log; the rest are one line a month


LOG_MONTHS = 12


LESSON_LIMIT = 5


ACTION_LIMIT = 10


class TrackerContext:
    """What several tracker sections share, fetched once."""

    def __init__(
        self,
        *,
        session: Session,
        settings: Settings,
        now: datetime,
        month_summaries: list[PeriodSummary],
        first_started: datetime | None,
        year: Period,
        quarters: list[Period],
        intervals: list[tuple[datetime, datetime]],
        last_30: tuple[PeriodSummary, PeriodSummary],
    ) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.month_summaries = month_summaries
        self.first_started = first_started
        self.year = year
        self.quarters = quarters
        self.intervals = intervals
        self.before_last_30, self.last_30 = last_30  # the 30 days to now, and the 30 before

    @property
    def empty(self) -> bool:
        return self.first_started is None

    def summary_for(self, period: Period) -> PeriodSummary:
        """A longer period's summary from the month summaries it is made of (no query)."""
        parts = [s for s in self.month_summaries if s.period.start >= period.start and s.period.end <= period.end]
        return metrics.merge_summaries(period, parts)

    def months_with_data(self) -> list[PeriodSummary]:
        """Newest first: the current month always, earlier months when they have incidents."""
        newest_first = self.month_summaries[::-1]
        return [newest_first[0], *(s for s in newest_first[1:] if s.total)]


def first_started_at(session: Session) -> datetime | None:
    c = table_of(Incident).c
    value = session.execute(sa.select(sa.func.min(c.started_at))).scalar_one_or_none()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite gives MIN() back untyped
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
