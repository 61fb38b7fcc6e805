"""The durable intake: every Slack request answered with 200 is in the inbox before the answer leaves.

`Intake.answer` is the whole ack path, for HTTP and Socket Mode alike: Bolt's ACK app verifies
the request and computes the answer (bot/app.py), then one INSERT stores the request, and only
then is the answer sent. Whatever dies after that, a worker of some replica does the work once
(bot/runtime/inbox_worker.py). A redelivered request has the same key and is stored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from slack_bolt import App, BoltRequest, BoltResponse
from sqlalchemy.engine import Engine

from storage import inbox, spool
from storage.inbox_batch import InboxBatcher, NotStored
from storage.models import utcnow

log = logging.getLogger(__name__)

# What a worker needs to rebuild the request: the body's type, and Slack's retry headers (the
# signature was checked here; the worker does not check it again).
KEPT_HEADERS = ("content-type", "x-slack-retry-num", "x-slack-retry-reason")
KEY_LENGTH = 200
# Payload types whose whole work is done in the ack: a view submission is validated and stored
# before it (bot/listeners/views.py); the others ask for nothing afterwards.
DONE_IN_ACK = {"url_verification", "view_submission", "view_closed", "block_suggestion"}
RETRY_LATER = "The incident bot could not record this just now (its database did not answer). Please try again."


def done_in_ack(payload: dict[str, Any]) -> bool:
    return payload.get("type") in DONE_IN_ACK or "ssl_check" in payload


def request_key(payload: dict[str, Any]) -> str | None:
    """What makes a redelivery the same request; None when the ack did all there was to do, or
    when the payload has no shape known here (the caller then keys it on its bytes)."""
    kind = payload.get("type")
    if done_in_ack(payload):
        return None
    if kind == "event_callback" and payload.get("event_id"):
        return _bounded(f"event:{payload['event_id']}")
    if kind == "block_actions":
        user = (payload.get("user") or {}).get("id", "")
        container = payload.get("container") or {}
        where = container.get("message_ts") or container.get("view_id") or (payload.get("view") or {}).get("id", "")
        action = (payload.get("actions") or [{}])[0]
        return _bounded(f"action:{user}:{where}:{action.get('action_id', '')}:{action.get('action_ts', '')}")
    if payload.get("trigger_id"):  # slash commands and shortcuts: one trigger per invocation
        return _bounded(f"trigger:{payload.get('command') or kind}:{payload['trigger_id']}")
    return None


def _bounded(key: str) -> str:
    return key if len(key) <= KEY_LENGTH else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def body_key(raw: str) -> str:
    """The key of a request of no known shape: the same bytes are the same request."""
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


class Intake:
    """Answers Slack: Bolt's answer, once the request is stored. `stored` wakes a worker."""

    def __init__(self, app: App, engine: Engine, stored: Callable[[], None], *, wait: float = 30.0) -> None:
        self.app = app
        self.engine = engine
        self.stored = stored
        # SQLite: the spool, where the ack never queues behind the worker's transactions;
        # PostgreSQL: one writer that stores the requests of concurrent acks in one transaction.
        self.spool = spool.for_engine(engine, wait=wait)
        self.batcher = InboxBatcher(engine, wait=wait) if engine.dialect.name == "postgresql" else None

    def close(self) -> None:
        """After the last request: the PostgreSQL writer's connection is closed."""
        if self.batcher is not None:
            self.batcher.close()

    def answer(self, request: BoltRequest, raw: str) -> BoltResponse:
        response = self.app.dispatch(request)
        if response.status != 200 or not isinstance(request.body, dict):
            return response  # refused (bad signature, other workspace…): nothing to do later
        if done_in_ack(request.body):
            return response
        key = request_key(request.body) or body_key(raw)
        headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
        try:
            new = self._record(key=key, mode=request.mode, body=raw, headers=headers)
        except (sa.exc.SQLAlchemyError, sqlite3.Error, NotStored) as exc:
            log.warning("could not store a Slack request (%s); asking Slack to retry", type(exc).__name__)
            return self._unstored(request)
        if new:
            self.stored()
        return response

    def _record(self, *, key: str, mode: str, body: str, headers: dict[str, Any]) -> bool:
        if self.spool is not None:
            return self.spool.record(key=key, mode=mode, body=body, headers=headers, now=utcnow())
        if self.batcher is not None:
            return self.batcher.record(key=key, mode=mode, body=body, headers=headers, now=utcnow())
        with self.engine.begin() as connection:
            return inbox.record(connection, key=key, mode=mode, body=body, headers=headers, now=utcnow())

    def _unstored(self, request: BoltRequest) -> BoltResponse:
        # Never a 200 for a request that is not stored. Events are redelivered by Slack after a
        # non-200; a person who typed a command is told, in the command's own ephemeral answer,
        # that nothing happened (Slack shows its generic error for a failed button anyway).
        if isinstance(request.body, dict) and request.body.get("command"):
            body = json.dumps({"response_type": "ephemeral", "text": RETRY_LATER})
            return BoltResponse(status=200, body=body, headers={"content-type": "application/json"})
        return BoltResponse(status=503, body="unavailable")
