"""What the metric queries return: frozen result types, and the tracker's fixed marks and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.reports.periods import Period

AVAILABILITY_TARGET = 99.9  # percent, the tracker's SLA


REPEAT_WINDOW = timedelta(days=30)


ANOMALY_TRAILING_WEEKS = 12


ANOMALY_SIGMAS = 2.0


# The tracker's "Current Status" targets; they are the tracker's, not per-severity settings.
STATUS_MTTR_TARGET = timedelta(minutes=15)


STATUS_MONTH_LIMIT = 5  # incidents this month: fewer than this


STATUS_P1_LIMIT = 3  # P1 in the last 30 days: fewer than this


FOLLOW_UP_BUCKETS = ("<7d", "7–30d", ">30d")


MARK_GREEN = "✅ Green"


MARK_AMBER = "⚠️ Amber"


MARK_RED = "❌ Red"


MARK_BASELINE = "⏳ Baseline needed"


@dataclass(frozen=True)
class DurationStats:
    """Seconds; None when there is no sample."""

    count: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class TargetStats:
    met: int = 0
    decided: int = 0  # met or missed; open incidents still inside their target are undecided
    lapsed: int = 0  # announced lapses (escalation rows), else judged from timestamps

    @property
    def share(self) -> float | None:
        return self.met / self.decided if self.decided else None


@dataclass(frozen=True)
class SeverityTotals:
    """What one SQL aggregation knows about one severity in one period."""

    severity: str
    count: int = 0
    ack_count: int = 0
    ack_sum: int = 0
    mitigate_count: int = 0
    mitigate_sum: int = 0
    resolve_count: int = 0
    resolve_sum: int = 0
    response_met: int = 0
    response_decided: int = 0
    resolution_met: int = 0
    resolution_decided: int = 0
    affected_users: int = 0
    revenue_impact: float = 0.0

    @property
    def mttr_mean(self) -> float | None:
        return self.resolve_sum / self.resolve_count if self.resolve_count else None


@dataclass(frozen=True)
class PeriodSummary:
    """Counts and sums for one period, cheap enough to compute for many periods in one query."""

    period: Period
    total: int
    severities: tuple[SeverityTotals, ...]
    categories: Mapping[str, int] = field(default_factory=dict)
    root_causes: Mapping[str, int] = field(default_factory=dict)

    def severity(self, severity: str) -> SeverityTotals:
        return next((s for s in self.severities if s.severity == severity), SeverityTotals(severity))

    @property
    def resolved(self) -> int:
        return sum(s.resolve_count for s in self.severities)

    @property
    def mttr_mean(self) -> float | None:
        count = self.resolved
        return sum(s.resolve_sum for s in self.severities) / count if count else None

    @property
    def affected_users(self) -> int:
        return sum(s.affected_users for s in self.severities)

    @property
    def revenue_impact(self) -> float:
        return round(sum(s.revenue_impact for s in self.severities), 2)


@dataclass(frozen=True)
class SeverityMetrics:
    severity: str
    count: int
    previous_count: int
    mtta: DurationStats
    mttm: DurationStats
    mttr: DurationStats
    response: TargetStats
    resolution: TargetStats
    affected_users: int
    revenue_impact: float


@dataclass(frozen=True)
class CountShare:
    name: str
    count: int
    share: float | None  # of the period's incidents; None when the period has none
    previous_count: int


@dataclass(frozen=True)
class Availability:
    total_minutes: float
    downtime_minutes: float
    percent: float | None  # None for an empty (not yet started) period
    target: float = AVAILABILITY_TARGET

    @property
    def met(self) -> bool | None:
        return None if self.percent is None else self.percent >= self.target


@dataclass(frozen=True)
class FollowUpAges:
    open: int
    overdue: int
    overdue_by_age: tuple[tuple[str, int], ...]  # days past due: <7d, 7–30d, >30d


@dataclass(frozen=True)
class RunbookCount:
    name: str
    count: int


@dataclass(frozen=True)
class WeekAnomaly:
    week: Period
    count: int
    trailing_mean: float
    trailing_stdev: float
    flagged: bool


@dataclass(frozen=True)
class RecurringIssue:
    category: str
    affected: str
    count: int


@dataclass(frozen=True)
class OpenIncident:
    id: str
    severity: str
    status: str
    title: str
    declared_at: datetime
    commander: str | None


@dataclass(frozen=True)
class PeriodMetrics:
    period: Period
    previous: Period
    total: int
    previous_total: int
    severities: tuple[SeverityMetrics, ...]
    mttr: DurationStats  # all severities together
    categories: tuple[CountShare, ...]
    root_causes: tuple[CountShare, ...]
    availability: Availability
    affected_users: int
    revenue_impact: float
    repeats: tuple[str, ...]
    open_incidents: tuple[OpenIncident, ...]
    open_count: int
    follow_ups: FollowUpAges
    runbooks: tuple[RunbookCount, ...]
    weeks: tuple[WeekAnomaly, ...]  # the weeks that start in the period

    @property
    def anomalies(self) -> tuple[WeekAnomaly, ...]:
        return tuple(week for week in self.weeks if week.flagged)


@dataclass(frozen=True)
class StatusFigure:
    name: str
    current: float | int | None
    target: str
    mark: str


@dataclass(frozen=True)
class CurrentStatus:
    mttr: StatusFigure  # seconds, last 30 days, all severities
    incidents_this_month: StatusFigure
    p0_last_30_days: StatusFigure
    p1_last_30_days: StatusFigure
    repeats_last_30_days: StatusFigure

    @property
    def figures(self) -> tuple[StatusFigure, ...]:
        return (
            self.mttr,
            self.incidents_this_month,
            self.p0_last_30_days,
            self.p1_last_30_days,
            self.repeats_last_30_days,
        )
