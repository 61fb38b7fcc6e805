"""The Slack call for each kind of outbox row: cards, card updates, thread replies, channel posts."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import Session

from bot import mrkdwn
from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.oncall import service as oncall
from bot.settings import Settings
from bot.slack.blocks import card as card_blocks
from bot.slack.sends import Posted, Send, describe, mark_escalation, outbox_metadata
from bot.statuspage import service as statuspage
from storage.models import Incident, Outbox, utcnow

log = logging.getLogger(__name__)


class OutboxKinds:
    """The per-kind handlers of the Deliverer (a mixin: they read its settings, client and joined channels)."""

    settings: Settings
    client: WebClient
    _joined: set[str]

    def render_card(self, session: Session, incident: Incident, now: datetime) -> dict[str, Any]:
        public = statuspage.open_for_incident(incident.id, session=session) if self.settings.status_page else None
        return card_blocks.card(
            incident,
            policy=self.settings.policy(),
            now=now,
            runbook=self.runbook_for(incident),
            follow_ups=incident_queries.count_follow_ups(session, incident.id),
            mttr=incidents.open_time(session, incident) if incident.resolved_at and incident.reopened_count else None,
            status_page=self.settings.status_page,
            public_id=public.id if public is not None else None,
            # A reopened incident keeps its first acknowledgement; its new page still needs one.
            page_running=incident.acknowledged_at is not None
            and incident.resolved_at is None
            and oncall.active_page(session=session, incident_id=incident.id) is not None,
        )

    def runbook_for(self, incident: Incident) -> tuple[str, str] | None:
        if incident.runbook and "://" in incident.runbook:
            return ("Alert runbook", incident.runbook)
        name = incident.runbook if incident.runbook in self.settings.runbooks else None
        name = name or self.settings.matching_runbook(incident.severity, incident.category)
        return (name, self.settings.runbook_url(name)) if name else None

    def _card_post(self, session: Session, row: Outbox) -> Send | None:
        incident = incident_queries.get(session, row.incident_id or "")
        if incident.card_ts:
            return None  # posted already (by a replica that crashed before marking the row)
        message = self.render_card(session, incident, utcnow())
        incident_id, channel, tag = incident.id, self.settings.incident_channel, outbox_metadata(row)

        def after(session: Session, response: Any) -> None:
            incidents.card_posted(session, incident_id, channel_id=response["channel"], ts=response["ts"])

        # The card's ts is on record before the bot joins the channel: replies in its thread, whose
        # events may come as soon as the bot is a member, find their incident.
        return Send(
            lambda client: client.chat_postMessage(channel=channel, metadata=tag, **message),
            after,
            Posted(channel, None, row.created_at),
            lambda response: self._join(self.client, response["channel"]),
        )

    def _join(self, client: WebClient, channel_id: str) -> None:
        """Be a member of the incident channel, or Slack sends no events for its threads.

        chat:write.public lets the bot post there uninvited, which would hide the problem until
        someone noticed an empty timeline. Joining is idempotent; a private channel needs an /invite.
        """
        if channel_id in self._joined:
            return
        try:
            client.conversations_join(channel=channel_id)
            self._joined.add(channel_id)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning(
                "could not join %s (%s): invite the bot there so it can record the timeline",
                channel_id,
                describe(exc),
            )

    def _card_update(self, session: Session, row: Outbox) -> Send:
        incident = incident_queries.get(session, row.incident_id or "")
        message = self.render_card(session, incident, utcnow())
        channel, ts = incident.channel_id, incident.card_ts
        if channel is None or ts is None:  # never claimed before the card is posted (Deliverer._candidates)
            raise LookupError(f"{incident.id} has no card to update")
        # An update is idempotent: sent twice, the card shows the same thing.
        return Send(lambda client: client.chat_update(channel=channel, ts=ts, **message))

    def _thread_reply(self, session: Session, row: Outbox) -> Send:
        incident = incident_queries.get(session, row.incident_id or "")
        extra = {"blocks": row.payload["blocks"]} if row.payload.get("blocks") else {}
        channel, ts, text, tag = incident.channel_id or "", incident.card_ts, row.payload["text"], outbox_metadata(row)
        escalation_id = row.payload.get("escalation_id")
        return Send(
            lambda client: client.chat_postMessage(channel=channel, thread_ts=ts, text=text, metadata=tag, **extra),
            (lambda session, _: mark_escalation(session, escalation_id)) if escalation_id else None,
            Posted(channel, ts, row.created_at),
        )

    def _channel_post(self, session: Session, row: Outbox) -> Send:
        text = row.payload["text"]
        if row.incident_id:
            incident = incident_queries.get(session, row.incident_id)
            if incident.channel_id and incident.card_ts:
                text += f"\n<{mrkdwn.thread_link(incident.channel_id, incident.card_ts)}|Open the incident thread>"
        extra = {"blocks": row.payload["blocks"]} if row.payload.get("blocks") else {}
        channel, tag = row.payload["channel"], outbox_metadata(row)
        return Send(
            lambda client: client.chat_postMessage(channel=channel, text=text, metadata=tag, **extra),
            posted=Posted(channel, None, row.created_at),
        )
