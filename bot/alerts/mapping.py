"""Pure mapping from an Alertmanager notification to what the incident should say: severity, title, texts, changes."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import mrkdwn
from bot.alerts.payload import URL_MAX, Webhook, WebhookAlert
from bot.ids import Action
from bot.incidents.forms import TITLE_MAX, DeclareExtras, DeclareForm, parse_title
from storage.models import SEVERITIES

# The `severity` label's conventional values; P0…P3 are also taken as they are (any case).
SEVERITY_LABELS = {"critical": "P0", "high": "P1", "error": "P1", "warning": "P2", "info": "P3"}


LIST_MAX = 20  # alerts named in one thread reply; the rest are counted


TEXT_MAX = 2900  # under Block Kit's 3,000 for a section


def map_severity(value: str | None, default: str) -> str:
    if value is None:
        return default
    value = value.strip()
    if value.upper() in SEVERITIES:
        return value.upper()
    return SEVERITY_LABELS.get(value.lower(), default)


def severity_of(webhook: Webhook, default: str) -> str:
    """The common `severity` label, else the highest any alert carries, else the default."""
    if "severity" in webhook.common_labels:
        return map_severity(webhook.common_labels["severity"], default)
    alerts = webhook.firing or webhook.alerts
    found = [map_severity(a.labels["severity"], default) for a in alerts if "severity" in a.labels]
    return min(found) if found else default  # "P0" < "P1": the lowest number is the highest severity


def alertname_of(webhook: Webhook) -> str:
    for labels in (webhook.common_labels, webhook.group_labels):
        if labels.get("alertname", "").strip():
            return labels["alertname"].strip()
    return next((a.alertname.strip() for a in webhook.firing + webhook.alerts if a.alertname.strip()), "")


def title_of(webhook: Webhook) -> str:
    """commonAnnotations.summary, else the alert name; the declare modal's rules, cut to fit."""
    for raw in (webhook.common_annotations.get("summary"), alertname_of(webhook)):
        text = " ".join((raw or "").split())
        if text:
            return parse_title(mrkdwn.truncate(text, TITLE_MAX))
    return "Alertmanager alert"


def http_url(value: str | None) -> str | None:
    """A link safe to put in `<url|text>` and a button, or None."""
    value = (value or "").strip()
    if len(value) <= URL_MAX and re.match(r"^https?://[^\s<>|\"]+$", value):
        return value
    return None


def runbook_of(webhook: Webhook) -> str | None:
    candidates = [webhook.common_annotations.get("runbook_url")]
    candidates += [a.annotations.get("runbook_url") for a in webhook.firing + webhook.alerts]
    return next((url for url in map(http_url, candidates) if url), None)


SERVICE_MAX = 200  # the declaration modal's "What is affected" is free text; a label is one name


def service_of(webhook: Webhook) -> str | None:
    """The `service` label every firing alert of the group shares, or None.

    It becomes the incident's affected system, which is what an on-call route's `service:` matches
    (bot/oncall/paging.incident_fields). Alerts of several services grouped together name none.
    """
    for labels in (webhook.common_labels, webhook.group_labels):
        value = " ".join(labels.get("service", "").split())
        if value:
            return mrkdwn.truncate(value, SERVICE_MAX)
    return None


def _real(value: datetime | None) -> datetime | None:
    # Go's zero time (0001-01-01T00:00:00Z) means "not set": a firing alert's endsAt.
    return value if value is not None and value.year > 1 else None


def started_at_of(webhook: Webhook, now: datetime) -> datetime:
    """The earliest startsAt of the firing alerts, never in the future."""
    starts = [s for s in (_real(a.starts_at) for a in webhook.firing or webhook.alerts) if s is not None]
    return min([*starts, now])


def ended_at_of(webhook: Webhook, now: datetime) -> datetime:
    """When the last alert stopped firing (the latest endsAt), never in the future."""
    ends = [e for e in (_real(a.ends_at) for a in webhook.alerts) if e is not None]
    return min(max(ends), now) if ends else now


def declaration(webhook: Webhook, *, default_severity: str, now: datetime) -> tuple[DeclareForm, DeclareExtras]:
    alertname = alertname_of(webhook)
    first = (webhook.firing or webhook.alerts)[0]
    form = DeclareForm(
        title=title_of(webhook),
        severity=severity_of(webhook, default_severity),
        affected=service_of(webhook),
        detection=f"Alertmanager: {alertname or 'alert'}",
        detection_url=next((u for u in (http_url(a.generator_url) for a in webhook.firing) if u), None)
        or http_url(first.generator_url),
    )
    extras = DeclareExtras(
        source="alertmanager",
        started_at=started_at_of(webhook, now),
        alert_group=webhook.group_key,
        alert_name=alertname or None,
        runbook=runbook_of(webhook),
    )
    return form, extras


def summary_of(alert: WebhookAlert, webhook: Webhook) -> str:
    """`alertname {label="value", …}` without the labels every alert in the group shares by routing."""
    skip = {"alertname", "severity", *webhook.group_labels}
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(alert.labels.items()) if k not in skip)
    name = alert.alertname or "alert"
    return mrkdwn.truncate(f"{name} {{{labels}}}" if labels else name, 200)


def dedupe_key(webhook: Webhook) -> str:
    """The same for a retry or an HA twin; different once any alert starts, stops or joins.

    startsAt is part of it so an alert that resolved and fired again is news, not a duplicate.
    """
    alerts = sorted((a.key, a.status, a.starts_at.isoformat()) for a in webhook.alerts)
    material = json.dumps([webhook.group_key, webhook.status, alerts], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


AlertState = dict[str, dict[str, str]]  # fingerprint -> {"status", "summary"}


def state_of(webhook: Webhook) -> AlertState:
    return {a.key: {"status": a.status, "summary": summary_of(a, webhook)} for a in webhook.alerts}


@dataclass(frozen=True)
class Changes:
    fired: list[str] = field(default_factory=list)  # summaries of alerts new, or firing again
    resolved: list[str] = field(default_factory=list)  # summaries of alerts that stopped firing

    def __bool__(self) -> bool:
        return bool(self.fired or self.resolved)


def changes(before: AlertState, after: AlertState) -> Changes:
    """Alerts that started or stopped firing; one gone from the group has stopped (send_resolved off)."""
    fired = [
        s["summary"]
        for k, s in after.items()
        if s["status"] == "firing" and before.get(k, {}).get("status") != "firing"
    ]
    resolved = [
        (after.get(k) or s)["summary"]
        for k, s in before.items()
        if s["status"] == "firing" and after.get(k, {}).get("status") != "firing"
    ]
    return Changes(sorted(fired), sorted(resolved))


def merged(before: AlertState, after: AlertState) -> AlertState:
    """The group's state after a notification: alerts that left it are kept as resolved."""
    state = {k: {**s, "status": "resolved"} for k, s in before.items()}
    state.update(after)
    return state


def _bullets(summaries: list[str]) -> str:
    lines = [f"• {mrkdwn.escape(s)}" for s in summaries[:LIST_MAX]]
    if len(summaries) > LIST_MAX:
        lines.append(f"• …and {len(summaries) - LIST_MAX} more")
    return "\n".join(lines)


def _footer(webhook: Webhook) -> str:
    notes = []
    if webhook.truncated_alerts:
        notes.append(f"Alertmanager left out {webhook.truncated_alerts} more alert(s) (max_alerts).")
    link = http_url(webhook.external_url)
    if link:
        notes.append(f"<{link}|Open Alertmanager>")
    return ("\n" + " ".join(notes)) if notes else ""


def _plural(count: int) -> str:
    return f"{count} alert{'s' if count != 1 else ''}"


def fired_text(webhook: Webhook) -> str:
    firing = [summary_of(a, webhook) for a in webhook.firing]
    text = f":rotating_light: Alertmanager: {_plural(len(firing))} firing\n{_bullets(sorted(firing))}"
    return mrkdwn.truncate(text + _footer(webhook), TEXT_MAX)


def changed_text(change: Changes, webhook: Webhook) -> str:
    parts = [":arrows_counterclockwise: Alertmanager: the alerts changed"]
    if change.fired:
        parts.append(f"*Firing ({len(change.fired)} new):*\n{_bullets(change.fired)}")
    if change.resolved:
        parts.append(f"*Resolved ({len(change.resolved)}):*\n{_bullets(change.resolved)}")
    still = len(webhook.firing)
    parts.append(f"{_plural(still)} still firing." if still else "No alerts firing.")
    return mrkdwn.truncate("\n".join(parts) + _footer(webhook), TEXT_MAX)


def resolved_text(change: Changes, webhook: Webhook) -> str:
    listed = change.resolved or [summary_of(a, webhook) for a in webhook.alerts]
    text = (
        f":white_check_mark: Alertmanager: all alerts resolved ({len(listed)})\n{_bullets(listed)}\n"
        "Resolve the incident once you are satisfied it is over."
    )
    return mrkdwn.truncate(text + _footer(webhook), TEXT_MAX)


def resolve_offer(incident_id: str, text: str) -> list[dict[str, Any]]:
    """The resolved reply: its text and a Resolve button (the card's own action: it opens the modal)."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Resolve incident", "emoji": True},
                    "action_id": Action.RESOLVE.value,
                    "value": incident_id,
                    "style": "primary",
                }
            ],
        },
    ]
