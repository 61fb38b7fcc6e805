"""Every metric DOMAIN.md defines, aggregated in SQL for any period [start, end).

The modules: `results` (what the queries return), `sql` (shared SQL pieces), `queries` (per-period
aggregates), `history` (repeats, anomalies, follow-ups, runbooks, open incidents), `stats` (pure
statistics), `period` (one period's PeriodMetrics and the tracker's Current Status). This package
re-exports their public names, so `from bot.reports import metrics; metrics.summaries(...)` reads as one API.

Rules that the definitions leave open, decided here once (and printed by the reports):

* An incident belongs to the period its `declared_at` falls in, even when its impact started in the
  period before or it is resolved in the next one. Counts, categories, root causes, affected users,
  revenue, durations and target shares all use that rule, so every incident counts exactly once.
* Durations are whole seconds. MTTA (declared -> acknowledged) covers every acknowledged incident,
  open or not; MTTM (started -> mitigated, or resolved when it never was marked mitigated) every
  mitigated one, open or not; MTTR (started -> resolved) resolved incidents only.
* A reopened incident counts once. Its impact is a set of spells: started -> first mitigation
  (else resolution), and each reopening -> its next mitigation (else resolution); MTTM is the sum
  of those spells, MTTR (and declared -> resolved for the resolution target) the time it was open
  up to its final resolution: the time it sat resolved before a reopening counts in neither.
* Mean from SQL sums; median and p90 by linear interpolation between the closest ranks.
* "Target met" compares declared -> acknowledged with the response target and declared -> resolved
  with the resolution target (the targets the escalation sweep enforces). An open incident whose
  deadline has not passed yet is undecided and left out of the share; once it passes, it is missed.
* Lapsed targets come from escalation rows when the incident has any; incidents without escalation
  rows (history from before the bot, or imported) are judged from their timestamps instead.
* Availability: downtime is the union of P0 impact intervals (started -> mitigated, else resolved,
  else now) clipped to the period; an in-progress period is measured up to now.
* Open incidents and follow-ups are a snapshot at `now`, not a property of the period.
"""

from __future__ import annotations

from bot.reports.metrics.history import (
    counts_per_period,
    follow_up_ages,
    open_incidents,
    recurring_issues,
    repeat_incidents,
    runbook_counts,
    week_anomalies,
    weeks_starting_in,
)
from bot.reports.metrics.period import (
    current_status,
    period_metrics,
)
from bot.reports.metrics.queries import (
    duration_samples,
    lapsed_targets,
    merge_summaries,
    p0_intervals,
    resolved_gaps,
    summaries,
)
from bot.reports.metrics.results import (
    ANOMALY_SIGMAS,
    ANOMALY_TRAILING_WEEKS,
    AVAILABILITY_TARGET,
    FOLLOW_UP_BUCKETS,
    MARK_AMBER,
    MARK_BASELINE,
    MARK_GREEN,
    MARK_RED,
    REPEAT_WINDOW,
    STATUS_MONTH_LIMIT,
    STATUS_MTTR_TARGET,
    STATUS_P1_LIMIT,
    Availability,
    CountShare,
    CurrentStatus,
    DurationStats,
    FollowUpAges,
    OpenIncident,
    PeriodMetrics,
    PeriodSummary,
    RecurringIssue,
    RunbookCount,
    SeverityMetrics,
    SeverityTotals,
    StatusFigure,
    TargetStats,
    WeekAnomaly,
)
from bot.reports.metrics.sql import (
    epoch_seconds,
    seconds_between,
)
from bot.reports.metrics.stats import (
    availability,
    below_mark,
    duration_stats,
    local_today,
    percentile,
    shares,
    union_seconds,
    zero_mark,
)

__all__ = [
    "ANOMALY_SIGMAS",
    "ANOMALY_TRAILING_WEEKS",
    "AVAILABILITY_TARGET",
    "FOLLOW_UP_BUCKETS",
    "MARK_AMBER",
    "MARK_BASELINE",
    "MARK_GREEN",
    "MARK_RED",
    "REPEAT_WINDOW",
    "STATUS_MONTH_LIMIT",
    "STATUS_MTTR_TARGET",
    "STATUS_P1_LIMIT",
    "Availability",
    "CountShare",
    "CurrentStatus",
    "DurationStats",
    "FollowUpAges",
    "OpenIncident",
    "PeriodMetrics",
    "PeriodSummary",
    "RecurringIssue",
    "RunbookCount",
    "SeverityMetrics",
    "SeverityTotals",
    "StatusFigure",
    "TargetStats",
    "WeekAnomaly",
    "availability",
    "below_mark",
    "counts_per_period",
    "current_status",
    "duration_samples",
    "duration_stats",
    "epoch_seconds",
    "follow_up_ages",
    "lapsed_targets",
    "local_today",
    "merge_summaries",
    "open_incidents",
    "p0_intervals",
    "percentile",
    "period_metrics",
    "recurring_issues",
    "repeat_incidents",
    "resolved_gaps",
    "runbook_counts",
    "seconds_between",
    "shares",
    "summaries",
    "union_seconds",
    "week_anomalies",
    "weeks_starting_in",
    "zero_mark",
]
