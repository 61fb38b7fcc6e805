"""`/incident`: declare (modal), help, list, status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import incidents
from bot.blocks import messages, modals
from bot.forms import CommandText, parse_command_text
from bot.ids import COMMAND
from bot.listeners import Stage, after_ack
from bot.runtime import Runtime
from storage.db import unit_of_work
from storage.models import utcnow

log = logging.getLogger(__name__)
LIST_LIMIT = 30


def acknowledge_command(ack: Ack, command: dict[str, Any]) -> None:
    """Help and usage mistakes are answered in the ack itself; everything else after it."""
    parsed = parse_command_text(command.get("text"))
    if parsed.kind == "help":
        ack(messages.usage())
    elif parsed.kind == "usage":
        ack(messages.usage(parsed.problem))
    else:
        ack()


def register(app: App, rt: Runtime, stage: Stage) -> None:
    @after_ack(app.command(COMMAND), stage, ack=acknowledge_command)
    def incident_command(command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        parsed = parse_command_text(command.get("text"))
        if parsed.kind in ("help", "usage"):
            return  # answered in the ack
        try:
            answer_later(parsed, command, client, respond)
        except sa.exc.SQLAlchemyError:
            log.exception("/incident %s failed", parsed.kind)
            respond(response_type="ephemeral", text=messages.failed(f"run `{COMMAND} {parsed.kind}`"))

    def answer_later(parsed: CommandText, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        if parsed.kind == "declare":
            open_modal(
                client,
                lambda text: respond(response_type="ephemeral", text=text),
                command.get("trigger_id", ""),
                modals.declare_modal(title=parsed.title),
            )
        elif parsed.kind == "list":
            now = utcnow()
            with unit_of_work(rt.sessions) as session:
                answer = messages.open_list(
                    incidents.list_open(session, limit=LIST_LIMIT), incidents.count_open(session), now
                )
            respond(**answer)
        elif parsed.kind == "status":
            assert parsed.incident_id is not None
            with unit_of_work(rt.sessions) as session:
                try:
                    incident = incidents.get(session, parsed.incident_id)
                except incidents.IncidentNotFound as exc:
                    respond(response_type="ephemeral", text=str(exc))
                    return
                reopened = incident.resolved_at is not None and incident.reopened_count
                mttr = incidents.open_time(session, incident) if reopened else None
                answer = messages.status(incident, rt.settings.policy(), utcnow(), mttr)
            respond(**answer)


def open_modal(client: WebClient, tell: Callable[[str], None], trigger_id: str, view: dict[str, Any]) -> None:
    """Open a modal; if Slack refuses, log its error code and tell the user (`tell`) what to do."""
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        code = exc.response.get("error") if exc.response is not None else None
        # expired_trigger_id: trigger_ids last 3 s, so a slow Slack or a long queue means asking again.
        log.warning("views.open refused: %s", code or "unknown error")
        tell(messages.form_not_opened(f"Slack answered `{code or 'error'}`"))
    except (SlackClientError, OSError) as exc:
        log.warning("views.open failed: %s", type(exc).__name__)
        tell(messages.form_not_opened("Slack did not answer"))
