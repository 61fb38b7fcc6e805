"""The running service. This module: what the bot is made of, built once and passed to listeners,
jobs and the server. Beside it: the HTTP server (http), the durable intake of Slack requests
(intake), the workers that do their work (inbox_worker), and the worker process (worker_process).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.slack import digest_delivery, page_delivery
from bot.slack.delivery import Deliverer
from storage.db import SessionFactory, session_factory

log = logging.getLogger(__name__)


def make_client(settings: Settings, *, timeout: int = 15) -> WebClient:
    """The Web API client: SLACK_API_URL, retries on 429 (honouring Retry-After) and connection errors."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ConnectionErrorRetryHandler(max_retry_count=2),
            # One quick retry for a blip; longer outages are the outbox's job, not this thread's.
            ServerErrorRetryHandler(max_retry_count=1),
        ],
    )


# Slack's answers to auth.test that no retry changes: the token is wrong, revoked or expired, or
# its workspace or user is gone. Anything else (no answer, 5xx, ratelimited) is retried.
REJECTED_TOKEN = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"})


class TokenRejected(Exception):
    """Slack refused SLACK_BOT_TOKEN for good; the message is one line for the operator."""

    def __init__(self, error: str) -> None:
        super().__init__(
            f"SLACK_BOT_TOKEN was rejected by Slack ({error}): copy the Bot User OAuth Token (xoxb-…) again from "
            "the app's OAuth & Permissions page (reinstall the app if it was revoked)."
        )
        self.error = error


def _error_code(exc: SlackApiError) -> str | None:
    data = exc.response.data
    return str(data["error"]) if isinstance(data, dict) and data.get("error") else None


def failure_reason(exc: BaseException) -> str:
    """Slack's error code and HTTP status, or the connection error, for a log line (never the token)."""
    if isinstance(exc, SlackApiError):
        error = _error_code(exc)
        status = f"HTTP {exc.response.status_code}"
        return f"{error}, {status}" if error else status
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


@dataclass
class Identity:
    """Who the bot is in the workspace (auth.test), learnt off the request path.

    Bolt would otherwise call auth.test on the first request, putting a Web API round trip on
    the ack path; we ask once at start-up and keep asking in the background until Slack answers.
    """

    user_id: str | None = None
    bot_id: str | None = None
    team_id: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def learn(self, client: WebClient) -> bool:
        """True once Slack answered; False when it did not (try again); TokenRejected when it never will."""
        try:
            response = client.auth_test()
        except SlackApiError as exc:
            error = _error_code(exc)
            if error is not None and error in REJECTED_TOKEN:
                raise TokenRejected(error) from None
            log.warning("auth.test failed (%s); retrying in the background", failure_reason(exc))
            return False
        except (SlackClientError, OSError) as exc:
            log.warning("auth.test failed (%s); retrying in the background", failure_reason(exc))
            return False
        self.user_id = response.get("user_id")
        self.bot_id = response.get("bot_id")
        self.team_id = response.get("team_id")
        self.ready.set()
        return True


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    client: WebClient
    sessions: SessionFactory
    deliverer: Deliverer
    identity: Identity

    @classmethod
    def build(
        cls, settings: Settings, engine: Engine, client: WebClient | None = None, identity: Identity | None = None
    ) -> Runtime:
        client = client or make_client(settings)
        sessions = session_factory(engine)
        deliverer = Deliverer(sessions, client, settings)
        digest_delivery.install(deliverer)
        page_delivery.install(deliverer)
        return cls(
            settings=settings,
            engine=engine,
            client=client,
            sessions=sessions,
            deliverer=deliverer,
            identity=identity or Identity(),
        )
