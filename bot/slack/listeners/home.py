"""App Home: draw the Home tab whenever someone opens it (after the event is acked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.incidents import outbox
from bot.incidents import queries as incident_queries
from bot.oncall import dead_letters, roster
from bot.reports import metrics
from bot.slack.blocks import home
from bot.slack.blocks import oncall as oncall_blocks
from bot.slack.context import Runtime
from bot.slack.listeners import Stage, after_ack
from storage.db import unit_of_work
from storage.models import utcnow


def register(app: App, rt: Runtime, stage: Stage) -> None:
    @after_ack(app.event("app_home_opened"), stage)
    def on_home_opened(event: dict[str, Any], client: WebClient) -> None:
        # The same event arrives for the Messages tab; only the Home tab is ours to draw.
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str):
            return
        client.views_publish(user_id=user, view=home_view(rt, utcnow(), user))


def home_view(rt: Runtime, now: datetime, user: str | None = None) -> dict[str, Any]:
    with unit_of_work(rt.sessions) as session:
        open_incidents = incident_queries.list_open(session, limit=home.INCIDENT_LIMIT)
        total = incident_queries.count_open(session)
        status = metrics.current_status(session, settings=rt.settings, now=now)
        letters = outbox.dead_letters_of_commander(session, user) if user else []
        page_letters = dead_letters.dead_notices_of_commander(session, user) if user else []
        config = rt.settings.oncall
        statuses = roster.roster(config, roster.indexes(session, now), now, shown=1) if config.schedules else []
    return home.home_view(open_incidents, total, status, policy=rt.settings.policy(), now=now, dead_letters=letters,
                          page_dead_letters=page_letters, oncall=oncall_blocks.home_lines(statuses, user))
