"""Alertmanager notifications as Alertmanager builds them, and posting them to the bot, for tests."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from bot_harness import Bot
from fake_slack import Call

from bot.runtime import alert_route

TOKEN = "am-secret-0123456789abcdef"


ZERO = "0001-01-01T00:00:00Z"  # Go's zero time: Alertmanager's endsAt for a firing alert


NOW = datetime(2026, 1, 4, 12, 0, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert(
    name: str = "DiskFull",
    *,
    status: str = "firing",
    starts: datetime | None = None,
    ends: datetime | None = None,
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> dict[str, Any]:
    labels = {"alertname": name, **labels}
    fingerprint = hashlib.sha1(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": iso(starts or NOW - timedelta(minutes=10)),
        "endsAt": iso(ends) if ends else ZERO,
        "generatorURL": f"http://prometheus.example:9090/graph?g0.expr={name}",
        "fingerprint": fingerprint,
    }


def notification(*items: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A notification as Alertmanager builds it: common labels/annotations are what all alerts share."""
    items = items or (alert(),)

    def common(key: str) -> dict[str, str]:
        shared = dict(items[0][key])
        for item in items[1:]:
            shared = {k: v for k, v in shared.items() if item[key].get(k) == v}
        return shared

    name = items[0]["labels"]["alertname"]
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
        "receiver": "incident-bot",
        "groupLabels": {"alertname": name},
        "commonLabels": common("labels"),
        "commonAnnotations": common("annotations"),
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(items),
    }
    body.update(overrides)
    return body


def post(bot: Bot, body: Any, *, token: str | None = TOKEN, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(bot.url + alert_route.PATH, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload)
        except ValueError:
            return exc.code, {"raw": payload.decode("utf-8", "replace")}


def cards(call: Call) -> bool:
    return "thread_ts" not in call.params
