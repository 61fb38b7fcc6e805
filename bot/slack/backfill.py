"""Timeline backfill: read open incidents' threads back from Slack and store what events missed.

Events are acked before they are stored, and Slack gives up retrying after a while; a bot that was
down, or died between ack and commit, would otherwise keep a timeline with holes. Reading the thread
(conversations.replies) at start-up and then every TIMELINE_BACKFILL_INTERVAL closes them: new
replies are stored, newer edits applied, all through the same keyed writes as live events.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import select

from bot.incidents import timeline
from bot.slack.context import Runtime
from bot.slack.message_events import to_change
from storage.db import unit_of_work
from storage.errors import database_errors
from storage.models import Incident, Status, utcnow

log = logging.getLogger(__name__)
PAGE = 200
MAX_PAGES = 10  # 2,000 replies per incident per pass is more than any real incident thread
# One read of a thread takes at most this, with no retry of the client's own: a Slack that does
# not answer costs one read per pass (the next pass is the retry), and a stopping bot waits for
# at most one read, never for every open incident's retries in a row.
CALL_TIMEOUT = 3
RATE_LIMIT_WAITS = 3  # a 429 is waited out (interruptibly) this many times per thread, then skipped


def backfill_client(client: WebClient) -> WebClient:
    """The bot's Web API client, bounded for backfill: CALL_TIMEOUT per call, no retry handlers."""
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=CALL_TIMEOUT,
        ssl=client.ssl,
        proxy=client.proxy,
        retry_handlers=[],
    )


def thread_messages(client: WebClient, channel: str, ts: str) -> list[dict[str, Any]]:
    """Every reply in the thread (the parent left out), oldest first."""
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        response = client.conversations_replies(channel=channel, ts=ts, limit=PAGE, cursor=cursor)
        messages += [m for m in response.get("messages") or [] if isinstance(m, dict) and m.get("ts") != ts]
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return messages


def read_thread(client: WebClient, channel: str, ts: str, stopping: threading.Event) -> list[dict[str, Any]] | None:
    """The thread's replies; None when the bot began stopping while Slack asked it to wait."""
    for _ in range(RATE_LIMIT_WAITS):
        try:
            return thread_messages(client, channel, ts)
        except SlackApiError as exc:
            if exc.response.status_code != 429:
                raise
            # Waited on the stop event, not slept: a SIGTERM during a long Retry-After ends it.
            headers = {str(k).lower(): v for k, v in (exc.response.headers or {}).items()}
            if stopping.wait(float(headers.get("retry-after") or 1)):
                return None
    return thread_messages(client, channel, ts)


def backfill(rt: Runtime, stopping: threading.Event | None = None) -> int:
    """One pass over the open incidents; returns how many missed replies were stored.

    `stopping` set (the bot is shutting down): the pass ends before the next thread.
    """
    stopping = stopping or threading.Event()
    with unit_of_work(rt.sessions) as session:
        threads = session.execute(
            select(Incident.id, Incident.channel_id, Incident.card_ts).where(
                Incident.status != Status.RESOLVED.value,
                Incident.card_ts.is_not(None),  # type: ignore[union-attr]
            )
        ).all()
    if not threads:
        return 0
    client = backfill_client(rt.client)
    changed = 0
    for incident_id, channel, ts in threads:
        if stopping.is_set():
            log.info("timeline backfill stopped for shutdown; the next start reads the rest")
            break
        try:
            replies = read_thread(client, channel, ts, stopping)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not read the thread of %s: %s", incident_id, type(exc).__name__)
            continue
        if replies is None:
            continue  # stopping: the check above ends the pass
        with unit_of_work(rt.sessions) as session:
            for message in replies:
                found = to_change({**message, "channel": channel})
                if found is None:
                    continue
                _, reply = found
                now = utcnow()
                # The write keys (incident, ts) make this a no-op for what events already stored;
                # an edit is applied only if it is newer than the stored one.
                added = timeline.record_message(session, reply, policy=rt.settings.policy(), now=now)
                changed += added
                if not added and reply.edited_ts:
                    timeline.record_edit(session, reply, now=now)
                if _pinned(message):
                    timeline.set_key_event(session, channel_id=channel, ts=reply.ts, key_event=True, now=now)
    if changed:
        log.info("timeline backfill stored %d missed repl%s", changed, "y" if changed == 1 else "ies")
    return changed


def _pinned(message: dict[str, Any]) -> bool:
    reactions = message.get("reactions")
    return isinstance(reactions, list) and any(
        isinstance(r, dict) and r.get("name") == timeline.KEY_EVENT_REACTION for r in reactions
    )


def backfill_job(rt: Runtime, stopping: threading.Event | None = None) -> None:
    with database_errors(log, "timeline backfill"):
        backfill(rt, stopping)
