"""The card's status page buttons: **Publish to status page** and **Post status update** open their forms."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.ids import Action
from bot.incidents import queries as incident_queries
from bot.slack.blocks import status_modals
from bot.slack.context import Runtime
from bot.slack.listeners import Stage, after_ack, open_modal
from bot.statuspage.model import PublicStatus
from storage.db import unit_of_work
from storage.statuspage import PublicIncident

log = logging.getLogger(__name__)


def _value(body: dict[str, Any]) -> str:
    return str(((body.get("actions") or [{}])[0]).get("value", ""))


def _tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    user = body["user"]["id"]
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            client.chat_postMessage(channel=user, text=text)
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("could not tell %s: %s", user, type(exc).__name__)


def register(app: App, rt: Runtime, stage: Stage) -> None:
    config = rt.settings.status_page_config

    @after_ack(app.action(Action.PUBLISH.value), stage)
    def publish(body: dict[str, Any], client: WebClient) -> None:
        try:
            with unit_of_work(rt.sessions) as session:
                view = status_modals.publish_modal(incident_queries.get(session, _value(body)), config)
        except incident_queries.IncidentError as exc:
            _tell(client, body, str(exc))
            return
        open_modal(client, lambda text: _tell(client, body, text), body.get("trigger_id", ""), view)

    @after_ack(app.action(Action.STATUS_UPDATE.value), stage)
    def status_update(body: dict[str, Any], client: WebClient) -> None:
        with unit_of_work(rt.sessions) as session:
            public = session.get(PublicIncident, int(_value(body))) if _value(body).isdigit() else None
            if public is None or public.resolved_at is not None:
                _tell(client, body, "That status page incident is resolved; publish the incident again if needed.")
                return
            status = public.status if public.status != PublicStatus.INVESTIGATING else PublicStatus.IDENTIFIED.value
            view = status_modals.status_update_modal(public.id or 0, title=public.title, status=status)
        open_modal(client, lambda text: _tell(client, body, text), body.get("trigger_id", ""), view)
