"""Subprocess entry: the baseline, a bare Bolt app that only acks, served by the bot's own HTTP server.

`python benchmarks/bare_app.py PORT SIGNING_SECRET BOT_TOKEN SLACK_API_URL [PAGES_JSON]` serves POST
/slack/events and GET /healthz on 127.0.0.1:PORT through bot.runtime.http.HttpServer, exactly as the bot
is served, so the ack-latency ratio measures what the bot's listeners add and nothing else.

With PAGES_JSON (a file of {path: [header fields, base64 body]}), it also serves those GETs, the
bot's bytes and header fields fixed, with no site behind them: the server's own floor for the
status page benchmark (page_load_bench.py).
"""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
from typing import Any, cast

from slack_bolt import Ack, App, BoltRequest
from slack_sdk import WebClient

from bot.runtime.http import Health, HttpServer
from bot.slack.context import Runtime


class AlwaysHealthy(Health):
    """No database here: ready as soon as it listens."""

    def check(self) -> bool:
        return True


def build_app(secret: str, token: str, api_url: str) -> App:
    # A stock single-workspace app: Bolt asks auth.test once (answered by the fake) and caches it.
    app = App(
        signing_secret=secret,
        token=token,
        client=WebClient(token=token, base_url=api_url),
        token_verification_enabled=False,
    )

    @app.command("/incident")
    def incident(ack: Ack) -> None:
        ack()

    @app.event("message")
    def message(event: dict[str, Any]) -> None:
        return None

    return app


def main(argv: list[str]) -> int:
    port, secret, token, api_url = int(argv[0]), argv[1], argv[2], argv[3]
    runtime = cast(Runtime, None)  # Server only keeps it; the health check above does not use it
    health = AlwaysHealthy(runtime)
    health.migrated.set()
    server = HttpServer(host="127.0.0.1", port=port, health=health)
    app = build_app(secret, token, api_url)

    def slack(headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        response = app.dispatch(BoltRequest(body=body.decode("utf-8", errors="replace"), headers=headers))
        flat = {k: v[0] if isinstance(v, list) else str(v) for k, v in response.headers.items()}
        return response.status, (response.body or "").encode("utf-8"), flat

    server.add_route("POST", "/slack/events", slack)
    if len(argv) > 4:
        with open(argv[4]) as file:
            pages = {path: (fields, base64.b64decode(body)) for path, (fields, body) in json.load(file).items()}

        def page(path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
            fields, body = pages.get(path, ({"Content-Type": "text/plain"}, b"not found"))
            return (200 if path in pages else 404), body, dict(fields)

        for prefix in ("/status", "/api/v2"):  # answered on the event loop, as the bot's cache hits are
            server.add_prefix_route(prefix, page, cached=page)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print("ready", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
