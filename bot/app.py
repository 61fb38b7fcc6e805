"""create_app(runtime) -> App: the Bolt app with every listener wired in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult

from bot.listeners import actions, commands, events, home, views
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(rt: Runtime, *, verify_requests: bool = True) -> App:
    """verify_requests=False only in the worker process, whose requests come from the front's pipe."""
    settings = rt.settings
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    identity = rt.identity

    def authorize(enterprise_id: str | None, team_id: str | None, **_: Any) -> AuthorizeResult:
        # A single-workspace app: the token is known, and who we are is learnt at start-up
        # (see Identity) rather than by an auth.test on the first request's ack path.
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=identity.team_id or team_id,
            bot_token=token,
            bot_user_id=identity.user_id,
            bot_id=identity.bot_id,
        )

    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    app = App(
        client=rt.client,
        authorize=authorize,
        signing_secret=secret or "socket-mode-has-no-signing-secret",
        request_verification_enabled=verify_requests and not settings.socket_mode,
        # Ack in the request's thread; the work runs after, as lazy listeners (bot/listeners). With
        # False, Bolt runs every listener on the pool and polls for its ack(), so under load an ack
        # queued behind other listeners' work (a 2 s Web API took acks past Slack's 3 s).
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
        listener_executor=rt.listener_executor,
    )

    @app.middleware
    def only_our_workspace(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> Any:
        expected, got = identity.team_id, req.context.team_id
        if expected and got and got != expected and not req.context.enterprise_id:
            log.warning("refused a request from another workspace")
            return BoltResponse(status=403, body="This app is installed in another workspace.")
        return next()

    # Bolt tries listeners in the order they were added, each matcher at a cost: the busiest
    # (/incident and thread replies) first keeps the ack path short.
    for surface in (commands, events, home, views, actions):
        surface.register(app, rt)
    return app
