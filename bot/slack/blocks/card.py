"""The incident card: the one top-level message that is the incident in Slack."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot import mrkdwn
from bot.ids import Action, Block
from bot.incidents import deadlines
from storage.models import SEVERITIES, Incident, Status

SEVERITY_EMOJI = {
    "P0": ":red_circle:",
    "P1": ":large_orange_circle:",
    "P2": ":large_yellow_circle:",
    "P3": ":white_circle:",
}
STATUS_EMOJI = {
    Status.INVESTIGATING.value: ":mag:",
    Status.MITIGATED.value: ":adhesive_bandage:",
    Status.RESOLVED.value: ":white_check_mark:",
}


def _deadline_line(deadline: datetime, met_at: datetime | None, now: datetime) -> str:
    if met_at is not None:
        if met_at <= deadline:
            return f":white_check_mark: met ({mrkdwn.slack_time(deadline)})"
        return f":warning: missed by {deadlines.format_duration(met_at - deadline)}"
    if now > deadline:
        return (
            f":rotating_light: *lapsed* {deadlines.format_duration(now - deadline)} ago ({mrkdwn.slack_time(deadline)})"
        )
    return (
        f":hourglass_flowing_sand: by {mrkdwn.slack_time(deadline)} ({deadlines.format_duration(deadline - now)} left)"
    )


def card(
    incident: Incident,
    *,
    policy: deadlines.Policy,
    now: datetime,
    runbook: tuple[str, str] | None = None,
    follow_ups: int = 0,
    mttr: timedelta | None = None,
    status_page: bool = False,
    public_id: int | None = None,
    page_running: bool = False,
) -> dict[str, Any]:
    """`text` and `blocks` for chat.postMessage / chat.update. `mttr`: the open time, if reopened.

    `page_running`: a page of the incident runs though it was acknowledged (it was reopened), so
    the card offers Acknowledge again, to stop that page.

    With `status_page`, a button to publish the incident, or, once published (`public_id`), to update it."""
    clock = deadlines.clock_of(incident)
    response_due = deadlines.response_deadline(clock, policy)
    resolution_due = deadlines.resolution_deadline(clock, policy)
    title = mrkdwn.escape(incident.title)
    header = mrkdwn.truncate(f"{incident.id}: {incident.title}", 150)
    fields = [
        f"*Severity*\n{SEVERITY_EMOJI.get(incident.severity, '')} {incident.severity}",
        f"*Status*\n{STATUS_EMOJI.get(incident.status, '')} {incident.status}",
        f"*Commander*\n{mrkdwn.user(incident.commander) if incident.commander else '_unassigned_'}",
        f"*Declared*\n{mrkdwn.slack_time(incident.declared_at)}"
        + (f" by {mrkdwn.user(incident.declared_by)}" if incident.declared_by else f" ({incident.source})"),
        f"*Response target*\n{_deadline_line(response_due, incident.acknowledged_at, now)}",
        f"*Resolution target*\n{_deadline_line(resolution_due, incident.resolved_at, now)}",
    ]
    if incident.affected:
        fields.append(f"*Affected*\n{mrkdwn.truncate(mrkdwn.escape(incident.affected), 500)}")
    if incident.affected_users is not None:
        fields.append(f"*Affected users*\n~{incident.affected_users:,}")
    if incident.category:
        fields.append(f"*Category*\n{incident.category}")
    if incident.resolved_at is not None:
        # A reopened incident's MTTR leaves out the time it sat resolved (DOMAIN.md): the caller knows it.
        open_for = mttr if mttr is not None else incident.resolved_at - incident.started_at
        fields.append(f"*MTTR*\n{deadlines.format_duration(open_for)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]},
    ]
    context = []
    if incident.detection or incident.reported_by:
        # User text escaped; the link and the mention are the bot's own markup.
        detection = mrkdwn.truncate(mrkdwn.escape(incident.detection or "Slack message"), 300)
        if incident.detection_url:
            detection = f"<{incident.detection_url}|{detection}>"
        if incident.reported_by:
            detection += f" (message from {mrkdwn.user(incident.reported_by)})"
        context.append(f"Detected: {detection}")
    if follow_ups:
        context.append(f"{follow_ups} follow-up{'s' if follow_ups != 1 else ''}")
    if runbook:
        context.append(f"Suggested runbook: *{mrkdwn.escape(runbook[0])}*")
    context.append("Reply in this thread to add to the timeline; :pushpin: marks a key event.")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in context[:10]]})
    buttons = _buttons(incident, runbook, status_page, public_id, page_running)
    blocks.append({"type": "actions", "block_id": Block.CARD_ACTIONS, "elements": buttons})
    return {"text": f"{incident.id} [{incident.severity}] {title} ({incident.status})", "blocks": blocks}


def _button(text: str, action: Action, value: str, style: str | None = None, url: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action.value,
        "value": value,
    }
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _buttons(
    incident: Incident, runbook: tuple[str, str] | None, status_page: bool, public_id: int | None, page_running: bool
) -> list[dict[str, Any]]:
    buttons = []
    resolved = incident.status == Status.RESOLVED
    if not resolved and (incident.acknowledged_at is None or page_running):
        buttons.append(_button("Acknowledge", Action.ACKNOWLEDGE, incident.id, "primary"))
    if incident.status == Status.INVESTIGATING:
        buttons.append(_button("Mitigated", Action.MITIGATE, incident.id))
    if not resolved:
        buttons.append(_button("Resolve", Action.RESOLVE, incident.id, "danger"))
    else:
        buttons.append(_button("Reopen", Action.REOPEN, incident.id))
    buttons.append(
        {
            "type": "static_select",
            "action_id": Action.SEVERITY.value,
            "placeholder": {"type": "plain_text", "text": "Change severity"},
            "options": [{"text": {"type": "plain_text", "text": s}, "value": f"{incident.id}|{s}"} for s in SEVERITIES],
            "initial_option": {
                "text": {"type": "plain_text", "text": incident.severity},
                "value": f"{incident.id}|{incident.severity}",
            },
        }
    )
    buttons.append(_button("Add follow-up", Action.FOLLOW_UP, incident.id))
    if status_page and public_id is not None:
        buttons.append(_button("Post status update", Action.STATUS_UPDATE, str(public_id)))
    elif status_page and not resolved:
        buttons.append(_button("Publish to status page", Action.PUBLISH, incident.id))
    if runbook:
        name, url = runbook
        buttons.append(
            _button(mrkdwn.truncate(f"Runbook: {name}", 75), Action.RUNBOOK, f"{incident.id}|{name}"[:2000], url=url)
        )
    return buttons
