"""On-call messages: a page's direct message, the `/incident oncall` answer, the cover form, the handoff DM."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import mrkdwn
from bot.ids import COMMAND, INPUT, Action, Block, Callback
from bot.oncall.roster import ScheduleNow


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


def handoff_dm(schedule: str, until: datetime | None, zone: ZoneInfo) -> dict[str, Any]:
    """The incoming person's DM at a handoff."""
    text = f":pager: You are on call for *{schedule}*" + (f" until {local(until, zone)}." if until else ".")
    return {"text": text.replace("*", ""), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def home_lines(statuses: list[ScheduleNow], user: str | None) -> list[str]:
    """App Home: "you are on call until …" for the viewer, then who is on call now per schedule."""
    lines: list[str] = []
    for s in statuses:
        if user is not None and s.on_call == user:
            until = f" until {local(s.until, ZoneInfo(s.timezone))}" if s.until else ""
            lines.append(f":pager: *You are on call* for *{s.name}*{until}.")
    lines += [f"*{s.name}*: {_who(s.on_call)}{' (covering)' if s.covering else ''}" for s in statuses]
    return lines


def local(when: datetime, zone: Any) -> str:
    """`Mon 09:00 CET`: a handoff as the schedule's people read it."""
    return when.astimezone(zone).strftime("%a %H:%M %Z")


def _who(user: str | None) -> str:
    return mrkdwn.user(user) if user else "_nobody (the rotation has not started)_"


def roster_answer(statuses: list[ScheduleNow], now: datetime) -> dict[str, Any]:
    """`/incident oncall` (ephemeral): per schedule, who is on call now and next, and the coming handoffs."""
    if not statuses:
        return {"response_type": "ephemeral", "text": "No on-call schedules are configured (the `oncall:` section)."}
    lines: list[str] = []
    for s in statuses:
        zone = ZoneInfo(s.timezone)
        covering = " (covering)" if s.covering else ""
        until = f" until {local(s.until, zone)}" if s.until else ""
        lines.append(f"*{s.name}*: {_who(s.on_call)}{covering}{until}")
        if s.handoffs:
            lines.append(f"  next: {mrkdwn.user(s.handoffs[0].user_id)}")
            lines.append("  handoffs: " + ", ".join(f"{local(h.at, zone)} → {mrkdwn.user(h.user_id)}"
                                                    for h in s.handoffs))
    lines.append(f"Cover a shift: `{COMMAND} oncall cover`.")
    return {"response_type": "ephemeral", "text": mrkdwn.truncate("\n".join(lines), 3000)}


def cover_modal(schedules: list[str]) -> dict[str, Any]:
    """The form to cover a shift: schedule, who, from, until."""

    def block(block_id: Block, label: str, element: dict[str, Any]) -> dict[str, Any]:
        return {"type": "input", "block_id": block_id.value, "label": _plain(label),
                "element": {**element, "action_id": block_id.value + INPUT}}

    options = [{"text": _plain(name), "value": name} for name in schedules[:100]]
    select: dict[str, Any] = {"type": "static_select", "options": options}
    if len(options) == 1:
        select["initial_option"] = options[0]
    return {
        "type": "modal",
        "callback_id": Callback.ONCALL_COVER.value,
        "title": _plain("Cover a shift"),
        "submit": _plain("Cover"),
        "close": _plain("Cancel"),
        "blocks": [
            block(Block.COVER_SCHEDULE, "Schedule", select),
            block(Block.COVER_USER, "Who is on call instead", {"type": "users_select"}),
            block(Block.COVER_FROM, "From", {"type": "datetimepicker"}),
            block(Block.COVER_UNTIL, "Until", {"type": "datetimepicker"}),
        ],
    }


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
