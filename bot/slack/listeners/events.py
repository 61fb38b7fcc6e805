"""Events API: thread replies become the timeline; edits, deletions and :pushpin: reactions too."""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_bolt import App

from bot.incidents import timeline
from bot.slack.context import Runtime
from bot.slack.listeners import Stage, after_ack
from bot.slack.message_events import KEY_EVENT_REACTION, to_change
from bot.slack.people import remember_payload_profile
from storage.db import unit_of_work
from storage.models import utcnow

log = logging.getLogger(__name__)
# Timeline writes in progress at once. A busy thread sends replies faster than one process can
# store them; past a few, more writers only compete for the GIL with the requests being acked
# (and on PostgreSQL for the incident's row), while the store rate stays the same.
TIMELINE_WRITERS = 4


def register(app: App, rt: Runtime, stage: Stage) -> None:
    writers = threading.BoundedSemaphore(TIMELINE_WRITERS)

    @after_ack(app.event("message"), stage, limit=writers)
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        found = to_change(event)
        if found is None:
            return
        change, message = found
        with unit_of_work(rt.sessions) as session:
            stored = timeline.ingest(
                session, change, message, event_id=body.get("event_id"), policy=rt.settings.policy(), now=utcnow()
            )
            if stored and change is not timeline.Change.DELETED:
                # The name Markdown outputs print for this author, when Slack sent one along.
                profile = event.get("user_profile") or (event.get("message") or {}).get("user_profile")
                remember_payload_profile(session, message.user, profile)

    def pin(event: dict[str, Any], key_event: bool) -> None:
        item = event.get("item") or {}
        if event.get("reaction") != KEY_EVENT_REACTION or item.get("type") != "message":
            return
        with unit_of_work(rt.sessions) as session:
            timeline.set_key_event(
                session,
                channel_id=item.get("channel", ""),
                ts=item.get("ts", ""),
                key_event=key_event,
                now=utcnow(),
            )

    @after_ack(app.event("reaction_added"), stage, limit=writers)
    def on_reaction_added(event: dict[str, Any]) -> None:
        pin(event, True)

    @after_ack(app.event("reaction_removed"), stage, limit=writers)
    def on_reaction_removed(event: dict[str, Any]) -> None:
        pin(event, False)
