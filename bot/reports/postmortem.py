"""One incident as Markdown in the tracker's incident template: the postmortem, and the tracker log's entries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.reports import metrics
from bot.reports.formatting import bullets, fmt_money, fmt_when, markdown_text, with_names
from storage.models import (
    FollowUp,
    Incident,
    TimelineEntry,
    table_of,
)

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


def render_postmortem(session: Session, incident_id: str) -> str | None:
    """One incident in the tracker's template; None when there is no such incident."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    entries = timelines_by_incident(session, [incident.id]).get(incident.id, [])
    follow_ups = follow_ups_by_incident(session, [incident.id]).get(incident.id, [])
    gap = metrics.resolved_gaps(session, [incident.id]).get(incident.id, timedelta())
    return with_names(session, "\n".join(incident_entry(incident, entries, follow_ups, resolved_gap=gap)) + "\n")


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
        *bullets(incident.detection, "(not recorded)"),
    ]
    if incident.alert_name:
        lines.append(f"- Alert: `{incident.alert_name}`")
    if incident.detection_url:
        lines.append(f"- Source: {incident.detection_url}")
    if incident.reported_by:
        lines.append(f"- Declared from a Slack message by <@{incident.reported_by}>")
    if incident.started_at < incident.declared_at:
        lines.append(f"- Impact began {fmt_when(incident.started_at)}, before it was declared")
    lines += ["", "**Impact:**", *bullets(incident.impact, "(not recorded)")]
    if incident.affected:
        lines.append(f"- Affected service: {markdown_text(incident.affected)}")
    revenue = incident.revenue_impact
    lines.append(f"- Revenue impact: {fmt_money(revenue)}" if revenue else "- Revenue impact: none recorded")
    lines += ["", "**Root Cause:**", *bullets(incident.root_cause, "(under investigation)")]
    if incident.category or incident.root_cause_class:
        labels = " / ".join(x for x in (incident.category, incident.root_cause_class) if x)
        lines.append(f"- Classified as: {labels}")
    lines += ["", "**Resolution:**", *bullets(incident.resolution, "(pending)")]
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


def timelines_by_incident(session: Session, incident_ids: Sequence[str]) -> dict[str, list[Any]]:
    if not incident_ids:
        return {}
    t = table_of(TimelineEntry).c
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


def follow_ups_by_incident(session: Session, incident_ids: Sequence[str]) -> dict[str, list[FollowUp]]:
    if not incident_ids:
        return {}
    statement = select(FollowUp).where(col(FollowUp.incident_id).in_(incident_ids)).order_by(col(FollowUp.id))
    found: dict[str, list[FollowUp]] = {}
    for follow_up in session.exec(statement):
        found.setdefault(follow_up.incident_id, []).append(follow_up)
    return found
