"""The Alertmanager webhook's HTTP route: bearer token, parse, store once, answer; Slack hears through the outbox."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from bot.alerts.payload import WebhookError, parse_webhook
from bot.alerts.service import UNAVAILABLE, take
from bot.runtime.http import Route
from bot.slack.context import Runtime

log = logging.getLogger(__name__)


PATH = "/alerts/alertmanager"


JSON_HEADERS = {"Content-Type": "application/json"}


def authorized(header: str | None, token: str) -> bool:
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def _json(code: int, **body: Any) -> tuple[int, bytes, dict[str, str]]:
    return code, json.dumps(body).encode(), dict(JSON_HEADERS)


def make_route(rt: Runtime) -> Route | None:
    """The webhook handler, or None when ALERTMANAGER_TOKEN is unset (endpoint off)."""
    secret = rt.settings.alertmanager_token
    if secret is None or not secret.get_secret_value():
        return None
    token = secret.get_secret_value()

    def route(headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if not authorized(headers.get("authorization"), token):
            status, payload, extra = _json(401, status="error", error="missing or wrong bearer token")
            return status, payload, {**extra, "WWW-Authenticate": 'Bearer realm="alertmanager"'}
        try:
            webhook = parse_webhook(body)
        except WebhookError as exc:
            return _json(400, status="error", error=str(exc))
        try:
            outcome = take(rt.sessions, webhook, settings=rt.settings)
        except UNAVAILABLE as exc:
            log.warning("alert notification not stored, database unavailable: %s", type(exc).__name__, exc_info=True)
            return _json(503, status="error", error="database unavailable; retry later")
        if outcome.changed:
            rt.deliverer.kick()
        if outcome.declared:
            log.info("alert group %r declared %s", webhook.group_key, outcome.incident_id)
        return _json(200, status="ok", incident=outcome.incident_id)

    return route
