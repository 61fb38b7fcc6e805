"""On-call outbox rows into Slack: a page's DM, a handoff's DM and user-group update; Slack's e-mail addresses."""

from __future__ import annotations

import functools
import logging
import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import Session

from bot.incidents import queries as incident_queries
from bot.incidents.outbox import OutboxKind
from bot.oncall import paging
from bot.slack.blocks import oncall as oncall_blocks
from bot.slack.delivery import Deliverer
from bot.slack.sends import Posted, Send, describe, outbox_metadata
from storage.models import Outbox
from storage.oncall import Page

log = logging.getLogger(__name__)


def send(deliverer: Deliverer, session: Session, row: Outbox) -> Send | None:
    """The DM for a PAGE_DM row; nothing when the page ended (acknowledged, resolved) before it went.

    Exactly once: the DM carries metadata naming its outbox row, and every attempt first looks in
    the DM for it (conversations.history, im:history). Pages are few, so always looking costs
    little, and it covers a sender killed after Slack took the message but before it was recorded.
    """
    payload = dict(row.payload)
    page = session.get(Page, payload["page_id"])
    if page is None or page.ended_at is not None:
        return None
    incident = incident_queries.get(session, row.incident_id or "")
    message = oncall_blocks.page_dm(paging.incident_summary(incident), step=str(payload.get("step") or "a step"))
    return Send(dm_call(deliverer, row, str(payload["user"]), message))


def dm_call(deliverer: Deliverer, row: Outbox, user: str, message: dict[str, Any]) -> Any:
    """Open the DM, look for this row's message there (an earlier attempt may have landed), else post."""
    row_id, since, tag = int(row.id or 0), row.created_at, outbox_metadata(row)

    def call(client: WebClient) -> Any:
        # conversations.open (im:write) gives the DM's channel; posting there puts the message in
        # the person's direct messages with the bot, where notifications reach their phone.
        channel = client.conversations_open(users=user)["channel"]["id"]
        found = deliverer._find_posted(row_id, Posted(channel, None, since))
        if found is not None:
            log.info("DM %s had reached Slack before (ts %s): not sent again", row_id, found["ts"])
            return found
        return client.chat_postMessage(channel=channel, metadata=tag, **message)

    return call


def send_handoff(deliverer: Deliverer, session: Session, row: Outbox) -> Send:
    """The incoming person's one DM at a handoff: until when, in the schedule's time zone."""
    payload = dict(row.payload)
    until = datetime.fromisoformat(payload["until"]) if payload.get("until") else None
    message = oncall_blocks.handoff_dm(str(payload["schedule"]), until, ZoneInfo(str(payload["timezone"])))
    return Send(dm_call(deliverer, row, str(payload["user"]), message))


def send_usergroup(session: Session, row: Outbox) -> Send:
    """usergroups.users.update (usergroups:write): idempotent, so a repeat after a crash changes nothing."""
    usergroup, users = str(row.payload["usergroup"]), ",".join(row.payload["users"])
    return Send(lambda client: client.usergroups_users_update(usergroup=usergroup, users=users))


def install(deliverer: Deliverer) -> None:
    """Let the deliverer send PAGE_DM rows (this module builds on delivery, so it registers itself)."""
    deliverer.register(OutboxKind.PAGE_DM, functools.partial(send, deliverer))
    deliverer.register(OutboxKind.HANDOFF_DM, functools.partial(send_handoff, deliverer))
    deliverer.register(OutboxKind.USERGROUP_UPDATE, send_usergroup)


class SlackEmails:
    """A person's e-mail address from their Slack profile (users.info, users:read.email), remembered."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._known: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str) -> str | None:
        with self._lock:
            if user in self._known:
                return self._known[user]
        try:
            profile = self.client.users_info(user=user)["user"].get("profile") or {}
        except (SlackApiError, SlackClientError, OSError, KeyError) as exc:
            log.warning("no e-mail address for %s from Slack: %s", user, describe(exc))
            return None  # not remembered: asked again next time
        email = profile.get("email") if isinstance(profile.get("email"), str) else None
        with self._lock:
            self._known[user] = email
        return email


