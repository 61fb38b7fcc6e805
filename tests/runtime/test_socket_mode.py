"""Socket Mode: opened through SLACK_API_URL, with /healthz still served on PORT and no events route."""

from __future__ import annotations

from collections.abc import Callable

from bot_harness import Bot

APP_TOKEN = "xapp-1-A0APP-0000-test"


def test_socket_mode_connects_through_the_api_url_and_keeps_healthz(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    call = bot.fake.wait_for("apps.connections.open", timeout=10)[0]
    assert call.token == APP_TOKEN  # the app-level token, not the bot token, opens the socket
    assert bot.get("/healthz") == (200, b"ok")
    # No public Request URL in Socket Mode: events arrive over the socket, not over HTTP.
    assert bot.get("/slack/events")[0] == 404


def test_http_mode_does_not_open_a_socket(bot: Bot) -> None:
    assert bot.get("/healthz") == (200, b"ok")
    bot.declare()
    assert bot.fake.calls("apps.connections.open") == []
