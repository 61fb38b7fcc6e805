"""Slack message events (new, edited, deleted, from the Events API or conversations.replies) as timeline changes."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeGuard

from bot.incidents import timeline
from bot.incidents.forms import clean

log = logging.getLogger(__name__)
KEY_EVENT_REACTION = timeline.KEY_EVENT_REACTION
# Message subtypes that are a person saying something in the thread.
HUMAN_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
SLACK_TS = re.compile(r"^\d{1,11}\.\d{1,9}$")  # seconds.micros, e.g. 1764168000.000100


def _files(message: dict[str, Any]) -> list[dict[str, str]]:
    files = []
    items = message.get("files")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            files.append(
                {
                    "name": str(item.get("name") or item.get("title") or "file"),
                    "permalink": str(item.get("permalink") or item.get("url_private") or ""),
                }
            )
    return files


def _is_ts(value: Any) -> TypeGuard[str]:
    # The timeline takes an entry's time from its ts and orders edits by it, so it must be one.
    return isinstance(value, str) and SLACK_TS.match(value) is not None


def to_change(event: dict[str, Any]) -> tuple[timeline.Change, timeline.ThreadMessage] | None:
    """The timeline change a `message` event means, or None when it is not a human thread reply."""
    subtype = event.get("subtype")
    channel = event.get("channel")
    if not isinstance(channel, str):
        return None
    if subtype == "message_changed":
        message, change = event.get("message") or {}, timeline.Change.EDITED
    elif subtype == "message_deleted":
        message, change = event.get("previous_message") or {}, timeline.Change.DELETED
        if not isinstance(message, dict):
            return None
        message = {**message, "ts": event.get("deleted_ts") or message.get("ts")}
    elif (subtype is None or isinstance(subtype, str)) and subtype in HUMAN_SUBTYPES:
        message, change = event, timeline.Change.POSTED
    else:
        return None
    if not isinstance(message, dict):
        return None
    ts, thread_ts = message.get("ts"), message.get("thread_ts")
    # A reply has a thread_ts other than its own ts; the card itself (and its edits) has neither.
    if not _is_ts(ts) or not _is_ts(thread_ts) or ts == thread_ts:
        return None
    if message.get("bot_id") or message.get("subtype") == "bot_message":
        return None
    edited = message.get("edited") or {}
    return change, timeline.ThreadMessage(
        channel_id=channel,
        thread_ts=thread_ts,
        ts=ts,
        user=message.get("user") if isinstance(message.get("user"), str) else None,
        text=clean(str(message.get("text") or "")),
        files=_files(message),
        edited_ts=edited.get("ts") if isinstance(edited, dict) and _is_ts(edited.get("ts")) else None,
    )
