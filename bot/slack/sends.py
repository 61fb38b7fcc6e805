"""What one outbox row becomes: a prepared Slack call, where it lands, and how Slack's errors read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from storage.models import Escalation, Outbox, utcnow

# Slack's answers that no retry can change: the call becomes a dead letter (see Outbox.dead_at).
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "msg_too_long",
        "no_text",
        "missing_scope",
        "not_allowed_token_type",
        "restricted_action",
        "cant_update_message",
        "message_not_found",
        "user_not_found",
        "users_not_found",
    }
)


# The message metadata event type that names the outbox row a post came from.
METADATA_EVENT = "incident_bot_outbox"


class ClaimLost(RuntimeError):
    """Another worker holds the row's claim now: this one must not record the delivery."""


@dataclass(frozen=True)
class Posted:
    """Where a post of an outbox row lands, so a sender unsure of an earlier attempt can look."""

    channel: str  # an ID, or the name the post was addressed to
    thread_ts: str | None
    since: datetime  # the row's created_at: the post cannot be older


@dataclass(frozen=True)
class Send:
    """One Slack call prepared from the database, and what to record once Slack took it.

    `after` runs in the transaction that records the delivery; `then` after it has committed
    (what must wait until the delivery is on record, such as joining the channel of a new card).
    """

    call: Callable[[WebClient], Any]
    after: Callable[[Session, Any], None] | None = None
    posted: Posted | None = None
    then: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Claim:
    token: str
    unsure: bool  # an earlier claim expired with no outcome on record: the call may be in Slack


# Reads what to send (in a short transaction); None means there is nothing left to send.
Handler = Callable[[Session, Outbox], Send | None]


def outbox_metadata(row: Outbox) -> dict[str, Any]:
    """Slack message metadata naming the outbox row a post comes from (see Deliverer._find_posted)."""
    return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": row.id, "created": _instant(row.created_at)}}


def is_post_of(message: dict[str, Any], row_id: int, created_at: datetime) -> bool:
    """Whether `message` is the post of the outbox row `row_id` written at `created_at`.

    A row id alone is not unique in a channel: another installation posting there (staging beside
    production, a database started afresh) has rows of the same ids, and taking its post for ours
    would record ours as delivered when it never was. Posts made before the time was added carry
    the id only, and still match by it (so an installation still on an older version can still be
    mistaken for us, until it is upgraded).
    """
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
        return False
    payload = metadata.get("event_payload") or {}
    if not isinstance(payload, dict) or payload.get("outbox_id") != row_id:
        return False
    created = payload.get("created")
    return created is None or created == _instant(created_at)


def _instant(at: datetime) -> str:
    # UTC wall time to the microsecond: the same whether the backend gave the value a zone or not
    # (a naive value is UTC, as storage writes them).
    utc = at.astimezone(UTC) if at.tzinfo is not None else at
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds")


def mark_escalation(session: Session, escalation_id: int) -> None:
    escalation = session.get(Escalation, escalation_id)
    if escalation is not None and escalation.delivered_at is None:
        escalation.delivered_at = utcnow()
        session.add(escalation)


def slack_error(exc: BaseException) -> str | None:
    """Slack's error code (`channel_not_found`, …) when Slack answered with one."""
    if not isinstance(exc, SlackApiError) or not isinstance(exc.response.data, dict):
        return None
    error = exc.response.data.get("error")
    return error if isinstance(error, str) else None


def describe(exc: BaseException) -> str:
    """A one-line reason for logs: Slack's error code or the HTTP status, never a token."""
    if isinstance(exc, SlackApiError):
        error = slack_error(exc)
        return f"HTTP {exc.response.status_code}" + (f" {error}" if error else "")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
