"""The card's status page buttons: **Publish to status page** and **Post status update** open their forms."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.ids import Action
from bot.incidents import queries as incident_queries
from bot.slack.blocks import status_modals
from bot.slack.context import Runtime
from bot.slack.listeners import Stage, after_ack, open_modal, tell
from bot.statuspage.model import PublicStatus
from storage.db import unit_of_work
from storage.statuspage import PublicIncident

log = logging.getLogger(__name__)


def _value(body: dict[str, Any]) -> str:
    return str(((body.get("actions") or [{}])[0]).get("value", ""))


def register(app: App, rt: Runtime, stage: Stage) -> None:
    config = rt.settings.status_page_config

    @after_ack(app.action(Action.PUBLISH.value), stage)
    def publish(body: dict[str, Any], client: WebClient) -> None:
        try:
            with unit_of_work(rt.sessions) as session:
                view = status_modals.publish_modal(incident_queries.get(session, _value(body)), config)
        except incident_queries.IncidentError as exc:
            tell(client, body, str(exc))
            return
        open_modal(client, lambda text: tell(client, body, text), body.get("trigger_id", ""), view)

    @after_ack(app.action(Action.STATUS_UPDATE.value), stage)
    def status_update(body: dict[str, Any], client: WebClient) -> None:
        with unit_of_work(rt.sessions) as session:
            public = session.get(PublicIncident, int(_value(body))) if _value(body).isdigit() else None
            if public is None or public.resolved_at is not None:
                tell(client, body, "That status page incident is resolved; publish the incident again if needed.")
                return
            status = public.status if public.status != PublicStatus.INVESTIGATING else PublicStatus.IDENTIFIED.value
            view = status_modals.status_update_modal(public.id or 0, title=public.title, status=status)
        open_modal(client, lambda text: tell(client, body, text), body.get("trigger_id", ""), view)
