"""Metrics over hand-built histories whose answers are worked out by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from incident_rows import incident, store
from sqlmodel import select

from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.reports import metrics
from bot.reports import postmortem as postmortem_md
from bot.reports import report as report_md
from bot.reports import tracker as tracker_md
from bot.reports.periods import current_period, custom_period, previous_period
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import Escalation, FollowUp, Incident, RunbookUse, TimelineEntry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday: the weekly digest's moment
WEEK = previous_period("weekly", NOW, "UTC")  # 2026-11-16 -> 2026-11-23
MIN = timedelta(minutes=1)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def week_metrics(sessions: SessionFactory, settings: Settings | None = None) -> metrics.PeriodMetrics:
    with sessions() as session:
        return metrics.period_metrics(session, settings=settings or Settings(), period=WEEK, now=NOW)


def by_severity(result: metrics.PeriodMetrics, severity: str) -> metrics.SeverityMetrics:
    return next(s for s in result.severities if s.severity == severity)


def test_overlapping_p0_outages_count_once_and_are_clipped(sessions: SessionFactory) -> None:
    store(
        sessions,
        # 10:00-10:30 (mitigated) and 10:15-10:45 (never mitigated, so until resolved): union 45 min.
        incident(at(17, 10), severity="P0", mitigated=30 * MIN, resolved=60 * MIN),
        incident(at(17, 10, 15), severity="P0", resolved=30 * MIN),
        # Started in the week before: only its 20 minutes inside this week count.
        incident(at(16, 0, 20), severity="P0", started=at(15, 23, 50), mitigated=0 * MIN, resolved=MIN),
        # Still open: impact runs until now, clipped at the end of the week: 60 minutes.
        incident(at(22, 23), severity="P0"),
        # P2s are not downtime.
        incident(at(18, 9), severity="P2", resolved=120 * MIN),
    )
    result = week_metrics(sessions)
    total = 7 * 24 * 60
    downtime = 45 + 20 + 60
    assert result.availability.total_minutes == total
    assert result.availability.downtime_minutes == pytest.approx(downtime)
    assert result.availability.percent == pytest.approx((total - downtime) / total * 100)
    assert result.availability.met is False


def test_boundary_and_open_incidents_count_in_the_week_they_were_declared(sessions: SessionFactory) -> None:
    open_acked = incident(at(20, 12), severity="P1", ack=10 * MIN)  # counts, has an MTTA, has no MTTR
    open_new = incident(at(21, 12), severity="P1")
    store(
        sessions,
        # Declared last week, resolved this week: last week's incident.
        incident(at(15, 23), severity="P1", ack=5 * MIN, resolved=120 * MIN),
        # Declared this week, resolved after it ended: this week's, with its full MTTR.
        incident(at(22, 23), severity="P1", ack=5 * MIN, resolved=90 * MIN),
        open_acked,
        open_new,
    )
    result = week_metrics(sessions)
    p1 = by_severity(result, "P1")
    assert (result.total, result.previous_total) == (3, 1)
    assert (p1.count, p1.previous_count) == (3, 1)
    assert (p1.mttr.count, p1.mttr.mean) == (1, 90 * 60)
    assert (p1.mtta.count, p1.mtta.mean) == (2, 7.5 * 60)
    assert result.mttr.count == 1
    assert result.open_count == 2
    assert [o.id for o in result.open_incidents] == [open_acked.id, open_new.id]


def test_skewed_durations_mean_median_and_p90(sessions: SessionFactory) -> None:
    minutes = [10, 20, 30, 40, 300]
    store(
        sessions,
        *(
            incident(at(18, 8), severity="P2", started=at(18, 8) - 5 * MIN, ack=2 * MIN, resolved=(m - 5) * MIN)
            for m in minutes
        ),
    )
    p2 = by_severity(week_metrics(sessions), "P2")
    assert p2.mttr.count == 5
    assert p2.mttr.mean == 80 * 60  # (10+20+30+40+300)/5
    assert p2.mttr.median == 30 * 60
    assert p2.mttr.p90 == pytest.approx((40 + 0.6 * (300 - 40)) * 60)  # rank 3.6 between 40 and 300
    # Never mitigated: time to mitigate is the time to resolve.
    assert p2.mttm.median == 30 * 60
    assert p2.mtta.mean == 120


def test_mttm_runs_to_the_mitigation_over_every_mitigated_incident(sessions: SessionFactory) -> None:
    """MTTM ends at `mitigated_at`, not at the resolution, and covers mitigated incidents still open;
    MTTA covers every acknowledged incident, open or not (DOMAIN.md, Metrics)."""
    store(
        sessions,
        # Mitigated after 15 minutes, resolved after 60: MTTM 15, MTTR 60.
        incident(at(17, 9), severity="P1", ack=5 * MIN, mitigated=15 * MIN, resolved=60 * MIN),
        # Mitigated after 25 minutes and still open: counts in MTTM, not in MTTR.
        incident(at(18, 9), severity="P1", ack=5 * MIN, mitigated=25 * MIN),
        # Acknowledged, neither mitigated nor resolved: in MTTA only.
        incident(at(19, 9), severity="P1", ack=10 * MIN),
        # Not even acknowledged: in none.
        incident(at(20, 9), severity="P1"),
    )
    p1 = by_severity(week_metrics(sessions), "P1")
    assert (p1.mttm.count, p1.mttm.mean, p1.mttm.median) == (2, 20 * 60, 20 * 60)
    assert (p1.mttr.count, p1.mttr.mean) == (1, 60 * 60)
    assert (p1.mtta.count, p1.mtta.mean) == (3, 6 * 60 + 40)
    with sessions() as session:
        totals = metrics.summaries(session, settings=Settings(), periods=[WEEK], now=NOW)[0].severity("P1")
    assert (totals.mitigate_count, totals.mitigate_sum) == (2, 40 * 60)


def test_targets_met_and_lapsed_prefer_escalation_rows(sessions: SessionFactory) -> None:
    late_ack = incident(at(17, 9), severity="P1", ack=20 * MIN, resolved=25 * MIN)  # judged: response lapsed
    escalated = incident(at(17, 10), severity="P1", ack=10 * MIN, resolved=25 * MIN)  # row says response lapsed
    on_time = incident(at(17, 11), severity="P1", ack=10 * MIN, resolved=25 * MIN)  # nothing lapsed
    rows_win = incident(at(17, 12), severity="P1", ack=20 * MIN, resolved=45 * MIN)  # rows: resolution only
    waiting = incident(NOW - 5 * MIN, severity="P1", id="INC-2026-11-23-001")  # next week's: not in period
    store(sessions, late_ack, escalated, on_time, rows_win, waiting)
    store(
        sessions,
        Escalation(incident_id=escalated.id, kind="response", level=0, due_at=at(17, 10, 15), fired_at=at(17, 10, 15)),
        Escalation(incident_id=rows_win.id, kind="resolution", level=0, due_at=at(17, 12, 30), fired_at=at(17, 12, 30)),
    )
    p1 = by_severity(week_metrics(sessions), "P1")
    assert (p1.response.met, p1.response.decided, p1.response.lapsed) == (2, 4, 2)
    assert p1.response.share == 0.5
    # Resolution target (30 min from declaration): only rows_win took longer.
    assert (p1.resolution.met, p1.resolution.decided, p1.resolution.lapsed) == (3, 4, 1)


def test_open_incident_inside_its_target_is_undecided(sessions: SessionFactory) -> None:
    store(sessions, incident(NOW - 10 * MIN, severity="P2"), incident(NOW - 90 * MIN, severity="P2"))
    period = current_period("weekly", NOW, "UTC")
    with sessions() as session:
        summary = metrics.summaries(session, settings=Settings(), periods=[period], now=NOW)[0]
        lapsed = metrics.lapsed_targets(session, settings=Settings(), period=period, now=NOW)
    p2 = summary.severity("P2")
    # Response target 1 h: the 90-minute-old one has lapsed, the 10-minute-old one is still pending.
    assert (p2.response_met, p2.response_decided) == (0, 1)
    assert (p2.resolution_met, p2.resolution_decided) == (0, 0)
    assert lapsed["P2"] == (1, 0)


def test_repeats_match_category_and_service_or_alert_within_30_days(sessions: SessionFactory) -> None:
    store(
        sessions,
        incident(at(1, 9), category="Database", affected="orders-db", resolved=60 * MIN),
        incident(at(10, 9), category="Database", affected="users-db", alert_name="DiskFull", resolved=60 * MIN),
        incident(at(7, 9, month=10), category="Performance", affected="search-api", resolved=60 * MIN),
        # Repeat by service (resolved 16 days before).
        incident(at(17, 9), category="Database", affected="orders-db", id="INC-2026-11-17-901", resolved=MIN),
        # Repeat by alert name, other service.
        incident(at(18, 9), category="Database", affected="analytics", alert_name="DiskFull", id="INC-2026-11-18-902"),
        # Same service, resolved 42 days before: not a repeat.
        incident(at(18, 10), category="Performance", affected="search-api", id="INC-2026-11-18-903"),
        # Same service, other category: not a repeat.
        incident(at(19, 9), category="Authentication", affected="orders-db", id="INC-2026-11-19-904"),
        # Matches only an incident resolved after it was declared: not a repeat.
        incident(at(20, 9), category="Payment Gateway", affected="checkout", id="INC-2026-11-20-905"),
        incident(at(20, 8), category="Payment Gateway", affected="checkout", resolved=300 * MIN),
    )
    result = week_metrics(sessions)
    assert result.repeats == ("INC-2026-11-17-901", "INC-2026-11-18-902")


def test_anomalous_week_exceeds_trailing_mean_by_two_sigma(sessions: SessionFactory) -> None:
    # Trailing 12 weeks: 2,3,2,3,... mean 2.5, population sd 0.5, so more than 3.5 is anomalous.
    week_start = WEEK.start
    rows = []
    for back in range(1, 13):
        start = week_start - timedelta(weeks=back)
        rows += [incident(start + timedelta(hours=h + 1), severity="P3") for h in range(2 if back % 2 else 3)]
    rows += [incident(week_start + timedelta(hours=h + 1), severity="P3") for h in range(4)]
    store(sessions, *rows)
    result = week_metrics(sessions)
    (week,) = result.weeks
    assert (week.count, week.trailing_mean, week.trailing_stdev) == (4, 2.5, 0.5)
    assert week.flagged
    assert result.anomalies == (week,)

    # Three in the week is within two sigma.
    with unit_of_work(sessions) as session:
        newest = max((r for r in rows if WEEK.contains(r.declared_at)), key=lambda r: r.declared_at)
        session.delete(session.get(Incident, newest.id))
    assert week_metrics(sessions).anomalies == ()


def test_follow_ups_by_age(sessions: SessionFactory) -> None:
    parent = incident(at(1, 9), resolved=MIN)
    store(sessions, parent)

    def follow_up(due: date, *, done: bool = False) -> FollowUp:
        return FollowUp(incident_id=parent.id, description="fix it", due_date=due, done=done, created_at=at(1, 10))

    store(
        sessions,
        follow_up(date(2026, 11, 22)),  # 1 day overdue
        follow_up(date(2026, 11, 16)),  # 7 days
        follow_up(date(2026, 10, 24)),  # 30 days
        follow_up(date(2026, 10, 23)),  # 31 days
        follow_up(date(2026, 11, 30)),  # not due yet
        follow_up(date(2026, 11, 23)),  # due today: not overdue
        follow_up(date(2026, 9, 1), done=True),  # done: not open at all
    )
    ages = week_metrics(sessions).follow_ups
    assert (ages.open, ages.overdue) == (6, 4)
    assert ages.overdue_by_age == (("<7d", 1), ("7–30d", 2), (">30d", 1))


def test_counts_shares_trends_users_revenue_and_runbooks(sessions: SessionFactory) -> None:
    this_week = [
        incident(at(17, 9), category="Database", root_cause_class="Code Bug", affected_users=100, revenue_impact=10.5),
        incident(at(17, 10), category="Database", root_cause_class="Code Bug", affected_users=50),
        incident(at(18, 9), category="Performance", root_cause_class="Human Error", revenue_impact=0.25),
        incident(at(19, 9), severity="P0", category="Infrastructure", mitigated=MIN, resolved=MIN),
    ]
    last_week = [incident(at(10, 9), category="Performance"), incident(at(11, 9), category="Performance")]
    store(sessions, *this_week, *last_week)
    store(
        sessions,
        RunbookUse(incident_id=this_week[0].id, runbook="P0: Database Failure", used_at=at(17, 9, 5)),
        RunbookUse(incident_id=this_week[0].id, runbook="P0: Database Failure", used_at=at(17, 9, 6)),
        RunbookUse(incident_id=this_week[2].id, runbook="P1: Slow Queries", used_at=at(18, 9, 5)),
        RunbookUse(incident_id=last_week[0].id, runbook="P1: Slow Queries", used_at=at(10, 9, 5)),
    )
    result = week_metrics(sessions)
    categories = {c.name: c for c in result.categories}
    assert (categories["Database"].count, categories["Database"].share) == (2, 0.5)
    assert (categories["Performance"].count, categories["Performance"].previous_count) == (1, 2)
    assert categories["Authentication"].share == 0
    causes = {c.name: c.count for c in result.root_causes}
    assert causes == {
        "Configuration Error": 0,
        "Code Bug": 2,
        "Capacity Issue": 0,
        "External Dependency": 0,
        "Human Error": 1,
    }
    assert (result.affected_users, result.revenue_impact) == (150, 10.75)
    assert [(r.name, r.count) for r in result.runbooks] == [("P0: Database Failure", 2), ("P1: Slow Queries", 1)]
    assert [(s.severity, s.count) for s in result.severities] == [("P0", 1), ("P1", 0), ("P2", 3), ("P3", 0)]


def test_empty_database_gives_none_not_nan(sessions: SessionFactory) -> None:
    result = week_metrics(sessions)
    assert result.total == 0
    for severity in result.severities:
        assert severity.mttr == metrics.DurationStats()
        assert severity.response.share is None
    assert all(c.share is None for c in result.categories)
    assert result.availability.percent == 100.0
    with sessions() as session:
        status = metrics.current_status(session, settings=Settings(), now=NOW)
    assert status.mttr.current is None
    assert status.mttr.mark == metrics.MARK_BASELINE
    assert [f.mark for f in status.figures[1:]] == [metrics.MARK_GREEN] * 4


def test_current_status_marks(sessions: SessionFactory) -> None:
    store(
        sessions,
        *(incident(at(d, 9), severity="P1", resolved=20 * MIN) for d in (2, 3, 4)),  # 3 P1: not < 3
        incident(at(5, 9), severity="P0", resolved=10 * MIN),
        incident(at(6, 9), severity="P3", resolved=10 * MIN),
    )
    with sessions() as session:
        status = metrics.current_status(session, settings=Settings(), now=NOW)
    assert status.incidents_this_month.current == 5
    assert status.incidents_this_month.mark == metrics.MARK_AMBER  # target < 5, under 10
    assert (status.p0_last_30_days.current, status.p0_last_30_days.mark) == (1, metrics.MARK_AMBER)
    assert (status.p1_last_30_days.current, status.p1_last_30_days.mark) == (3, metrics.MARK_AMBER)
    assert status.mttr.current == pytest.approx((3 * 20 + 10 + 10) / 5 * 60)
    assert status.mttr.mark == metrics.MARK_AMBER  # 16 min: over 15, under 30
    assert status.repeats_last_30_days.current == 0

    # The tracker passes the summaries it has already; the figures are the same.
    settings = Settings()
    month = current_period("monthly", NOW, settings.digest_timezone)
    last_30 = custom_period(NOW - timedelta(days=30), NOW, "last 30 days")
    with sessions() as session:
        [month_summary, recent] = [
            metrics.summaries(session, settings=settings, periods=[p], now=NOW)[0] for p in (month, last_30)
        ]
        given = metrics.current_status(session, settings=settings, now=NOW, month_summary=month_summary, recent=recent)
    assert given == status


def test_union_seconds_merges_nested_and_touching_intervals() -> None:
    start, end = at(1), at(2)
    intervals = [(at(1, 1), at(1, 3)), (at(1, 2), at(1, 2, 30)), (at(1, 3), at(1, 4)), (at(1, 23), at(3))]
    assert metrics.union_seconds(intervals, start, end) == (3 + 1) * 3600
    assert metrics.percentile([], 0.9) is None
    assert metrics.percentile([7.0], 0.9) == 7.0


def test_in_progress_period_is_measured_up_to_now(sessions: SessionFactory) -> None:
    store(sessions, incident(NOW - 60 * MIN, severity="P0", mitigated=30 * MIN))
    period = current_period("weekly", NOW, "UTC")  # started 10 hours ago
    window = custom_period(period.start, NOW, "so far")
    with sessions() as session:
        intervals = metrics.p0_intervals(session, start=period.start, end=period.end, now=NOW)
    value = metrics.availability(intervals, period=period, now=NOW)
    assert value.total_minutes == window.duration.total_seconds() / 60 == 600
    assert value.downtime_minutes == 30


# -- reopened incidents (DOMAIN.md, "Reopened incidents") ---------------------------------------


def _reopened_p0(sessions: SessionFactory) -> str:
    """A P0 through the service: 20 min of impact, resolved, reopened 23 h 45 min later, 15 more
    minutes of impact, resolved 10 minutes after that. Impact 35 min; open 30 + 25 = 55 min."""
    from bot.incidents.forms import DeclareForm, ResolveForm

    policy = Settings().policy()
    form = ResolveForm(root_cause="bad deploy", resolution="rolled back", root_cause_class="Code Bug")
    start = at(17, 10)
    with unit_of_work(sessions) as session:
        incident_id = incidents.declare(
            session, DeclareForm(title="checkout down", severity="P0"), declared_by="U1", policy=policy, now=start
        ).id
    steps = [
        (start + 2 * MIN, lambda s, t: incidents.acknowledge(s, incident_id, user="U1", policy=policy, now=t)),
        (start + 20 * MIN, lambda s, t: incidents.mitigate(s, incident_id, user="U1", policy=policy, now=t)),
        (start + 30 * MIN, lambda s, t: incidents.resolve(s, incident_id, form, user="U1", policy=policy, now=t)),
        (at(18, 10, 15), lambda s, t: incidents.reopen(s, incident_id, user="U2", policy=policy, now=t)),
        (at(18, 10, 30), lambda s, t: incidents.mitigate(s, incident_id, user="U2", policy=policy, now=t)),
        (at(18, 10, 40), lambda s, t: incidents.resolve(s, incident_id, form, user="U2", policy=policy, now=t)),
    ]
    for when, step in steps:
        with unit_of_work(sessions) as session:
            step(session, when)
    return incident_id


def test_a_reopened_p0_counts_its_impact_not_the_day_it_sat_resolved(sessions: SessionFactory) -> None:
    incident_id = _reopened_p0(sessions)
    result = week_metrics(sessions)
    # Clearing the mitigation on reopen made this 10:00 -> next day 10:30: 1,470 minutes.
    assert result.availability.downtime_minutes == pytest.approx(35)
    with unit_of_work(sessions) as session:
        row = session.get(Incident, incident_id)
        # The first mitigation is kept; the resolution is the final one.
        assert row is not None and row.mitigated_at == at(17, 10, 20) and row.resolved_at == at(18, 10, 40)
        assert row.reopened_count == 1
        resolved = session.exec(
            select(TimelineEntry).where(TimelineEntry.incident_id == incident_id, TimelineEntry.event == "resolved")
        ).all()
    # The thread is told the MTTR so far: 30 minutes, then 55 (not 24 h 40 min).
    assert [e.data["mttr_seconds"] for e in resolved] == [30 * 60, 55 * 60]
    assert "MTTR 55m" in resolved[-1].text
    p0 = by_severity(result, "P0")
    assert p0.count == 1  # counted once
    assert (p0.mttr.count, p0.mttr.mean, p0.mttr.median) == (1, 55 * 60, 55 * 60)
    assert (p0.mttm.count, p0.mttm.mean, p0.mttm.median) == (1, 35 * 60, 35 * 60)
    assert result.mttr.mean == 55 * 60
    # The tracker's current-status MTTR and the month summaries use the same durations.
    with sessions() as session:
        status = metrics.current_status(session, settings=Settings(), now=NOW)
        month = metrics.summaries(session, settings=Settings(), periods=[WEEK], now=NOW)[0]
    assert status.mttr.current == 55 * 60
    assert month.severity("P0").mitigate_sum == 35 * 60 and month.severity("P0").resolve_sum == 55 * 60


def test_the_weekly_report_prints_the_reopened_p0s_real_downtime(sessions: SessionFactory) -> None:

    incident_id = _reopened_p0(sessions)
    with sessions() as session:
        text = report_md.render_report(session, Settings(), "weekly", NOW)
        postmortem = postmortem_md.render_postmortem(session, incident_id)
        tracker = tracker_md.render_tracker(session, Settings(), NOW)
    assert "35.0 min" in text and "1470.0 min" not in text
    # The postmortem's and the tracker log's MTTR: open time, not 24 h 40 min.
    assert postmortem is not None and "**MTTR:** 55 minutes" in postmortem
    assert "**MTTR:** 55 minutes" in tracker


def test_an_ongoing_reopened_p0_is_down_from_its_reopening_until_now(sessions: SessionFactory) -> None:
    from bot.incidents.forms import DeclareForm, ResolveForm

    policy = Settings().policy()
    with unit_of_work(sessions) as session:
        incident_id = incidents.declare(
            session, DeclareForm(title="db down", severity="P0"), declared_by="U1", policy=policy, now=at(22, 20)
        ).id
    form = ResolveForm(root_cause="disk", resolution="grew it", root_cause_class="Capacity Issue")
    with unit_of_work(sessions) as session:
        incidents.resolve(session, incident_id, form, user="U1", policy=policy, now=at(22, 20, 10))
    with unit_of_work(sessions) as session:
        incidents.reopen(session, incident_id, user="U1", policy=policy, now=at(22, 23, 30))
    # 10 minutes, then the reopened spell from 23:30 to the end of the week: 40 minutes.
    assert week_metrics(sessions).availability.downtime_minutes == pytest.approx(10 + 30)
    with sessions() as session:
        (row,) = session.exec(select_reopens()).all()
    assert (row.seq, row.resolved_before, row.reopened_at, row.mitigated_at) == (
        1,
        at(22, 20, 10),
        at(22, 23, 30),
        None,
    )


def select_reopens():  # type: ignore[no-untyped-def]
    from storage.models import Reopen

    return select(Reopen).order_by(Reopen.id)  # type: ignore[arg-type]


def test_the_card_and_the_status_answer_show_a_reopened_incidents_open_time(sessions: SessionFactory) -> None:
    """The card and `/incident status` give the same MTTR as the metrics: 55 minutes, not a day."""
    from bot.settings import Settings
    from bot.slack.blocks import card, messages

    incident_id = _reopened_p0(sessions)
    policy = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s").policy()
    with unit_of_work(sessions) as session:
        incident = incident_queries.get(session, incident_id)
        mttr = incidents.open_time(session, incident)
    assert mttr.total_seconds() == 55 * 60
    shown = json.dumps(card.card(incident, policy=policy, now=at(19, 0, 0), mttr=mttr))
    assert "55m" in shown or "55 min" in shown, shown
    answer = json.dumps(messages.status(incident, policy, at(19, 0, 0), mttr))
    assert "55m" in answer or "55 min" in answer, answer
