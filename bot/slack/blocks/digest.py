"""The weekly digest and the monthly and quarterly summaries as one Block Kit message (pure builders)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot import mrkdwn
from bot.incidents import deadlines
from bot.oncall.load import ranked
from bot.oncall.pages import Load
from bot.reports.digest import ActionItem, DigestData
from bot.reports.formatting import REPORT_TITLES, fmt_duration, fmt_money, fmt_share, fmt_target, fmt_trend
from bot.reports.metrics import CountShare, DurationStats, PeriodMetrics, RecurringIssue, SeverityMetrics, TargetStats
from bot.settings import Settings
from bot.slack.blocks.card import SEVERITY_EMOJI
from storage.models import PREVENTION_STRATEGIES

# Block Kit's limits for a message (docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10

OPEN_LIMIT = 10  # open incidents listed by name; the rest are counted
REPEAT_LIMIT = 15
ACTION_LIMIT = 10
PREVIOUS = {"weekly": "the week before", "monthly": "the month before", "quarterly": "the quarter before"}
EMOJI = {"weekly": ":bar_chart:", "monthly": ":calendar:", "quarterly": ":mag_right:"}


def digest_message(data: DigestData, settings: Settings) -> dict[str, Any]:
    """`text` and `blocks` for chat.postMessage: the period against the one before."""
    m = data.metrics
    title = f"{REPORT_TITLES[data.kind]}: {m.period.label}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{title}", MAX_HEADER), "emoji": True}},
        _context(
            f"{EMOJI[data.kind]} {_span(m)}, compared with {m.previous.label}.",
            "Durations are mean / median / p90; _n_ is the number of incidents a figure covers.",
        ),
        _fields(_summary_fields(m)),
        {"type": "divider"},
        _section(f"*By severity* ({m.total} incident{_s(m.total)}, {PREVIOUS[data.kind]} {m.previous_total})"),
        *(_section(_severity_text(s, settings, data.kind)) for s in m.severities),
        _section(_lapsed_text(m)),
        {"type": "divider"},
        _section(_open_text(m, data.links, data.now)),
        _section(_follow_up_text(m)),
        _section(_repeats_text(m.repeats)),
        _section(_anomaly_text(m)),
    ]
    if data.oncall_load:
        blocks.append(_section(_oncall_text(data.oncall_load)))
    if data.kind != "weekly":
        blocks += [
            {"type": "divider"},
            _section(_top_cause_text(m, data.recurring)),
            _section(_shares_text("Incidents by category", m.categories, with_strategy=False)),
            _section(_shares_text("Incidents by root cause", m.root_causes, with_strategy=True)),
            _section(_runbook_text(m)),
            _section(_action_text(data.action_items, data.action_total)),
        ]
    blocks.append(
        _context(
            "MTTA: declared → acknowledged. MTTR: impact started → resolved, resolved incidents only. "
            "Availability: P0 downtime against the 99.9% SLA. An incident counts in the period it was declared in.",
            f"`incident-bot report {data.kind}` prints the full report with every definition.",
        )
    )
    return {"text": _fallback(title, m), "blocks": blocks[:MAX_BLOCKS]}


# ---------------------------------------------------------------------------------------------
# Parts


def _oncall_text(load: Mapping[str, Load]) -> str:
    lines = [
        f"• {mrkdwn.user(user)}: {person.pages} page{_s(person.pages)} ({person.pages_out_of_hours} out of hours), "
        f"{person.hours_on_call:.0f} h on call, {person.acknowledged} acknowledged"
        for user, person in ranked(dict(load))
    ]
    return _lines_within(["*On-call load* (out of hours: outside 08:00–20:00 in the schedule's time zone)", *lines],
                         MAX_SECTION_TEXT)


def _summary_fields(m: PeriodMetrics) -> list[str]:
    availability = m.availability
    if availability.percent is None:
        uptime = "no data"
    else:
        mark = ":white_check_mark:" if availability.met else ":x:"
        uptime = (
            f"{mark} {availability.percent:.3f}% (target {availability.target}%)\n"
            f"downtime {availability.downtime_minutes:.1f} min"
        )
    follow_ups = m.follow_ups
    return [
        f"*Incidents*\n{m.total} (previous {m.previous_total}, {_trend(m.total, m.previous_total)})",
        f"*MTTR, all severities*\n{_stats(m.mttr, 'nothing resolved')}",
        f"*Availability*\n{uptime}",
        f"*Open now*\n{m.open_count}",
        f"*Overdue follow-ups*\n{follow_ups.overdue} of {follow_ups.open} open",
        f"*Repeat incidents*\n{len(m.repeats)}",
        f"*Affected users*\n~{m.affected_users:,}",
        f"*Revenue impact*\n{fmt_money(m.revenue_impact)}",
    ]


def _severity_text(s: SeverityMetrics, settings: Settings, kind: str) -> str:
    head = f"{SEVERITY_EMOJI.get(s.severity, '')} *{s.severity}*"
    if not s.count:
        before = f"{s.previous_count} {PREVIOUS[kind]}" if s.previous_count else f"none {PREVIOUS[kind]} either"
        return f"{head} · no incidents ({before})"
    response = settings.response_targets[s.severity]
    resolution = settings.resolution_targets[s.severity]
    return "\n".join(
        [
            f"{head} · {s.count} incident{_s(s.count)} (previous {s.previous_count}, "
            f"{_trend(s.count, s.previous_count)})",
            f"MTTA {_stats(s.mtta, 'none acknowledged')} · target {fmt_target(response)} · met {_met(s.response)}",
            f"MTTR {_stats(s.mttr, 'none resolved')} · target {fmt_target(resolution)} · met {_met(s.resolution)}",
        ]
    )


def _lapsed_text(m: PeriodMetrics) -> str:
    response = [f"{s.severity} {s.response.lapsed}" for s in m.severities if s.response.lapsed]
    resolution = [f"{s.severity} {s.resolution.lapsed}" for s in m.severities if s.resolution.lapsed]
    if not response and not resolution:
        return "*Lapsed targets* :white_check_mark: none"
    parts = []
    if response:
        parts.append("response: " + ", ".join(response))
    if resolution:
        parts.append("resolution: " + ", ".join(resolution))
    return "*Lapsed targets* :rotating_light: " + " · ".join(parts)


def _open_text(m: PeriodMetrics, links: Mapping[str, str], now: datetime) -> str:
    if not m.open_count:
        return "*Open incidents* none :tada:"
    lines = [f"*Open incidents* ({m.open_count})"]
    shown = m.open_incidents[:OPEN_LIMIT]
    for incident in shown:
        link = links.get(incident.id)
        name = f"<{link}|{incident.id}>" if link else incident.id
        title = mrkdwn.escape(mrkdwn.truncate(incident.title, 80))
        age = deadlines.format_duration(now - incident.declared_at)
        lines.append(
            f"• {name} {SEVERITY_EMOJI.get(incident.severity, '')} {incident.severity} {title}: "
            f"{incident.status}, open {age}"
        )
    if m.open_count > len(shown):
        lines.append(f"…and {m.open_count - len(shown)} more (`/incident list`)")
    return _lines_within(lines, MAX_SECTION_TEXT)


def _follow_up_text(m: PeriodMetrics) -> str:
    ages = m.follow_ups
    if not ages.overdue:
        return f"*Overdue follow-ups* none ({ages.open} open)"
    buckets = " · ".join(f"{label} past due: {count}" for label, count in ages.overdue_by_age)
    return f"*Overdue follow-ups* {ages.overdue} of {ages.open} open\n{buckets}"


def _repeats_text(repeats: Sequence[str]) -> str:
    if not repeats:
        return "*Repeat incidents* none"
    shown = ", ".join(f"`{r}`" for r in repeats[:REPEAT_LIMIT])
    more = f" and {len(repeats) - REPEAT_LIMIT} more" if len(repeats) > REPEAT_LIMIT else ""
    return f"*Repeat incidents* ({len(repeats)}): {shown}{more}"


def _anomaly_text(m: PeriodMetrics) -> str:
    flagged = m.anomalies
    if not flagged:
        return "*Anomalies* none (no week above its trailing 12-week mean + 2σ)"
    lines = ["*Anomalies* :warning:"]
    lines += [
        f"• {a.week.label}: {a.count} incidents, trailing 12-week mean {a.trailing_mean:.1f} (σ {a.trailing_stdev:.1f})"
        for a in flagged
    ]
    return _lines_within(lines, MAX_SECTION_TEXT)


def _top_cause_text(m: PeriodMetrics, recurring: Sequence[RecurringIssue]) -> str:
    top = max((c for c in m.root_causes if c.count), key=lambda c: c.count, default=None)
    category = max((c for c in m.categories if c.count), key=lambda c: c.count, default=None)
    lines = [
        f"*Top cause* {f'{top.name} ({top.count})' if top else 'N/A'}"
        f" · *most affected category* {f'{category.name} ({category.count})' if category else 'N/A'}"
    ]
    if recurring:
        issues = (f"{r.category} / {mrkdwn.escape(mrkdwn.truncate(r.affected, 60))} ×{r.count}" for r in recurring)
        lines.append("Recurring: " + "; ".join(issues))
    return "\n".join(lines)


def _shares_text(heading: str, rows: Sequence[CountShare], *, with_strategy: bool) -> str:
    present = [r for r in rows if r.count or r.previous_count]
    if not present:
        return f"*{heading}* no classified incidents"
    lines = [f"*{heading}* (share · trend)"]
    for row in present:
        trend = _trend(row.count, row.previous_count)
        line = f"• {mrkdwn.escape(row.name)}: {row.count} · {fmt_share(row.share)} · {trend}"
        if with_strategy and row.name in PREVENTION_STRATEGIES and row.count:
            line += f" · _{PREVENTION_STRATEGIES[row.name]}_"
        lines.append(line)
    return _lines_within(lines, MAX_SECTION_TEXT)


def _runbook_text(m: PeriodMetrics) -> str:
    if not m.runbooks:
        return "*Most-used runbooks* no runbook use recorded"
    return "*Most-used runbooks* " + ", ".join(
        f"{mrkdwn.escape(r.name)} ({r.count} use{_s(r.count)})" for r in m.runbooks
    )


def _action_text(items: Sequence[ActionItem], total: int) -> str:
    if not items:
        return "*Action items* no open follow-ups"
    lines = [f"*Action items* ({total} open follow-up{_s(total)}, soonest due first)"]
    for item in items[:ACTION_LIMIT]:
        details = [mrkdwn.user(item.owner)] if item.owner else []
        if item.due:
            details.append(f"due {item.due:%Y-%m-%d}")
        details.append(item.incident_id)
        lines.append(f"• `FU-{item.id}` {mrkdwn.escape(mrkdwn.truncate(item.description, 120))} ({', '.join(details)})")
    if total > len(items[:ACTION_LIMIT]):
        lines.append(f"…and {total - len(items[:ACTION_LIMIT])} more")
    return _lines_within(lines, MAX_SECTION_TEXT)


def _fallback(title: str, m: PeriodMetrics) -> str:
    if not m.total:
        summary = f"No incidents were declared ({m.previous_total} {m.previous.label})"
    else:
        summary = f"{m.total} incident{_s(m.total)} (previous {m.previous_total})"
        if m.mttr.count:
            summary += f", MTTR mean {fmt_duration(m.mttr.mean)}"
    if m.availability.percent is not None:
        summary += f", availability {m.availability.percent:.3f}%"
    return f"{title}. {summary}; {m.open_count} open now."


# ---------------------------------------------------------------------------------------------
# Formatting


def _span(m: PeriodMetrics) -> str:
    start = m.period.local_start
    last_day = (m.period.end - timedelta(microseconds=1)).astimezone(start.tzinfo)  # the end is exclusive
    return f"{start:%a %d %b %Y} → {last_day:%a %d %b %Y} ({m.period.timezone})"


def _stats(stats: DurationStats, empty: str) -> str:
    if not stats.count:
        return empty
    return f"{fmt_duration(stats.mean)} / {fmt_duration(stats.median)} / {fmt_duration(stats.p90)} (n={stats.count})"


def _met(target: TargetStats) -> str:
    if not target.decided:
        return "undecided"
    return f"{fmt_share(target.share)} ({target.met}/{target.decided})"


def _trend(current: int, previous: int) -> str:
    trend = fmt_trend(current, previous)
    return "no change" if trend == "-" else trend


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _cut(text: str, limit: int) -> str:
    return mrkdwn.truncate(text, limit)


def _lines_within(lines: list[str], limit: int) -> str:
    """Whole lines up to `limit` characters, saying how many were left out; never a cut-off link."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        room = limit - 40  # for the "…N more lines" note
        if size + len(line) + 1 > room:
            kept.append(f"…{len(lines) - index} more line{_s(len(lines) - index)}")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION_TEXT)}}


def _fields(texts: list[str]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": _cut(text, MAX_FIELD_TEXT)} for text in texts[:MAX_FIELDS]],
    }


def _context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _cut(t, MAX_SECTION_TEXT)} for t in texts[:MAX_CONTEXT_ELEMENTS]],
    }
