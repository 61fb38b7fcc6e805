"""The App Home tab: open incidents with their deadlines, this month's key figures, a declare button."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot import mrkdwn
from bot.ids import Action
from bot.incidents import deadlines
from bot.reports.formatting import fmt_duration
from bot.reports.metrics import CurrentStatus, StatusFigure
from bot.slack.blocks.card import SEVERITY_EMOJI, STATUS_EMOJI
from storage.models import Incident

MAX_VIEW_BLOCKS = 100  # Block Kit's limit for a Home tab view
# Incidents listed one block each; with the fixed blocks around them this stays far below the
# limit, and a list longer than this is a page nobody reads anyway.
INCIDENT_LIMIT = 40


def home_view(
    incidents: Sequence[Incident],
    total_open: int,
    status: CurrentStatus,
    *,
    policy: deadlines.Policy,
    now: datetime,
    dead_letters: Sequence[tuple[str, str]] = (),
    page_dead_letters: Sequence[tuple[str, str]] = (),
    oncall: Sequence[str] = (),
) -> dict[str, Any]:
    """The Home view for views.publish. `incidents` are the most urgent first; `total_open` counts all.

    `dead_letters`: (incident id, Slack's reason) of the viewer's incidents whose Slack calls were
    set aside, so the commander learns that part of the story never reached Slack.
    `page_dead_letters`: (incident id, reason) of their page notices (e-mail, webhook) set aside,
    so the commander knows someone was not reached that way.
    `oncall`: lines saying whether the viewer is on call and who is on call now (blocks/oncall.py).
    """
    shown = list(incidents[:INCIDENT_LIMIT])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Incidents", "emoji": True}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Declare an incident", "emoji": True},
                    "action_id": Action.HOME_DECLARE.value,
                    "style": "primary",
                }
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*This month's key figures*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _figure(f)} for f in status.figures]},
        _context(
            "Incidents this month: since the 1st. MTTR, P0, P1 and repeats: incidents declared in the last "
            f"30 days; MTTR over resolved ones. Updated {mrkdwn.slack_time(now)}."
        ),
        {"type": "divider"},
    ]
    if oncall:
        text = mrkdwn.truncate("*On call*\n" + "\n".join(oncall), 2900)
        blocks[-1:-1] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    # Each goes in at the top, so the page notices end up above the Slack calls.
    warnings = (
        (dead_letters, "Slack message(s) of your incidents were refused by Slack* and set aside",
         "incident-bot outbox retry"),
        (page_dead_letters, "page notice(s) of your incidents could not be delivered* and were set aside",
         "incident-bot outbox retry page-N"),
    )
    for letters, what, retry in warnings:
        if letters:
            blocks[1:1] = [_dead_letter_warning(letters, what, retry)]
    if not total_open:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Open incidents*\nNone :tada:"}})
    else:
        heading = f"*Open incidents* ({total_open})"
        if total_open > len(shown):
            heading += f", the {len(shown)} most urgent first"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": heading}})
        blocks += [_incident(incident, policy, now) for incident in shown]
        if total_open > len(shown):
            more = total_open - len(shown)
            blocks.append(
                _context(f"…and {more} more open incident{'s' if more != 1 else ''}: `/incident list` shows them.")
            )
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def _figure(figure: StatusFigure) -> str:
    if figure.current is None:
        current = "no data yet"
    elif figure.name.startswith("MTTR"):
        current = fmt_duration(float(figure.current))
    else:
        current = str(figure.current)
    return f"*{figure.name}*\n{current} (target {figure.target})\n{figure.mark}"


def _incident(incident: Incident, policy: deadlines.Policy, now: datetime) -> dict[str, Any]:
    clock = deadlines.clock_of(incident)
    linked = incident.channel_id and incident.card_ts
    if incident.channel_id and incident.card_ts:  # `linked`, spelt out so that mypy narrows both
        name = f"<{mrkdwn.thread_link(incident.channel_id, incident.card_ts)}|{incident.id}>"
    else:
        name = incident.id
    title = mrkdwn.escape(mrkdwn.truncate(incident.title, 150))
    commander = mrkdwn.user(incident.commander) if incident.commander else "_no commander_"
    response = (
        "acknowledged :white_check_mark:"
        if incident.acknowledged_at is not None
        else _left(deadlines.response_deadline(clock, policy), now)
    )
    lines = [
        f"{SEVERITY_EMOJI.get(incident.severity, '')} *{incident.severity}* {name}: {title}",
        f"{STATUS_EMOJI.get(incident.status, '')} {incident.status} · open "
        f"{deadlines.format_duration(now - incident.declared_at)} · {commander}",
        f"Response: {response} · Resolution: {_left(deadlines.resolution_deadline(clock, policy), now)}",
    ]
    block: dict[str, Any] = {
        "type": "section",
        "block_id": f"home_incident_{incident.id}",
        "text": {"type": "mrkdwn", "text": mrkdwn.truncate("\n".join(lines), 3000)},
    }
    if linked:
        assert incident.channel_id and incident.card_ts
        block["accessory"] = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open", "emoji": True},
            "action_id": Action.OPEN_CARD.value,
            "value": incident.id,
            "url": mrkdwn.thread_link(incident.channel_id, incident.card_ts),
        }
    return block


def _left(deadline: datetime, now: datetime) -> str:
    if now >= deadline:
        return f":rotating_light: lapsed {deadlines.format_duration(now - deadline)} ago"
    return f":hourglass_flowing_sand: {deadlines.format_duration(deadline - now)} left ({mrkdwn.slack_time(deadline)})"


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _dead_letter_warning(letters: Sequence[tuple[str, str]], what: str, retry: str) -> dict[str, Any]:
    """One warning section: how many were set aside, the first ten with their reasons, how to resend."""
    lines = "\n".join(f"• {incident_id}: {mrkdwn.escape(reason)}" for incident_id, reason in letters[:10])
    text = f":warning: *{len(letters)} {what} (an operator can resend them with `{retry}`):\n{lines}"
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.truncate(text, 2900)}}
