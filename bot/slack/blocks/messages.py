"""Ephemeral answers to `/incident help|list|status` and the texts users see when something fails."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot import mrkdwn
from bot.ids import COMMAND
from bot.incidents import deadlines
from storage.models import Incident

USAGE = (
    f"*Usage*\n"
    f"• `{COMMAND}`: declare an incident (opens a form)\n"
    f"• `{COMMAND} <title>`: the same form, with the title filled in\n"
    f"• `{COMMAND} list`: the open incidents\n"
    f"• `{COMMAND} status INC-YYYY-MM-DD-NNN`: one incident's state\n"
    f"• `{COMMAND} maintenance`: schedule a maintenance window on the status page\n"
    f"• `{COMMAND} oncall`: who is on call now and next; `{COMMAND} oncall cover`: cover a shift\n"
    f"• `{COMMAND} help`: this text\n"
    "Reply in an incident's thread to add to its timeline."
)


def usage(problem: str | None = None) -> dict[str, Any]:
    text = f"{problem}\n\n{USAGE}" if problem else USAGE
    return {"response_type": "ephemeral", "text": text}


def _line(incident: Incident, now: datetime) -> str:
    age = deadlines.format_duration(now - incident.declared_at)
    link = (
        f"<{mrkdwn.thread_link(incident.channel_id, incident.card_ts)}|{incident.id}>"
        if incident.channel_id and incident.card_ts
        else incident.id
    )
    commander = mrkdwn.user(incident.commander) if incident.commander else "no commander"
    title = mrkdwn.escape(mrkdwn.truncate(incident.title, 80))
    return f"• {link} [{incident.severity}] {title}: {incident.status}, {age} old, {commander}"


def open_list(incidents: list[Incident], total: int, now: datetime) -> dict[str, Any]:
    if not incidents:
        return {"response_type": "ephemeral", "text": "No open incidents. :tada:"}
    lines = [_line(i, now) for i in incidents]
    if total > len(incidents):
        lines.append(f"…and {total - len(incidents)} more.")
    text = f"*{total} open incident{'s' if total != 1 else ''}*\n" + "\n".join(lines)
    return {"response_type": "ephemeral", "text": mrkdwn.truncate(text, 3900)}


def status(
    incident: Incident, policy: deadlines.Policy, now: datetime, mttr: timedelta | None = None
) -> dict[str, Any]:
    clock = deadlines.clock_of(incident)
    lines = [
        f"*{incident.id}: {mrkdwn.escape(incident.title)}*",
        f"Severity {incident.severity} · {incident.status} · commander "
        + (mrkdwn.user(incident.commander) if incident.commander else "unassigned"),
        f"Declared {mrkdwn.slack_time(incident.declared_at)}",
        "Acknowledged "
        + (
            mrkdwn.slack_time(incident.acknowledged_at)
            if incident.acknowledged_at
            else f"not yet (target {mrkdwn.slack_time(deadlines.response_deadline(clock, policy))})"
        ),
    ]
    if incident.resolved_at:
        lines.append(
            f"Resolved {mrkdwn.slack_time(incident.resolved_at)}, MTTR "
            f"{deadlines.format_duration(mttr if mttr is not None else incident.resolved_at - incident.started_at)}"
        )
    else:
        lines.append(f"Resolution target {mrkdwn.slack_time(deadlines.resolution_deadline(clock, policy))}")
    if incident.channel_id and incident.card_ts:
        lines.append(f"<{mrkdwn.thread_link(incident.channel_id, incident.card_ts)}|Open the incident thread>")
    return {"response_type": "ephemeral", "text": "\n".join(lines)}


def card_failed(incident_id: str) -> str:
    return (
        f":warning: {incident_id} is saved, but Slack would not take its card just now. "
        "I'll keep trying and post it as soon as Slack answers; nothing is lost."
    )


def saved_but(problem: str) -> str:
    return f":warning: {problem}"


def failed(action: str) -> str:
    return f":x: Could not {action} just now because of a problem on our side. Please try again."


def form_not_opened(reason: str) -> str:
    """Told to whoever asked for a modal that Slack would not open (the reason has no secrets)."""
    return f":x: Could not open the form: {reason}. Please try again."
