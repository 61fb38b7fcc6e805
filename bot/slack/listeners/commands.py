"""`/incident`: declare (modal), help, list, status, oncall (who is on call; `cover` opens a form)."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.ids import COMMAND
from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.incidents.forms import CommandText
from bot.oncall import roster
from bot.slack.blocks import messages, modals, status_modals
from bot.slack.blocks import oncall as oncall_blocks
from bot.slack.context import Runtime
from bot.slack.forms import parse_command_text
from bot.slack.listeners import Stage, after_ack, open_modal
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
        elif parsed.kind == "maintenance":
            open_modal(
                client,
                lambda text: respond(response_type="ephemeral", text=text),
                command.get("trigger_id", ""),
                status_modals.maintenance_modal(rt.settings.status_page_config, utcnow()),
            )
        elif parsed.kind == "list":
            now = utcnow()
            with unit_of_work(rt.sessions) as session:
                answer = messages.open_list(
                    incident_queries.list_open(session, limit=LIST_LIMIT), incident_queries.count_open(session), now
                )
            respond(**answer)
        elif parsed.kind == "oncall":
            now = utcnow()
            with unit_of_work(rt.sessions) as session:
                statuses = roster.roster(rt.settings.oncall, roster.indexes(session, now), now)
            respond(**oncall_blocks.roster_answer(statuses, now))
        elif parsed.kind == "oncall_cover":
            names = sorted(rt.settings.oncall.schedules)
            if not names:
                respond(response_type="ephemeral", text="No on-call schedules are configured (the `oncall:` section).")
                return
            open_modal(
                client,
                lambda text: respond(response_type="ephemeral", text=text),
                command.get("trigger_id", ""),
                oncall_blocks.cover_modal(names),
            )
        elif parsed.kind == "status":
            assert parsed.incident_id is not None
            with unit_of_work(rt.sessions) as session:
                try:
                    incident = incident_queries.get(session, parsed.incident_id)
                except incident_queries.IncidentNotFound as exc:
                    respond(response_type="ephemeral", text=str(exc))
                    return
                reopened = incident.resolved_at is not None and incident.reopened_count
                mttr = incidents.open_time(session, incident) if reopened else None
                answer = messages.status(incident, rt.settings.policy(), utcnow(), mttr)
            respond(**answer)
