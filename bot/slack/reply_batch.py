"""Thread replies taken from the inbox many at a time, without a Bolt dispatch each.

A busy incident thread is most of the bot's traffic: each reply dispatched through Bolt and
stored in a transaction of its own cost the worker about 4 ms, so replies arrived faster than
they were stored. `replies_of` picks out the requests that are plain human thread replies (the
same ones the `message` listener in listeners/events.py would store); `store` writes a batch of
them, and marks their inbox requests done, in one transaction. Anything else (edits, deletions,
reactions, another workspace's events, bot messages) goes through Bolt as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.incidents import timeline, timeline_batch
from bot.slack.context import Runtime
from bot.slack.message_events import to_change
from bot.slack.people import remember_payload_profile
from storage import inbox
from storage.db import unit_of_work
from storage.models import utcnow


@dataclass(frozen=True)
class QueuedReply:
    claim: inbox.Claim
    reply: timeline_batch.Reply
    profile: Any


def reply_of(rt: Runtime, claim: inbox.Claim) -> QueuedReply | None:
    """The thread reply this inbox request carries, or None when Bolt should dispatch it."""
    if not claim.body.startswith("{"):
        return None  # a form post: a command or an interaction
    try:
        body = json.loads(claim.body)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    # Another workspace's event is refused by the WORK app's middleware; let it be.
    team = rt.identity.team_id
    if team is None or body.get("team_id") != team or body.get("enterprise_id"):
        return None
    event = body.get("event")
    if not isinstance(event, dict) or event.get("type") != "message":
        return None
    found = to_change(event)
    if found is None or found[0] is not timeline.Change.POSTED:
        return None
    event_id = body.get("event_id")
    return QueuedReply(
        claim,
        timeline_batch.Reply(found[1], event_id if isinstance(event_id, str) else None),
        event.get("user_profile"),
    )


def store(rt: Runtime, queued: list[QueuedReply]) -> None:
    """Store the replies and settle their requests in one transaction.

    ClaimLost (one request was taken over) rolls all of it back; the caller then runs each on its
    own, so the others are not held hostage by the one we lost.
    """
    now = utcnow()
    with unit_of_work(rt.sessions) as session:
        stored = timeline_batch.record_replies(session, [q.reply for q in queued], policy=rt.settings.policy(), now=now)
        # record_replies hands back the very Reply objects it stored: match by identity, since a
        # ts alone is not unique (another channel's reply, a redelivery in the same batch).
        stored_replies = {id(reply) for reply in stored}
        profiles: dict[str, Any] = {}
        for item in queued:
            user = item.reply.message.user
            if id(item.reply) in stored_replies and user is not None and item.profile:
                profiles.setdefault(user, item.profile)
        # The name Markdown outputs print for each author, when Slack sent one along; in user
        # order, so two batches writing the same new people take their rows in the same order.
        for user in sorted(profiles):
            remember_payload_profile(session, user, profiles[user])
        inbox.settle_many(session.connection(), [q.claim for q in queued], now=now)
