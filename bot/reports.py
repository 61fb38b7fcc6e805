"""Markdown renderers: the periodic reports, the whole incident tracker, and one incident's postmortem."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, select

from bot import metrics
from bot.metrics import DurationStats, PeriodMetrics, PeriodSummary
from bot.periods import (
    Period,
    current_period,
    custom_period,
    period_before,
    periods_back,
    previous_period,
)
from bot.settings import Settings
from storage.models import (
    CATEGORIES,
    PREVENTION_STRATEGIES,
    ROOT_CAUSE_CLASSES,
    SEVERITIES,
    SEVERITY_MEANINGS,
    FollowUp,
    Incident,
    TimelineEntry,
)

REPORT_TITLES = {
    "weekly": "Weekly incident digest",
    "monthly": "Monthly incident summary",
    "quarterly": "Quarterly incident retrospective",
}
LOG_LIMIT = 50  # incidents written out in full in the tracker's log; the rest are one line a month
LOG_MONTHS = 12
LESSON_LIMIT = 5
ACTION_LIMIT = 10

DEFINITIONS = (
    "**Period rule:** an incident counts in the period it was declared in, even when its impact began "
    "earlier or it was resolved later; open incidents and follow-ups are a snapshot at report time.",
    "**MTTA** (mean time to acknowledge): declared → acknowledged, over acknowledged incidents.",
    "**MTTM** (mean time to mitigate): impact started → mitigated (or resolved, if never marked "
    "mitigated), over resolved incidents.",
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

SEVERITY_EXAMPLES = {
    "P0": ("API completely down", "Database inaccessible", "Data corruption detected"),
    "P1": ("Login failures", "Payment processing broken", "Slow query performance affecting UX"),
    "P2": ("Single feature broken", "Performance degradation in non-critical path", "UI rendering issue"),
    "P3": ("Typos in UI", "Non-critical background job failure", "Minor logging issues"),
}

TEMPLATE_BLOCK = """### Template (Copy for new incidents)
```markdown
## INC-YYYY-MM-DD-NNN: [Brief Title]
**Date:** YYYY-MM-DD HH:MM UTC{br}
**Severity:** P0/P1/P2{br}
**Status:** Investigating | Mitigated | Resolved{br}
**MTTR:** XX minutes{br}
**Affected Users:** ~XX users{br}

**Detection:**
- [How was it detected? Alert, user report, monitoring?]

**Impact:**
- [What functionality was affected?]
- [Revenue impact if applicable]

**Root Cause:**
- [Brief description]

**Resolution:**
- [What fixed it?]

**Timeline:**
- HH:MM - [Event]
- HH:MM - [Action taken]
- HH:MM - [Resolution]

**Follow-up Beads:**
- `ved-xxx`: [Prevention measure]

**RCA Document:** [Link to detailed RCA if P0/P1]

---
```""".replace("{br}", "  ")  # Markdown line breaks

_SLACK_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_SLACK_BARE_LINK = re.compile(r"<(https?://[^|>]+)>")


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest:02d} min"
    days, rest = divmod(round(seconds / 3600), 24)
    return f"{days} d {rest} h"


def fmt_stats(stats: DurationStats) -> str:
    if not stats.count:
        return "-"
    return f"{fmt_duration(stats.mean)} / {fmt_duration(stats.median)} / {fmt_duration(stats.p90)} (n={stats.count})"


def fmt_target(target: timedelta, *, long: bool = False) -> str:
    minutes = target.total_seconds() / 60
    if minutes < 60 or minutes % 60:
        unit = "minutes" if long else "min"
        return f"<{minutes:g} {unit}"
    hours = minutes / 60
    return f"<{hours:g} hour" + ("" if hours == 1 else "s")


def fmt_share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def fmt_money(value: float) -> str:
    return f"${value:,.2f}" if value % 1 else f"${value:,.0f}"


def fmt_trend(current: int, previous: int) -> str:
    if current == previous:
        return "→ 0" if current else "-"
    sign = "↑ +" if current > previous else "↓ −"
    return f"{sign}{abs(current - previous)}"


def fmt_when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def markdown_text(text: str | None) -> str:
    """Slack mrkdwn as stored, turned into Markdown: links become links, escapes are undone.
    Mentions stay `<@U…>` so a reader can still look the person up."""
    if not text:
        return ""
    text = _SLACK_LINK.sub(r"[\2](\1)", text)
    text = _SLACK_BARE_LINK.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _bullets(text: str | None, empty: str) -> list[str]:
    lines = [line.strip() for line in markdown_text(text).splitlines() if line.strip()]
    return [f"- {line}" for line in lines] or [f"- {empty}"]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _numbered(items: Sequence[str], empty: str, *, slots: int = 3) -> list[str]:
    if not items:
        return [f"1. {empty}", *(f"{n}. -" for n in range(2, slots + 1))]
    padded = [*items, *["-"] * max(0, slots - len(items))]
    return [f"{n}. {item}" for n, item in enumerate(padded, start=1)]


# ---------------------------------------------------------------------------------------------
# Postmortem (the tracker's incident template)


def render_postmortem(session: Session, incident_id: str) -> str | None:
    """One incident in the tracker's template; None when there is no such incident."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    entries = _timelines(session, [incident.id]).get(incident.id, [])
    follow_ups = _follow_ups(session, [incident.id]).get(incident.id, [])
    gap = metrics.resolved_gaps(session, [incident.id]).get(incident.id, timedelta())
    return "\n".join(incident_entry(incident, entries, follow_ups, resolved_gap=gap)) + "\n"


def incident_entry(
    incident: Incident,
    entries: Sequence[Any],
    follow_ups: Sequence[FollowUp],
    *,
    resolved_gap: timedelta = timedelta(),
) -> list[str]:
    """The template block for one incident; used by the postmortem and by the tracker's log.

    `resolved_gap`: how long a reopened incident sat resolved, which is not part of its MTTR.
    """
    if incident.resolved_at is not None:
        open_time = incident.resolved_at - incident.started_at - resolved_gap
        mttr = f"{round(open_time.total_seconds() / 60)} minutes"
    else:
        mttr = "- (unresolved)"
    users = f"~{incident.affected_users:,} users" if incident.affected_users is not None else "- (unknown)"
    lines = [
        f"## {incident.id}: {markdown_text(incident.title)}",
        f"**Date:** {fmt_when(incident.declared_at)}  ",
        f"**Severity:** {incident.severity}  ",
        f"**Status:** {incident.status}  ",
        f"**MTTR:** {mttr}  ",
        f"**Affected Users:** {users}  ",
        "",
        "**Detection:**",
        *_bullets(incident.detection, "(not recorded)"),
    ]
    if incident.alert_name:
        lines.append(f"- Alert: `{incident.alert_name}`")
    if incident.detection_url:
        lines.append(f"- Source: {incident.detection_url}")
    if incident.started_at < incident.declared_at:
        lines.append(f"- Impact began {fmt_when(incident.started_at)}, before it was declared")
    lines += ["", "**Impact:**", *_bullets(incident.impact, "(not recorded)")]
    if incident.affected:
        lines.append(f"- Affected service: {markdown_text(incident.affected)}")
    revenue = incident.revenue_impact
    lines.append(f"- Revenue impact: {fmt_money(revenue)}" if revenue else "- Revenue impact: none recorded")
    lines += ["", "**Root Cause:**", *_bullets(incident.root_cause, "(under investigation)")]
    if incident.category or incident.root_cause_class:
        labels = " / ".join(x for x in (incident.category, incident.root_cause_class) if x)
        lines.append(f"- Classified as: {labels}")
    lines += ["", "**Resolution:**", *_bullets(incident.resolution, "(pending)")]
    if incident.runbook:
        lines.append(f"- Runbook used: {incident.runbook}")
    lines += ["", "**Timeline:**", *timeline_lines(entries), "", "**Follow-up Beads:**"]
    lines += [_follow_up_line(f) for f in follow_ups] or ["- (none yet)"]
    lines.append("")
    if incident.rca_url:
        lines.append(f"**RCA Document:** [{incident.rca_url}]({incident.rca_url})")
    elif incident.severity in ("P0", "P1"):
        lines.append(f"**RCA Document:** *(expected for {incident.severity} — not linked yet)*")
    else:
        lines.append(f"**RCA Document:** N/A (not required for {incident.severity})")
    lines += ["", "---"]
    return lines


def timeline_lines(entries: Sequence[Any]) -> list[str]:
    """`- HH:MM - event` in time order; the date leads the first entry and every change of UTC day."""
    lines = []
    last_day = None
    for entry in sorted(entries, key=lambda e: (e.occurred_at, e.id or 0)):
        if entry.deleted:
            continue
        when = entry.occurred_at.astimezone(UTC)
        stamp = when.strftime("%H:%M")
        if when.date() != last_day:
            stamp = when.strftime("%Y-%m-%d %H:%M")
            last_day = when.date()
        text = markdown_text(entry.text).strip()
        if entry.kind == "message" and entry.author:
            text = f"<@{entry.author}>: {text}"
        for attachment in entry.files or []:
            name = attachment.get("name") or "file"
            link = attachment.get("permalink")
            text += f" 📎 [{name}]({link})" if link else f" 📎 {name}"
        if entry.edited_ts:
            text += " *(edited)*"
        if entry.key_event:
            text = f"📌 **{text}**"
        # Continuation lines stay inside the list item.
        lines.append(f"- {stamp} - " + text.replace("\n", "\n  "))
    return lines or ["- (no timeline entries yet)"]


def _follow_up_line(follow_up: FollowUp) -> str:
    details = []
    if follow_up.owner:
        details.append(f"owner <@{follow_up.owner}>")
    if follow_up.due_date:
        details.append(f"due {follow_up.due_date:%Y-%m-%d}")
    suffix = f" ({', '.join(details)})" if details else ""
    mark = "✅" if follow_up.done else "⬜"
    return f"- `FU-{follow_up.id}`: {markdown_text(follow_up.description)}{suffix} {mark}"


def _timelines(session: Session, incident_ids: Sequence[str]) -> dict[str, list[Any]]:
    if not incident_ids:
        return {}
    t = cast(sa.Table, TimelineEntry.__table__).c
    statement = (
        sa.select(
            t.id, t.incident_id, t.kind, t.author, t.text, t.edited_ts, t.files, t.deleted, t.key_event, t.occurred_at
        )
        .where(t.incident_id.in_(incident_ids), t.deleted.is_(False))
        .order_by(t.incident_id, t.occurred_at, t.id)
    )
    found: dict[str, list[Any]] = {}
    for row in session.execute(statement):
        found.setdefault(row.incident_id, []).append(row)
    return found


def _follow_ups(session: Session, incident_ids: Sequence[str]) -> dict[str, list[FollowUp]]:
    if not incident_ids:
        return {}
    statement = select(FollowUp).where(FollowUp.incident_id.in_(incident_ids)).order_by(FollowUp.id)  # type: ignore[attr-defined]
    found: dict[str, list[FollowUp]] = {}
    for follow_up in session.exec(statement):
        found.setdefault(follow_up.incident_id, []).append(follow_up)
    return found


# ---------------------------------------------------------------------------------------------
# Periodic reports


def render_report(session: Session, settings: Settings, kind: str, now: datetime) -> str:
    """The last complete week, month or quarter against the one before, as Markdown."""
    if kind not in REPORT_TITLES:
        raise ValueError(f"unknown report {kind!r}: use weekly, monthly or quarterly")
    period = previous_period(kind, now, settings.digest_timezone)
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
        *_table(
            ("Period", "Uptime", "Downtime", "SLA Met?"),
            [(period.label, _uptime(m.availability), _downtime(m.availability), _sla_mark(m.availability, True))],
        ),
        "",
        "## Open incidents",
        "",
        *_open_incident_lines(m.open_incidents, m.open_count, now),
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
        *_table(
            ("Category", "Count", "% of Total", "Trend"),
            [(c.name, str(c.count), fmt_share(c.share), fmt_trend(c.count, c.previous_count)) for c in m.categories],
        ),
        "",
        "## Incidents by root cause",
        "",
        *_table(
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
        *_numbered([f"**{r.name}**: {_plural(r.count, 'use')}" for r in m.runbooks], "*(No runbook use recorded)*"),
        "",
        "## Definitions",
        "",
        *(f"- {definition}" for definition in DEFINITIONS),
    ]
    return "\n".join(lines) + "\n"


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
        f"- **Availability:** {_uptime(m.availability)} (target {m.availability.target}%) "
        f"{_sla_mark(m.availability, True)}; downtime {_downtime(m.availability)}",
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
    return _table(
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


def _uptime(value: metrics.Availability) -> str:
    return "-" if value.percent is None else f"{value.percent:.3f}%"


def _downtime(value: metrics.Availability) -> str:
    return "-" if value.percent is None else f"{value.downtime_minutes:.1f} min"


def _sla_mark(value: metrics.Availability, complete: bool) -> str:
    if value.met is None:
        return "⏳ Measuring"
    if complete:
        return "✅ Yes" if value.met else "❌ No"
    return "✅ On track" if value.met else "❌ Missed"


def _open_incident_lines(rows: Sequence[metrics.OpenIncident], total: int, now: datetime) -> list[str]:
    if not rows:
        return [f"**None** - Last updated: {fmt_when(now)}"]
    lines = _table(
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
    return lines + _table(("Overdue by", "Follow-ups"), [(label, str(n)) for label, n in ages.overdue_by_age])


def _repeat_lines(repeats: Sequence[str], limit: int = 20) -> list[str]:
    if not repeats:
        return ["*(No repeat incidents)*"]
    shown = ", ".join(f"`{r}`" for r in repeats[:limit])
    more = f" and {len(repeats) - limit} more" if len(repeats) > limit else ""
    return [f"{len(repeats)} repeat incidents: {shown}{more}."]


def _anomaly_lines(m: PeriodMetrics) -> list[str]:
    return _table(
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


# ---------------------------------------------------------------------------------------------
# The tracker


def render_tracker(session: Session, settings: Settings, now: datetime, *, log_limit: int = LOG_LIMIT) -> str:
    """The whole INCIDENT_TRACKER.md, regenerated from the database.

    The log writes the `log_limit` most recent incidents out in full; older ones in the same months
    are summarised per month (`incident-bot postmortem <id>` renders any of them), which keeps the
    document readable and its rendering fast on a long history.
    """
    tz = settings.digest_timezone
    month = current_period("monthly", now, tz)
    months = periods_back(month, LOG_MONTHS)  # oldest first
    month_summaries = metrics.summaries(session, settings=settings, periods=months, now=now)
    first_started = _first_started(session)
    year = current_period("yearly", now, tz)
    quarters = periods_back(current_period("quarterly", now, tz), 4)
    history_start = min(quarters[0].start, months[0].start, year.start)
    intervals = metrics.p0_intervals(session, start=history_start, end=now, now=now)
    last_30 = custom_period(now - timedelta(days=30), now, "last 30 days")
    before_last_30, recent = metrics.summaries(
        session, settings=settings, periods=[period_before(last_30), last_30], now=now
    )
    context = _TrackerContext(
        session=session,
        settings=settings,
        now=now,
        month_summaries=month_summaries,
        first_started=first_started,
        year=year,
        quarters=quarters,
        intervals=intervals,
        last_30=(before_last_30, recent),
    )
    today = now.astimezone(month.local_start.tzinfo).date()
    sections = [
        [
            "# Incident Response Tracker",
            "",
            "**Purpose:** Central log of all production incidents for trend analysis and retrospectives  ",
            f"**Owner:** Incident commanders in #{settings.incident_channel} (generated by incident-bot)  ",
            f"**Last Updated:** {today:%Y-%m-%d}",
        ],
        _current_status_section(context, today.isoformat()),
        ["## 🚨 Active Incidents", "", *_open_incident_lines(*metrics.open_incidents(session), now)],
        _log_section(context, log_limit),
        _monthly_reports_section(context),
        _sla_section(context),
        _analysis_section(context),
        _quarterly_section(context),
        _lessons_section(context),
        _runbook_section(context),
        _dashboard_section(context),
        _improvement_section(context),
        _documentation_section(settings),
        _channels_section(settings),
        _severity_section(settings),
        [
            "**Incident Reporting Process:**",
            "1. Detect → 2. Log in this file → 3. Execute runbook → 4. Update status → "
            "5. Create follow-up beads → 6. RCA (if P0/P1)",
        ],
    ]
    return "\n\n---\n\n".join("\n".join(section) for section in sections) + "\n"


class _TrackerContext:
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


def _first_started(session: Session) -> datetime | None:
    c = cast(sa.Table, Incident.__table__).c
    value = session.execute(sa.select(sa.func.min(c.started_at))).scalar_one_or_none()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite gives MIN() back untyped
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _current_status_section(ctx: _TrackerContext, today: str) -> list[str]:
    # This month is the last of the month summaries (the same period, in the same time zone).
    status = metrics.current_status(
        ctx.session, settings=ctx.settings, now=ctx.now, month_summary=ctx.month_summaries[-1], recent=ctx.last_30
    )
    rows = []
    for figure in status.figures:
        if figure is status.mttr:
            current = fmt_duration(figure.current) if figure.current is not None else "-"
        else:
            current = str(figure.current)
        rows.append((f"**{figure.name}**", current, figure.target, figure.mark))
    return [
        f"## 📊 Current Status ({today})",
        "",
        *_table(("Metric", "Current", "Target", "Status"), rows),
        "",
        "*MTTR, P0, P1 and repeats: incidents declared in the last 30 days; MTTR over resolved ones.*",
    ]


def _log_section(ctx: _TrackerContext, log_limit: int) -> list[str]:
    lines = [f"## 📝 Incident Log ({ctx.year.label})", "", TEMPLATE_BLOCK]
    summaries = ctx.month_summaries[::-1]
    shown = [summaries[0], summaries[1]] + [s for s in summaries[2:] if s.total]
    recent = _recent_incidents(ctx.session, since=summaries[-1].period.start, limit=log_limit)
    ids = [incident.id for incident in recent]
    timelines = _timelines(ctx.session, ids)
    follow_ups = _follow_ups(ctx.session, ids)
    gaps = metrics.resolved_gaps(ctx.session, ids)
    for summary in shown:
        period = summary.period
        lines += ["", f"### {period.label}", ""]
        in_month = [i for i in recent if period.contains(i.declared_at)]
        if not summary.total:
            lines.append("*(No incidents recorded)*")
        for incident in in_month:
            lines += incident_entry(
                incident,
                timelines.get(incident.id, []),
                follow_ups.get(incident.id, []),
                resolved_gap=gaps.get(incident.id, timedelta()),
            )
            lines.append("")
        rest = summary.total - len(in_month)
        if rest > 0:
            mix = " · ".join(f"{s} {summary.severity(s).count}" for s in SEVERITIES)
            lines.append(
                f"*{_plural(rest, 'further incident')} this month ({mix}): "
                "`incident-bot postmortem <id>` renders any of them in full.*"
            )
        while lines and lines[-1] == "":
            lines.pop()
        if in_month and lines[-1] == "---":
            lines.pop()
    return lines


def _recent_incidents(session: Session, *, since: datetime, limit: int) -> list[Incident]:
    if limit <= 0:
        return []
    statement = (
        select(Incident)
        .where(Incident.declared_at >= since)
        .order_by(Incident.declared_at.desc(), Incident.id.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    return list(session.exec(statement))


def _monthly_reports_section(ctx: _TrackerContext) -> list[str]:
    lines = ["## 📈 Monthly Incident Reports"]
    months = ctx.months_with_data()
    opened = _follow_ups_per_period(ctx.session, [s.period for s in ctx.month_summaries])
    by_start = {s.period.start: n for s, n in zip(ctx.month_summaries, opened, strict=True)}
    for summary in months:
        total_fu, open_fu = by_start[summary.period.start]
        mttr = summary.mttr_mean
        mttr_text = (
            f"{fmt_duration(mttr)} (mean of {summary.resolved} resolved)" if mttr is not None else "- (no baseline)"
        )
        top = max(summary.root_causes.items(), key=lambda kv: (kv[1], -_order(ROOT_CAUSE_CLASSES, kv[0])), default=None)
        if total_fu:
            actions = f"{_plural(total_fu, 'follow-up')} opened, {open_fu} still open"
        elif summary.total:
            actions = "No follow-ups recorded"
        else:
            actions = "Establish baseline monitoring"
        lines += [
            "",
            f"### {summary.period.label} Summary",
            f"**Total Incidents:** {summary.total}  ",
            " | ".join(f"**{s}:** {summary.severity(s).count}" for s in SEVERITIES) + "  ",
            f"**MTTR:** {mttr_text}  ",
            f"**Top Cause:** {f'{top[0]} ({top[1]})' if top else 'N/A'}  ",
            f"**Affected Users:** ~{summary.affected_users:,} | "
            f"**Revenue Impact:** {fmt_money(summary.revenue_impact)}  ",
            f"**Action Items:** {actions}",
        ]
    return lines


def _order(names: Sequence[str], name: str) -> int:
    return names.index(name) if name in names else len(names)


def _follow_ups_per_period(session: Session, periods: Sequence[Period]) -> list[tuple[int, int]]:
    """(follow-ups created, of which still open) per period."""
    f = cast(sa.Table, FollowUp.__table__).c
    bucket = sa.case(
        *((sa.and_(f.created_at >= p.start, f.created_at < p.end), i) for i, p in enumerate(periods)), else_=None
    ).label("bucket")
    statement = (
        sa.select(bucket, sa.func.count(), sa.func.sum(sa.case((f.done.is_(False), 1), else_=0)))
        .where(f.created_at >= periods[0].start, f.created_at < periods[-1].end)
        .group_by(bucket)
    )
    found = [(0, 0)] * len(periods)
    for index, total, still_open in session.execute(statement):
        if index is not None:
            found[int(index)] = (int(total), int(still_open or 0))
    return found


def _sla_section(ctx: _TrackerContext) -> list[str]:
    rows = []
    for summary in ctx.month_summaries[::-1]:
        period = summary.period
        if ctx.first_started is None or period.end <= ctx.first_started:
            continue  # before the first recorded incident there is nothing to measure against
        value = metrics.availability(ctx.intervals, period=period, now=ctx.now)
        rows.append(
            (
                period.local_start.strftime("%b %Y"),
                _uptime(value),
                _downtime(value),
                _sla_mark(value, not period.contains(ctx.now)),
            )
        )
    if not rows:
        rows.append((ctx.month_summaries[-1].period.local_start.strftime("%b %Y"), "-", "-", "⏳ Measuring"))
    lines = [
        "## 🎯 SLA Tracking",
        "",
        f"### Availability SLA: {metrics.AVAILABILITY_TARGET}% (Target)",
        *_table(("Month", "Uptime", "Downtime", "SLA Met?"), rows),
        "",
        "**Calculation:** `Uptime % = (Total Minutes - Downtime Minutes) / Total Minutes * 100`  ",
        "Downtime is the union of P0 impact intervals (started → mitigated, else resolved, else now), "
        "so overlapping outages count once; the current month is measured up to now.",
        "",
        "### MTTR by Severity",
    ]
    before, recent = ctx.before_last_30, ctx.last_30
    rows = []
    for severity in SEVERITIES:
        current = recent.severity(severity).mttr_mean
        previous = before.severity(severity).mttr_mean
        count = recent.severity(severity).resolve_count
        rows.append(
            (
                severity,
                fmt_target(ctx.settings.resolution_targets[severity]),
                f"{fmt_duration(current)} (n={count})" if current is not None else "-",
                _mttr_trend(current, previous),
            )
        )
    lines += [
        *_table(("Severity", "Target", "Current", "Trend"), rows),
        "",
        "*Current: mean MTTR of incidents declared in the last 30 days; trend against the 30 days before.*",
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


def _analysis_section(ctx: _TrackerContext) -> list[str]:
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
        *_numbered(
            [f"**{r.category} — {markdown_text(r.affected)}**: {r.count} incidents" for r in recurring],
            "*(No data yet - no recurring issues)*",
        ),
        "",
        "### Incidents by Category",
        *_table(("Category", "Count", "% of Total", "Trend"), category_rows),
        "",
        "### Incidents by Root Cause",
        *_table(("Root Cause", "Count", "Prevention Strategy"), cause_rows),
        "",
        f"*Incidents declared since {six[0].period.label} (6 calendar months); "
        "trend: the last 3 months against the 3 before.*",
    ]


def _quarterly_section(ctx: _TrackerContext) -> list[str]:
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
                f"- Availability: {_uptime(value)} ({_sla_mark(value, not current)})",
                f"- Most affected category: {f'{top[0]} ({top[1]})' if top else 'N/A'}",
            ]
        if current:
            following = period.end.astimezone(start.tzinfo)
            lines += [
                "",
                "**Planned Reviews:**",
                f"- [ ] Weekly: `{ctx.settings.digest_cron}` ({ctx.settings.digest_timezone}) "
                "— quick review of the past week",
                "- [ ] Monthly: First Monday of month (trend analysis)",
                f"- [ ] Quarterly: First Monday of {following:%B} (full retrospective)",
                "",
                "**Key Questions:**",
                "1. What patterns emerged?",
                "2. Are MTTR targets being met?",
                "3. Which runbooks were most useful?",
                "4. What monitoring gaps exist?",
                "5. What preventive measures worked?",
            ]
    return lines


def _lessons_section(ctx: _TrackerContext) -> list[str]:
    c = cast(sa.Table, Incident.__table__).c
    f = cast(sa.Table, FollowUp.__table__).c

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


def _runbook_section(ctx: _TrackerContext) -> list[str]:
    used = metrics.runbook_counts(ctx.session, start=ctx.now - timedelta(days=30), end=ctx.now, limit=3)
    insight = "Track which runbooks are accessed most to identify common pain points"
    if used:
        insight = f"**{used[0].name}** was opened most; {insight[0].lower()}{insight[1:]}"
    return [
        "## 🛠️ Runbook Usage Statistics",
        "",
        "### Most-Used Runbooks (Last 30 Days)",
        *_numbered([f"**{r.name}**: {_plural(r.count, 'use')}" for r in used], "*(No usage data yet)*"),
        "",
        f"**Insight:** {insight}",
    ]


def _dashboard_section(ctx: _TrackerContext) -> list[str]:
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


def _improvement_section(ctx: _TrackerContext) -> list[str]:
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


def _documentation_section(settings: Settings) -> list[str]:
    links = [f"- [{name}]({settings.runbook_url(name)})" for name in settings.runbooks]
    return ["## 📚 Related Documentation", "", *(links or ["- *(no runbooks configured)*"])]


def _channel(name: str) -> str:
    # A channel id cannot be shown as #name without asking Slack; show it as Slack would link it.
    return f"<#{name}>" if re.fullmatch(r"[CG][A-Z0-9]{6,}", name) else f"#{name.lstrip('#')}"


def _channels_section(settings: Settings) -> list[str]:
    return [
        "## 🔔 Notification Channels",
        "",
        "### Incident Alerts",
        f"- **Slack:** {_channel(settings.alert_channel)} (escalations and Alertmanager-declared incidents)",
        "",
        "### Incident Updates",
        f"- **Slack:** {_channel(settings.incident_channel)} (incident cards, thread timelines and digests)",
    ]


def _severity_section(settings: Settings) -> list[str]:
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
