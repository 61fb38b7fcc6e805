"""create_app(runtime, stage) -> App: the Bolt app with every listener wired in, for one stage.

Stage.ACK answers Slack (HTTP or Socket Mode); Stage.WORK does the work of the requests the
inbox stored (bot/listeners/__init__.py says how the two split each listener).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult

from bot.slack.context import Runtime
from bot.slack.listeners import InlineExecutor, Stage, actions, commands, events, home, statuspage, views

log = logging.getLogger(__name__)


def create_app(rt: Runtime, stage: Stage = Stage.ACK) -> App:
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
        # The WORK app takes requests from the inbox, which stores only requests whose signature
        # the ACK app verified; verifying again would refuse work older than Slack's five minutes.
        request_verification_enabled=stage is Stage.ACK and not settings.socket_mode,
        # Run each ack function in the request's thread and answer at once. With False, Bolt runs
        # every listener on a pool and polls for its ack(), so under load an ack queued behind
        # other listeners' work (a 2 s Web API took acks past Slack's 3 s).
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
        # Bolt names an app without a name by its caller's file, found with inspect.stack(): that
        # reads the source of every frame on the stack, tens of milliseconds per app deep in a test
        # (a front and a worker make one each). It names the listeners' loggers.
        name="slack_bolt.app",
        # The ACK app has no lazy listeners; the WORK app runs them inline (see InlineExecutor).
        listener_executor=InlineExecutor(),
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
    for surface in (commands, events, home):
        surface.register(app, rt, stage)
    if stage is Stage.ACK:
        views.register(app, rt)  # submissions are validated and stored before the ack itself
    actions.register(app, rt, stage)
    statuspage.register(app, rt, stage)
    return app
