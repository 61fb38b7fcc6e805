"""Buttons and menus on the incident card (and the App Home's declare button)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlmodel import Session

from bot.ids import Action, Callback
from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.mrkdwn import thread_link
from bot.slack.blocks import messages, modals, status_modals
from bot.slack.context import Runtime
from bot.slack.listeners import Stage, after_ack, open_modal, tell
from bot.slack.people import remember_payload_profile
from bot.statuspage import service as statuspage
from storage.db import unit_of_work
from storage.models import utcnow

log = logging.getLogger(__name__)


def _action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    return actions[0]


def _value(body: dict[str, Any]) -> str:
    action = _action(body)
    if action.get("selected_option"):
        return str(action["selected_option"].get("value", ""))
    return str(action.get("value", ""))


def register(app: App, rt: Runtime, stage: Stage) -> None:
    policy = rt.settings.policy

    def change(client: WebClient, body: dict[str, Any], work: Callable[[Session], object]) -> None:
        """Run one change after the ack; a refusal or outage is told to the clicking user only."""
        try:
            with unit_of_work(rt.sessions) as session:
                work(session)
        except incident_queries.IncidentError as exc:
            tell(client, body, str(exc))
            return
        except sa.exc.SQLAlchemyError:
            log.exception("could not apply %s", _action(body).get("action_id"))
            tell(client, body, messages.failed("save that change"))
            return
        rt.deliverer.kick()

    @after_ack(app.action(Action.ACKNOWLEDGE.value), stage)
    def acknowledge(body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        change(client, body, lambda s: incidents.acknowledge(s, _value(body), user=user, policy=policy(), now=utcnow()))

    @after_ack(app.action(Action.MITIGATE.value), stage)
    def mitigate(body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        change(client, body, lambda s: incidents.mitigate(s, _value(body), user=user, policy=policy(), now=utcnow()))

    @after_ack(app.action(Action.REOPEN.value), stage)
    def reopen(body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        change(client, body, lambda s: incidents.reopen(s, _value(body), user=user, policy=policy(), now=utcnow()))

    @after_ack(app.action(Action.SEVERITY.value), stage)
    def severity(body: dict[str, Any], client: WebClient) -> None:
        incident_id, _, level = _value(body).partition("|")
        user = body["user"]["id"]
        change(
            client,
            body,
            lambda s: incidents.change_severity(s, incident_id, level, user=user, policy=policy(), now=utcnow()),
        )

    @after_ack(app.action(Action.RESOLVE.value), stage)
    def resolve(body: dict[str, Any], client: WebClient) -> None:
        try:
            with unit_of_work(rt.sessions) as session:
                incident = incident_queries.get(session, _value(body))
                view = modals.resolve_modal(incident)
                if rt.settings.status_page and statuspage.open_for_incident(incident.id, session=session):
                    view["blocks"].append(status_modals.final_update_block())  # prefilled, editable
        except incident_queries.IncidentError as exc:
            tell(client, body, str(exc))
            return
        open_modal(client, lambda text: tell(client, body, text), body.get("trigger_id", ""), view)

    @after_ack(app.action(Action.FOLLOW_UP.value), stage)
    def follow_up(body: dict[str, Any], client: WebClient) -> None:
        open_modal(
            client,
            lambda text: tell(client, body, text),
            body.get("trigger_id", ""),
            modals.follow_up_modal(_value(body)),
        )

    @after_ack(app.action(Action.RUNBOOK.value), stage)
    def runbook(body: dict[str, Any], client: WebClient) -> None:
        # A link button: Slack opens the URL itself; this only counts the use.
        incident_id, _, name = _value(body).partition("|")
        user = body["user"]["id"]
        change(client, body, lambda s: incidents.record_runbook_use(s, incident_id, name, user=user, now=utcnow()))

    @after_ack(app.action(Action.HOME_DECLARE.value), stage)
    def home_declare(body: dict[str, Any], client: WebClient) -> None:
        open_modal(client, lambda text: tell(client, body, text), body.get("trigger_id", ""), modals.declare_modal())

    @app.action(Action.OPEN_CARD.value)
    def open_card(ack: Ack) -> None:
        ack()  # a link button on the Home tab; Slack opens the link

    @after_ack(app.shortcut(Callback.DECLARE_SHORTCUT.value), stage)
    def declare_from_message(shortcut: dict[str, Any], client: WebClient) -> None:
        message = shortcut.get("message") or {}
        channel = (shortcut.get("channel") or {}).get("id", "")
        text = " ".join(str(message.get("text") or "").split())
        author = message.get("user")
        permalink = thread_link(channel, str(message["ts"])) if channel and message.get("ts") else None
        # The form's text is the user's to edit, and is stored and shown escaped as user text; the
        # author goes in the metadata, so the card can mention them in its own markup.
        source = {"permalink": permalink} if permalink else {}
        if isinstance(author, str):
            source["author"] = author
        view = modals.declare_modal(title=text[:150] or None, detection="Slack message", source=source)
        open_modal(client, lambda text: tell(client, shortcut, text), shortcut.get("trigger_id", ""), view)
        if message.get("user_profile"):
            with unit_of_work(rt.sessions) as session:
                remember_payload_profile(session, author, message["user_profile"])
