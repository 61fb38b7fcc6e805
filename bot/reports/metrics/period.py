"""The two composite views: one period's whole PeriodMetrics, and the tracker's Current Status."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from bot.reports.metrics.history import (
    follow_up_ages,
    open_incidents,
    repeat_incidents,
    runbook_counts,
    week_anomalies,
    weeks_starting_in,
)
from bot.reports.metrics.queries import duration_samples, lapsed_targets, p0_intervals, summaries
from bot.reports.metrics.results import (
    MARK_AMBER,
    MARK_BASELINE,
    MARK_GREEN,
    MARK_RED,
    STATUS_MONTH_LIMIT,
    STATUS_MTTR_TARGET,
    STATUS_P1_LIMIT,
    CurrentStatus,
    PeriodMetrics,
    PeriodSummary,
    SeverityMetrics,
    StatusFigure,
    TargetStats,
)
from bot.reports.metrics.stats import availability, below_mark, duration_stats, local_today, shares, zero_mark
from bot.reports.periods import Period, current_period, custom_period, period_before
from bot.settings import Settings
from storage.models import (
    CATEGORIES,
    ROOT_CAUSE_CLASSES,
    SEVERITIES,
)


def period_metrics(session: Session, *, settings: Settings, period: Period, now: datetime) -> PeriodMetrics:
    """Everything a weekly, monthly or quarterly report says about `period`, against the one before."""
    previous = period_before(period)
    before, current = summaries(session, settings=settings, periods=[previous, period], now=now)
    samples = duration_samples(session, period=period)
    lapsed = lapsed_targets(session, settings=settings, period=period, now=now)
    severities = []
    all_resolutions: list[int] = []
    for severity in SEVERITIES:
        totals = current.severity(severity)
        acks, mitigations, resolutions = samples.get(severity, ([], [], []))
        all_resolutions.extend(resolutions)
        response_lapsed, resolution_lapsed = lapsed.get(severity, (0, 0))
        severities.append(
            SeverityMetrics(
                severity=severity,
                count=totals.count,
                previous_count=before.severity(severity).count,
                mtta=duration_stats(acks, total=totals.ack_sum, count=totals.ack_count),
                mttm=duration_stats(mitigations, total=totals.mitigate_sum, count=totals.mitigate_count),
                mttr=duration_stats(resolutions, total=totals.resolve_sum, count=totals.resolve_count),
                response=TargetStats(totals.response_met, totals.response_decided, response_lapsed),
                resolution=TargetStats(totals.resolution_met, totals.resolution_decided, resolution_lapsed),
                affected_users=totals.affected_users,
                revenue_impact=totals.revenue_impact,
            )
        )
    resolved_sum = sum(current.severity(s).resolve_sum for s in SEVERITIES)
    intervals = p0_intervals(session, start=period.start, end=period.end, now=now)
    open_rows, open_count = open_incidents(session, limit=20)
    return PeriodMetrics(
        period=period,
        previous=previous,
        total=current.total,
        previous_total=before.total,
        severities=tuple(severities),
        mttr=duration_stats(all_resolutions, total=resolved_sum, count=len(all_resolutions)),
        categories=shares(CATEGORIES, current.categories, before.categories, current.total),
        root_causes=shares(ROOT_CAUSE_CLASSES, current.root_causes, before.root_causes, current.total),
        availability=availability(intervals, period=period, now=now),
        affected_users=current.affected_users,
        revenue_impact=current.revenue_impact,
        repeats=repeat_incidents(session, start=period.start, end=period.end),
        open_incidents=open_rows,
        open_count=open_count,
        follow_ups=follow_up_ages(session, today=local_today(now, settings)),
        runbooks=runbook_counts(session, start=period.start, end=period.end),
        weeks=week_anomalies(session, weeks=weeks_starting_in(period)),
    )


def current_status(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    month_summary: PeriodSummary | None = None,
    recent: PeriodSummary | None = None,
) -> CurrentStatus:
    """The tracker's "Current Status" figures, each with its mark.

    `month_summary` (this month) and `recent` (the last 30 days) save their queries when the
    caller has them already, as the tracker does.
    """
    last_30 = custom_period(now - timedelta(days=30), now, "last 30 days")
    if month_summary is None:
        month = current_period("monthly", now, settings.digest_timezone)
        month_summary = summaries(session, settings=settings, periods=[month], now=now)[0]
    if recent is None:
        recent = summaries(session, settings=settings, periods=[last_30], now=now)[0]
    repeats = len(repeat_incidents(session, start=last_30.start, end=last_30.end))
    mttr = recent.mttr_mean
    if mttr is None:
        mttr_mark = MARK_BASELINE
    else:
        limit = STATUS_MTTR_TARGET.total_seconds()
        mttr_mark = MARK_GREEN if mttr < limit else MARK_AMBER if mttr < 2 * limit else MARK_RED
    minutes = int(STATUS_MTTR_TARGET.total_seconds() // 60)
    return CurrentStatus(
        mttr=StatusFigure("MTTR (Mean Time To Recovery)", mttr, f"<{minutes} min", mttr_mark),
        incidents_this_month=StatusFigure(
            "Incidents This Month",
            month_summary.total,
            f"<{STATUS_MONTH_LIMIT}",
            below_mark(month_summary.total, STATUS_MONTH_LIMIT),
        ),
        p0_last_30_days=StatusFigure(
            "P0 Incidents (Last 30 Days)", recent.severity("P0").count, "0", zero_mark(recent.severity("P0").count)
        ),
        p1_last_30_days=StatusFigure(
            "P1 Incidents (Last 30 Days)",
            recent.severity("P1").count,
            f"<{STATUS_P1_LIMIT}",
            below_mark(recent.severity("P1").count, STATUS_P1_LIMIT),
        ),
        repeats_last_30_days=StatusFigure("Repeat Incidents", repeats, "0", zero_mark(repeats)),
    )
