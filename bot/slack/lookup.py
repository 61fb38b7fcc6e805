"""Finding a post whose outcome is unknown, by the message metadata that names its outbox row."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import col

from bot.settings import Settings
from bot.slack.sends import (
    PERMANENT_ERRORS,
    Posted,
    Send,
    describe,
    is_post_of,
    slack_error,
)
from storage.db import SessionFactory, unit_of_work
from storage.models import Incident

log = logging.getLogger(__name__)

_CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
LOOKUP_PAGES = 5  # of 200 messages: far more than an incident writes while one call is in doubt
# How far back a lookup reads, before the row was written: Slack's clock and ours may differ.
LOOKUP_SKEW = timedelta(minutes=5)


class PostedLookup:
    """The Deliverer's lookups (a mixin: it reads the client and the channel ids the deliverer learnt)."""

    client: WebClient
    settings: Settings
    sessions: SessionFactory
    _channel_ids: dict[str, str]

    def _find_posted(self, row_id: int, posted: Posted) -> dict[str, Any] | None:
        """The message an earlier attempt of this row left in Slack, found by its metadata.

        A lookup Slack refuses for good (a scope, a channel the bot cannot read) cannot tell: the
        call is sent again, since a doubled message is better than a lost escalation. A lookup
        that fails for the moment raises, and the row is tried later, still in doubt.
        """
        channel = self._channel_id(posted.channel)
        if channel is None:
            log.warning(
                "Slack call %s may have reached Slack, but %s is a channel name not resolved yet: "
                "sending it again (configure the channel by ID to rule out a duplicate)",
                row_id,
                posted.channel,
            )
            return None
        oldest = f"{(posted.since - LOOKUP_SKEW).timestamp():.6f}"
        cursor: str | None = None
        try:
            for _ in range(LOOKUP_PAGES):
                args: dict[str, Any] = {
                    "channel": channel,
                    "oldest": oldest,
                    "limit": 200,
                    "include_all_metadata": True,
                }
                if cursor:
                    args["cursor"] = cursor
                if posted.thread_ts:
                    page = self.client.conversations_replies(ts=posted.thread_ts, **args)
                else:
                    page = self.client.conversations_history(**args)
                for message in page.get("messages") or []:
                    if is_post_of(message, row_id, posted.since):
                        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    break
        except SlackApiError as exc:
            if slack_error(exc) not in PERMANENT_ERRORS | {"thread_not_found"}:
                raise
            log.warning(
                "Slack call %s may have reached Slack, but looking cannot tell (%s): sending it again",
                row_id,
                describe(exc),
            )
        return None

    def _channel_id(self, channel: str) -> str | None:
        if _CONVERSATION_ID.match(channel):
            return channel
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if channel == self.settings.incident_channel:
            # Every card lands in the incident channel: any incident's card names its ID.
            with unit_of_work(self.sessions) as session:
                known = session.execute(
                    sa.select(col(Incident.channel_id)).where(col(Incident.channel_id).is_not(None)).limit(1)
                ).scalar()
            if known:
                self._channel_ids[channel] = known
                return known
        return None

    def _learn_channel(self, send: Send, result: Any) -> None:
        if send.posted is None or not hasattr(result, "get"):
            return
        channel_id = result.get("channel")
        if isinstance(channel_id, str) and channel_id:
            self._channel_ids[send.posted.channel] = channel_id
