"""On-call messages: a page's direct message, the `/incident oncall` answer, the cover form, the handoff DM."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import mrkdwn
from bot.ids import Action, Block


def page_dm(incident: dict[str, Any], *, step: str) -> dict[str, Any]:
    """The page: what is burning, a link to its thread, and the card's own Acknowledge button."""
    title = mrkdwn.escape(incident["title"])
    head = f":rotating_light: *You are paged* ({step}): *{incident['id']}* [{incident['severity']}] {title}"
    lines = [head, f"Status: {incident['status']}"]
    if incident.get("thread_url"):
        lines.append(f"<{incident['thread_url']}|Open the incident thread>")
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
        "action_id": Action.ACKNOWLEDGE.value,
        "value": incident["id"],
        "style": "primary",
    }
    return {
        "text": f"You are paged: {incident['id']} [{incident['severity']}] {title}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.truncate("\n".join(lines), 3000)}},
            {"type": "actions", "block_id": Block.PAGE_ACTIONS.value, "elements": [button]},
        ],
    }


def local(when: datetime, zone: Any) -> str:
    """`Mon 09:00 CET`: a handoff as the schedule's people read it."""
    return when.astimezone(zone).strftime("%a %H:%M %Z")
