"""Socket Mode: opened through SLACK_API_URL, with /healthz still served on PORT and no events route."""

from __future__ import annotations

import threading
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


def test_a_bot_stopped_while_it_connects_leaves_no_socket_client_running(make_bot: Callable[..., Bot]) -> None:
    # slack_sdk's connect() turns reconnecting back on and starts its monitor thread when it
    # finishes; a stop() that lands during connect() must still leave nothing calling Slack.
    bot = make_bot(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    bot.fake.delay("apps.connections.open", 0.5)
    bot.fake.wait_for("apps.connections.open", timeout=10)  # a first call went; the client exists
    client = bot.service.socket_client
    bot.stop()
    connecting = [t for t in threading.enumerate() if t.name == "socket-mode"]
    for thread in connecting:
        thread.join(timeout=10)
    assert client is not None and client.closed
    assert not client.current_app_monitor.is_alive() and not client.current_session_runner.is_alive()
