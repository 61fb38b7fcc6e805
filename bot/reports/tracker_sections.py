"""The tracker's later sections: SLA, analysis, quarterly retrospectives, lessons, runbooks, dashboard, severities."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bot.reports import metrics
from bot.reports.formatting import (
    fmt_duration,
    fmt_money,
    fmt_stats,
    fmt_target,
    fmt_trend,
    markdown_table,
    markdown_text,
    numbered,
)
from bot.reports.periods import current_period, custom_period
from bot.reports.report import downtime_text, plural, sla_mark, uptime_text
from bot.reports.schedule_text import cron_text
from bot.reports.tracker_context import ACTION_LIMIT, LESSON_LIMIT, TrackerContext
from bot.settings import Settings
from storage.models import (
    CATEGORIES,
    PREVENTION_STRATEGIES,
    ROOT_CAUSE_CLASSES,
    SEVERITIES,
    SEVERITY_MEANINGS,
    FollowUp,
    Incident,
    table_of,
)

SEVERITY_EXAMPLES = {
    "P0": ("API completely down", "Database inaccessible", "Data corruption detected"),
    "P1": ("Login failures", "Payment processing broken", "Slow query performance affecting UX"),
    "P2": ("Single feature broken", "Performance degradation in non-critical path", "UI rendering issue"),
    "P3": ("Typos in UI", "Non-critical background job failure", "Minor logging issues"),
}

KEY_QUESTIONS = (
    "1. What patterns emerged?",
    "2. Are MTTR targets being met?",
    "3. Which runbooks were most useful?",
    "4. What monitoring gaps exist?",
    "5. What preventive measures worked?",
)


def sla_section(ctx: TrackerContext) -> list[str]:
    rows = []
    for summary in ctx.month_summaries[::-1]:
        period = summary.period
        if ctx.first_started is None or period.end <= ctx.first_started:
            continue  # before the first recorded incident there is nothing to measure against
        value = metrics.availability(ctx.intervals, period=period, now=ctx.now)
        rows.append(
            (
                period.local_start.strftime("%b %Y"),
                uptime_text(value),
                downtime_text(value),
                sla_mark(value, not period.contains(ctx.now)),
            )
        )
    if not rows:
        rows.append((ctx.month_summaries[-1].period.local_start.strftime("%b %Y"), "-", "-", "⏳ Measuring"))
    lines = [
        "## 🎯 SLA Tracking",
        "",
        f"### Availability SLA: {metrics.AVAILABILITY_TARGET}% (Target)",
        *markdown_table(("Month", "Uptime", "Downtime", "SLA Met?"), rows),
        "",
        "**Calculation:** `Uptime % = (Total Minutes - Downtime Minutes) / Total Minutes * 100`  ",
        "Downtime is the union of P0 impact intervals (started → mitigated, else resolved, else now), "
        "so overlapping outages count once; the current month is measured up to now.",
        "",
        "### MTTR by Severity",
    ]
    before, recent = ctx.before_last_30, ctx.last_30
    samples = metrics.duration_samples(ctx.session, period=recent.period)
    rows = []
    for severity in SEVERITIES:
        totals = recent.severity(severity)
        previous = before.severity(severity).mttr_mean
        resolutions = samples.get(severity, ([], [], []))[2]
        stats = metrics.duration_stats(resolutions, total=totals.resolve_sum, count=totals.resolve_count)
        rows.append(
            (
                severity,
                fmt_target(ctx.settings.resolution_targets[severity]),
                fmt_stats(stats),
                _mttr_trend(totals.mttr_mean, previous),
            )
        )
    lines += [
        *markdown_table(("Severity", "Target", "Current", "Trend"), rows),
        "",
        "*Current: MTTR mean / median / p90 (n incidents) of those declared in the last 30 days; the trend "
        "compares the mean with the 30 days before.*",
    ]
    return lines


def _mttr_trend(current: float | None, previous: float | None) -> str:
    if current is None:
        return "⏳ No data"
    if previous is None:
        return "🆕 First data"
    if abs(current - previous) < 0.05 * previous:
        return f"→ Steady (was {fmt_duration(previous)})"
    if current < previous:
        return f"↓ Improving (was {fmt_duration(previous)})"
    return f"↑ Worsening (was {fmt_duration(previous)})"


def analysis_section(ctx: TrackerContext) -> list[str]:
    now = ctx.now
    six = ctx.month_summaries[-6:]
    since = six[0].period.start
    recurring = metrics.recurring_issues(ctx.session, start=since, end=now)
    earlier = metrics.merge_summaries(custom_period(since, six[3].period.start, "earlier"), six[:3])
    latest = metrics.merge_summaries(custom_period(six[3].period.start, six[-1].period.end, "latest"), six[3:])
    total = earlier.total + latest.total

    def combined(name: str, field: str) -> int:
        return int(getattr(earlier, field).get(name, 0) + getattr(latest, field).get(name, 0))

    category_rows = []
    for name in CATEGORIES:
        count = combined(name, "categories")
        category_rows.append(
            (
                name,
                str(count),
                f"{count / total * 100:.0f}%" if total else "0%",
                fmt_trend(latest.categories.get(name, 0), earlier.categories.get(name, 0)),
            )
        )
    cause_rows = [
        (name, str(combined(name, "root_causes")), PREVENTION_STRATEGIES[name]) for name in ROOT_CAUSE_CLASSES
    ]
    return [
        "## 🔍 Incident Analysis",
        "",
        "### Top 3 Recurring Issues (Last 6 Months)",
        *numbered(
            [f"**{r.category} — {markdown_text(r.affected)}**: {r.count} incidents" for r in recurring],
            "*(No data yet - no recurring issues)*",
        ),
        "",
        "### Incidents by Category",
        *markdown_table(("Category", "Count", "% of Total", "Trend"), category_rows),
        "",
        "### Incidents by Root Cause",
        *markdown_table(("Root Cause", "Count", "Prevention Strategy"), cause_rows),
        "",
        f"*Incidents declared since {six[0].period.label} (6 calendar months); "
        "trend: the last 3 months against the 3 before.*",
    ]


def quarterly_section(ctx: TrackerContext) -> list[str]:
    quarter_summaries = [ctx.summary_for(quarter) for quarter in ctx.quarters]
    lines = ["## 📅 Quarterly Retrospectives"]
    for index, summary in enumerate(quarter_summaries[::-1]):
        period = summary.period
        current = index == 0
        if not current and not summary.total:
            continue
        start = period.local_start
        last_month = (period.end - timedelta(seconds=1)).astimezone(start.tzinfo)
        lines += ["", f"### {period.label} ({start:%b}-{last_month:%b})", ""]
        lines.append("**Status:** 🔄 In Progress" if current else "**Status:** ✅ Complete")
        if summary.total:
            value = metrics.availability(ctx.intervals, period=period, now=ctx.now)
            top = max(summary.categories.items(), key=lambda kv: kv[1], default=None)
            lines += [
                "",
                "**Summary:**",
                f"- Incidents: {summary.total} ("
                + " · ".join(f"{s} {summary.severity(s).count}" for s in SEVERITIES)
                + ")",
                f"- MTTR (mean): {fmt_duration(summary.mttr_mean)}",
                f"- Availability: {uptime_text(value)} ({sla_mark(value, not current)})",
                f"- Most affected category: {f'{top[0]} ({top[1]})' if top else 'N/A'}",
            ]
        if current:
            following = period.end.astimezone(start.tzinfo)
            weekly = cron_text(ctx.settings.digest_cron, ctx.settings.digest_timezone)
            if weekly == ctx.settings.digest_cron:  # no words for it: the expression, and its zone
                weekly = f"`{weekly}` ({ctx.settings.digest_timezone})"
            lines += [
                "",
                "**Planned Reviews:**",
                f"- [ ] Weekly: {weekly} (quick review of the past week)",
                "- [ ] Monthly: First Monday of month (trend analysis)",
                f"- [ ] Quarterly: First Monday of {following:%B} (full retrospective)",
            ]
        lines += ["", "**Key Questions:**", *KEY_QUESTIONS]
    return lines


def lessons_section(ctx: TrackerContext) -> list[str]:
    c = table_of(Incident).c
    f = table_of(FollowUp).c

    def lessons(column: Any) -> list[str]:
        statement = (
            sa.select(c.id, column)
            .where(c.resolved_at.is_not(None), column.is_not(None), column != "")
            .order_by(c.resolved_at.desc(), c.id.desc())
            .limit(LESSON_LIMIT)
        )
        return [f"- `{row[0]}`: {markdown_text(row[1]).strip()}" for row in ctx.session.execute(statement)]

    worked = lessons(c.lessons_worked)
    didnt = lessons(c.lessons_didnt)
    actions_statement = (
        sa.select(f.id, f.description, f.owner, f.due_date, f.incident_id)
        .where(f.done.is_(False))
        .order_by(sa.nulls_last(f.due_date.asc()), f.id)
        .limit(ACTION_LIMIT)
    )
    actions = []
    for fid, description, owner, due, incident_id in ctx.session.execute(actions_statement):
        details = [
            d for d in (f"owner <@{owner}>" if owner else "", f"due {due:%Y-%m-%d}" if due else "", incident_id) if d
        ]
        actions.append(f"- [ ] `FU-{fid}`: {markdown_text(description)} ({', '.join(details)})")
    open_total = ctx.session.execute(sa.select(sa.func.count()).where(f.done.is_(False))).scalar_one()
    if open_total > len(actions):
        actions.append(f"- *… and {open_total - len(actions)} more open follow-ups*")
    note = (
        "*(To be populated after first incidents)*"
        if not (worked or didnt or actions)
        else f"*From the {LESSON_LIMIT} most recently resolved incidents with lessons recorded, "
        "and the open follow-ups, soonest due first.*"
    )
    return [
        "## 🎓 Lessons Learned",
        "",
        "### Incident Response Improvements",
        note,
        "",
        "**What Worked:**",
        *(worked or ["- *(nothing recorded yet)*"]),
        "",
        "**What Didn't:**",
        *(didnt or ["- *(nothing recorded yet)*"]),
        "",
        "**Action Items:**",
        *(actions or ["- *(no open follow-ups)*"]),
    ]


def runbook_section(ctx: TrackerContext) -> list[str]:
    used = metrics.runbook_counts(ctx.session, start=ctx.now - timedelta(days=30), end=ctx.now, limit=3)
    insight = "Track which runbooks are accessed most to identify common pain points"
    if used:
        insight = f"**{used[0].name}** was opened most; {insight[0].lower()}{insight[1:]}"
    return [
        "## 🛠️ Runbook Usage Statistics",
        "",
        "### Most-Used Runbooks (Last 30 Days)",
        *numbered([f"**{r.name}**: {plural(r.count, 'use')}" for r in used], "*(No usage data yet)*"),
        "",
        f"**Insight:** {insight}",
    ]


def dashboard_section(ctx: TrackerContext) -> list[str]:
    tz = ctx.settings.digest_timezone
    week = metrics.summaries(
        ctx.session, settings=ctx.settings, periods=[current_period("weekly", ctx.now, tz)], now=ctx.now
    )[0]
    month = ctx.month_summaries[-1]
    in_year = [s for s in ctx.month_summaries if s.period.start >= ctx.year.start]
    year_total = sum(s.total for s in in_year)
    year_resolved = sum(s.resolved for s in in_year)
    year_sum = sum(sev.resolve_sum for s in in_year for sev in s.severities)
    year_mttr = year_sum / year_resolved if year_resolved else None
    downtime = metrics.union_seconds(ctx.intervals, ctx.year.start, min(ctx.now, ctx.year.end)) / 60
    return [
        "## 📊 Incident Metrics Dashboard",
        "",
        "### This Week (Mon-Sun)",
        f"- **Incidents:** {week.total}",
        f"- **MTTR:** {fmt_duration(week.mttr_mean)}",
        f"- **Affected Users:** {week.affected_users:,}",
        "",
        "### This Month",
        f"- **Incidents:** {month.total}  ",
        f"- **MTTR:** {fmt_duration(month.mttr_mean)}  ",
        f"- **Affected Users:** {month.affected_users:,}  ",
        f"- **Revenue Impact:** {fmt_money(month.revenue_impact)}",
        "",
        f"### Year to Date ({ctx.year.label})",
        f"- **Total Incidents:** {year_total}  ",
        f"- **Average MTTR:** {fmt_duration(year_mttr)}  ",
        f"- **Total Downtime:** {downtime:,.0f} minutes  ",
        f"- **Total Users Affected:** {sum(s.affected_users for s in in_year):,}",
    ]


def improvement_section(ctx: TrackerContext) -> list[str]:
    quarter = ctx.quarters[-1]
    return [
        "## 🚀 Continuous Improvement",
        "",
        f"### Current Focus Areas ({quarter.label})",
        "1. **Establish Baselines:**",
        "   - Collect 30 days of operational metrics",
        "   - Define realistic MTTR targets per severity",
        '   - Document "normal" system behavior',
        "",
        "2. **Monitoring Enhancements:**",
        "   - Alertmanager alerts open incidents automatically",
        "   - Review alert rules behind repeat incidents",
        "   - Add custom metrics for business KPIs",
        "",
        "3. **Runbook Validation:**",
        "   - Run quarterly disaster recovery drills",
        "   - Test each P0 runbook in staging",
        "   - Update based on real incident learnings",
        "",
        "### Upcoming Initiatives",
        "- [x] Automated incident report generation",
        "- [x] Integration with Slack for real-time updates",
        "- [x] Post-mortem template automation",
        "- [x] Trend analysis (weekly anomaly detection)",
    ]


def documentation_section(settings: Settings) -> list[str]:
    links = [f"- [{name}]({settings.runbook_url(name)})" for name in settings.runbooks]
    return ["## 📚 Related Documentation", "", *(links or ["- *(no runbooks configured)*"])]


def severity_section(settings: Settings) -> list[str]:
    lines = ["## 📝 Incident Severity Definitions"]
    for severity in SEVERITIES:
        name, _, meaning = SEVERITY_MEANINGS[severity].partition(": ")
        response = fmt_target(settings.response_targets[severity], long=True)
        if severity == "P0":
            response = f"Immediate ({response})"
        lines += [
            "",
            f"### {severity} - {name}",
            f"- **Impact:** {meaning[:1].upper()}{meaning[1:]}",
            f"- **Response Time:** {response}",
            f"- **MTTR Target:** {fmt_target(settings.resolution_targets[severity], long=True)}",
            "- **Examples:**",
            *(f"  - {example}" for example in SEVERITY_EXAMPLES[severity]),
        ]
    return lines
