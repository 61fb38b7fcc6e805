"""The weekly, monthly and quarterly summaries as Markdown, with the metric definitions they use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.oncall.load import period_load, ranked
from bot.oncall.pages import Load
from bot.reports import metrics
from bot.reports.formatting import (
    REPORT_TITLES,
    fmt_duration,
    fmt_money,
    fmt_share,
    fmt_stats,
    fmt_target,
    fmt_trend,
    fmt_when,
    markdown_table,
    markdown_text,
    numbered,
    with_names,
)
from bot.reports.metrics import PeriodMetrics
from bot.reports.periods import Period, previous_period
from bot.settings import Settings
from storage.models import (
    PREVENTION_STRATEGIES,
)

DEFINITIONS = (
    "**Period rule:** an incident counts in the period it was declared in, even when its impact began "
    "earlier or it was resolved later; open incidents and follow-ups are a snapshot at report time.",
    "**MTTA** (mean time to acknowledge): declared → acknowledged, over every acknowledged incident, open or not.",
    "**MTTM** (mean time to mitigate): impact started → mitigated (or resolved, if never marked "
    "mitigated), over every mitigated incident, open or not.",
    "**MTTR** (mean time to recovery): impact started → resolved, over resolved incidents only.",
    "**Median / p90:** by linear interpolation between the closest ranks; durations are skewed, so the "
    "mean alone misleads. *n* is the number of incidents the figure covers.",
    "**Target met:** declared → acknowledged within the response target, declared → resolved within "
    "the resolution target; open incidents still inside their target are not counted yet.",
    "**Lapsed targets:** incidents whose response or resolution target lapsed, from the escalations "
    "announced (or, for incidents without escalation records, from their timestamps).",
    "**Availability (SLA 99.9%):** `(total minutes − downtime minutes) / total minutes × 100`; downtime "
    "is the union of P0 impact intervals (started → mitigated, else resolved, else now) clipped to the "
    "period, so overlapping outages count once. A period in progress is measured up to now.",
    "**Reopened incidents** count once. Their impact is a set of intervals (started → first "
    "mitigation, else resolution; each reopening → its next mitigation, else resolution): MTTM and "
    "downtime add those up, MTTR is the time open up to the final resolution. The time an incident sat "
    "resolved before it was reopened counts in neither.",
    "**Repeat incident:** same category and same affected service (or same alert name) as an "
    "incident resolved in the 30 days before it was declared.",
    "**Anomaly:** a week whose incident count exceeds the trailing 12-week mean by more than two "
    "(population) standard deviations.",
    "**Overdue follow-up:** not done and past its due date; grouped by days past due.",
)


def render_report(
    session: Session, settings: Settings, kind: str, now: datetime, *, period: Period | None = None
) -> str:
    """The last complete week, month or quarter (or `period`) against the one before, as Markdown."""
    if kind not in REPORT_TITLES:
        raise ValueError(f"unknown report {kind!r}: use weekly, monthly or quarterly")
    period = period or previous_period(kind, now, settings.digest_timezone)
    m = metrics.period_metrics(session, settings=settings, period=period, now=now)
    lines = [
        f"# {REPORT_TITLES[kind]}: {period.label}",
        "",
        f"*{_span(period)}, compared with {m.previous.label}. Generated {fmt_when(now)}.*",
        "",
        *_report_summary(m),
        "",
        "## By severity",
        "",
        *_report_severity_table(m, settings),
        "",
        "## Availability",
        "",
        *markdown_table(
            ("Period", "Uptime", "Downtime", "SLA Met?"),
            [
                (
                    period.label,
                    uptime_text(m.availability),
                    downtime_text(m.availability),
                    sla_mark(m.availability, True),
                )
            ],
        ),
        "",
        "## Open incidents",
        "",
        *open_incident_lines(m.open_incidents, m.open_count, now),
        "",
        "## Overdue follow-ups by age",
        "",
        *_follow_up_age_lines(m),
        "",
        "## Repeat incidents",
        "",
        *_repeat_lines(m.repeats),
        "",
        "## Anomalies",
        "",
        *_anomaly_lines(m),
        "",
        "## Incidents by category",
        "",
        *markdown_table(
            ("Category", "Count", "% of Total", "Trend"),
            [(c.name, str(c.count), fmt_share(c.share), fmt_trend(c.count, c.previous_count)) for c in m.categories],
        ),
        "",
        "## Incidents by root cause",
        "",
        *markdown_table(
            ("Root Cause", "Count", "% of Total", "Trend", "Prevention Strategy"),
            [
                (
                    c.name,
                    str(c.count),
                    fmt_share(c.share),
                    fmt_trend(c.count, c.previous_count),
                    PREVENTION_STRATEGIES.get(c.name, "-"),
                )
                for c in m.root_causes
            ],
        ),
        "",
        "## Most-used runbooks",
        "",
        *numbered([f"**{r.name}**: {plural(r.count, 'use')}" for r in m.runbooks], "*(No runbook use recorded)*"),
        "",
        *_oncall_lines(period_load(session, settings.oncall, period.start, period.end)),
        "## Definitions",
        "",
        *(f"- {definition}" for definition in DEFINITIONS),
    ]
    return with_names(session, "\n".join(lines) + "\n")


def _oncall_lines(load: dict[str, Load]) -> list[str]:
    """The "On-call load" section, only when on-call schedules are configured."""
    if not load:
        return []
    rows = [(user, str(p.pages), str(p.pages_out_of_hours), f"{p.hours_on_call:.1f}", str(p.acknowledged))
            for user, p in ranked(load)]
    header = ("Person", "Pages", "Out of hours (outside 08:00–20:00 local)", "Hours on call", "Acknowledged")
    return ["## On-call load", "", *markdown_table(header, rows), ""]


def _span(period: Period) -> str:
    start = period.local_start
    end = period.end.astimezone(start.tzinfo)
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} {period.timezone}"


def _report_summary(m: PeriodMetrics) -> list[str]:
    anomalies = m.anomalies
    anomaly = "⚠️ " + "; ".join(f"{a.week.label}: {a.count} incidents" for a in anomalies) if anomalies else "none"
    return [
        "## Summary",
        "",
        f"- **Incidents:** {m.total} (previous {m.previous_total}, {fmt_trend(m.total, m.previous_total)})",
        f"- **MTTR (all severities, mean / median / p90):** {fmt_stats(m.mttr)}",
        f"- **Availability:** {uptime_text(m.availability)} (target {m.availability.target}%) "
        f"{sla_mark(m.availability, True)}; downtime {downtime_text(m.availability)}",
        f"- **Affected users:** ~{m.affected_users:,}",
        f"- **Revenue impact:** {fmt_money(m.revenue_impact)}",
        f"- **Repeat incidents:** {len(m.repeats)}",
        f"- **Open incidents now:** {m.open_count}",
        f"- **Overdue follow-ups:** {m.follow_ups.overdue} of {m.follow_ups.open} open",
        f"- **Anomalous weeks:** {anomaly}",
    ]


def _report_severity_table(m: PeriodMetrics, settings: Settings) -> list[str]:
    rows = []
    for s in m.severities:
        rows.append(
            (
                s.severity,
                str(s.count),
                str(s.previous_count),
                fmt_trend(s.count, s.previous_count),
                fmt_stats(s.mtta),
                fmt_target(settings.response_targets[s.severity]),
                _met(s.response),
                fmt_stats(s.mttm),
                fmt_stats(s.mttr),
                fmt_target(settings.resolution_targets[s.severity]),
                _met(s.resolution),
                f"{s.response.lapsed} / {s.resolution.lapsed}",
            )
        )
    return markdown_table(
        (
            "Severity",
            "Incidents",
            "Previous",
            "Trend",
            "MTTA mean / median / p90",
            "Response target",
            "Response met",
            "MTTM mean / median / p90",
            "MTTR mean / median / p90",
            "Resolution target",
            "Resolution met",
            "Lapsed (response / resolution)",
        ),
        rows,
    )


def _met(target: metrics.TargetStats) -> str:
    if not target.decided:
        return "-"
    return f"{fmt_share(target.share)} ({target.met}/{target.decided})"


def uptime_text(value: metrics.Availability) -> str:
    return "-" if value.percent is None else f"{value.percent:.3f}%"


def downtime_text(value: metrics.Availability) -> str:
    return "-" if value.percent is None else f"{value.downtime_minutes:.1f} min"


def sla_mark(value: metrics.Availability, complete: bool) -> str:
    if value.met is None:
        return "⏳ Measuring"
    if complete:
        return "✅ Yes" if value.met else "❌ No"
    return "✅ On track" if value.met else "❌ Missed"


def open_incident_lines(rows: Sequence[metrics.OpenIncident], total: int, now: datetime) -> list[str]:
    if not rows:
        return [f"**None** - Last updated: {fmt_when(now)}"]
    lines = markdown_table(
        ("Incident", "Severity", "Status", "Title", "Commander", "Declared", "Open for"),
        [
            (
                f"`{r.id}`",
                r.severity,
                r.status,
                markdown_text(r.title).replace("|", "\\|"),
                f"<@{r.commander}>" if r.commander else "-",
                fmt_when(r.declared_at),
                fmt_duration((now - r.declared_at).total_seconds()),
            )
            for r in rows
        ],
    )
    if total > len(rows):
        lines += ["", f"*… and {total - len(rows)} more open incidents.*"]
    return lines


def _follow_up_age_lines(m: PeriodMetrics) -> list[str]:
    ages = m.follow_ups
    lines = [f"{ages.open} open follow-ups, {ages.overdue} overdue.", ""]
    return lines + markdown_table(("Overdue by", "Follow-ups"), [(label, str(n)) for label, n in ages.overdue_by_age])


def _repeat_lines(repeats: Sequence[str], limit: int = 20) -> list[str]:
    if not repeats:
        return ["*(No repeat incidents)*"]
    shown = ", ".join(f"`{r}`" for r in repeats[:limit])
    more = f" and {len(repeats) - limit} more" if len(repeats) > limit else ""
    return [f"{len(repeats)} repeat incidents: {shown}{more}."]


def _anomaly_lines(m: PeriodMetrics) -> list[str]:
    return markdown_table(
        ("Week", "Incidents", "Trailing 12-week mean", "Std. dev.", "Anomaly?"),
        [
            (
                a.week.label,
                str(a.count),
                f"{a.trailing_mean:.1f}",
                f"{a.trailing_stdev:.1f}",
                "⚠️ Yes" if a.flagged else "No",
            )
            for a in m.weeks
        ],
    )


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
