"""Alertmanager webhook -> incidents: validate, store once, answer, and let the outbox tell Slack.

One notification is one transaction: its dedupe key (group, alerts, status) is claimed with an
INSERT … ON CONFLICT DO NOTHING alongside the work, so Alertmanager's retries and an HA pair's
twin deliveries, even to two replicas in the same instant, change the database once. Slack is
only told through the outbox, after the response: a Slack outage never makes Alertmanager retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlmodel import Session, select

from bot import incidents, mrkdwn
from bot.forms import TITLE_MAX, DeclareForm, parse_title
from bot.ids import Action
from bot.outbox import OutboxKind, enqueue, insert_ignoring_conflict
from bot.runtime import Runtime
from bot.runtime.http import Route
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import SEVERITIES, AlertNotification, Incident, SystemEvent, TimelineEntry, utcnow
from storage.models import Status as S

log = logging.getLogger(__name__)

PATH = "/alerts/alertmanager"

# The `severity` label's conventional values; P0…P3 are also taken as they are (any case).
SEVERITY_LABELS = {"critical": "P0", "high": "P1", "error": "P1", "warning": "P2", "info": "P3"}
# PostgreSQL cannot index a text value much over 2.7 kB, and alert_group_open is a unique index.
GROUP_KEY_MAX_BYTES = 2048
URL_MAX = 2000
LIST_MAX = 20  # alerts named in one thread reply; the rest are counted
TEXT_MAX = 2900  # under Block Kit's 3,000 for a section
ALERT_EVENTS = (SystemEvent.ALERT_FIRED.value, SystemEvent.ALERT_UPDATED.value, SystemEvent.ALERT_RESOLVED.value)
JSON_HEADERS = {"Content-Type": "application/json"}
# The database is away (restart, failover, locked, not migrated yet): Alertmanager retries a 5xx.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sa.exc.ProgrammingError)
DECLARE_ATTEMPTS = 3


class WebhookError(ValueError):
    """The body is not an Alertmanager webhook notification; the message says why (HTTP 400)."""


# -- the webhook format (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)


def _text_timestamp(value: Any) -> Any:
    # RFC 3339 text only: pydantic would otherwise read 1700000000 as a Unix time.
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]", value):
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2024-05-01T12:00:00Z")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


def _empty_if_null(value: Any) -> Any:
    # Go marshals an empty map as null in some senders; it means "no labels".
    return {} if value is None else value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_timestamp), AfterValidator(_utc)]
KV = Annotated[dict[str, str], BeforeValidator(_empty_if_null)]
AlertStatus = Literal["firing", "resolved"]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    status: AlertStatus
    labels: dict[str, str]
    annotations: KV = Field(default_factory=dict)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Timestamp | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @property
    def key(self) -> str:
        """Alertmanager's fingerprint, or one made from the labels when a sender leaves it out."""
        if self.fingerprint:
            return self.fingerprint
        return "labels:" + hashlib.sha256(json.dumps(sorted(self.labels.items())).encode()).hexdigest()[:16]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class Webhook(BaseModel):
    """An Alertmanager webhook notification, version 4."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: AlertStatus
    receiver: str = ""
    group_labels: KV = Field(default_factory=dict, alias="groupLabels")
    common_labels: KV = Field(default_factory=dict, alias="commonLabels")
    common_annotations: KV = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[WebhookAlert] = Field(min_length=1)

    @property
    def firing(self) -> list[WebhookAlert]:
        return [a for a in self.alerts if a.status == "firing"]


def parse_webhook(body: bytes) -> Webhook:
    """The notification in `body`, or WebhookError naming what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookError("body is not JSON (expected an Alertmanager webhook notification)") from None
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(data), "null")
        raise WebhookError(f"body is a JSON {kind}, not an object (an Alertmanager notification)")
    try:
        webhook = Webhook.model_validate(data)
    except ValidationError as exc:
        raise WebhookError(_reason(exc)) from None
    if len(webhook.group_key.encode()) > GROUP_KEY_MAX_BYTES:
        raise WebhookError(f"groupKey: longer than {GROUP_KEY_MAX_BYTES} bytes")
    return webhook


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or "body"
        parts.append(f"{loc}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return mrkdwn.truncate("; ".join(parts) + (f" (and {more} more)" if more > 0 else ""), 500)


# -- mapping a notification to an incident (pure) -----------------------------------------------


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


def declaration(
    webhook: Webhook, *, default_severity: str, now: datetime
) -> tuple[DeclareForm, incidents.DeclareExtras]:
    alertname = alertname_of(webhook)
    first = (webhook.firing or webhook.alerts)[0]
    form = DeclareForm(
        title=title_of(webhook),
        severity=severity_of(webhook, default_severity),
        detection=f"Alertmanager: {alertname or 'alert'}",
        detection_url=next((u for u in (http_url(a.generator_url) for a in webhook.firing) if u), None)
        or http_url(first.generator_url),
    )
    extras = incidents.DeclareExtras(
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


# -- what changed between notifications ------------------------------------------------------------

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


# -- thread replies ------------------------------------------------------------------------------


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


# -- the service -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    incident_id: str | None
    declared: bool = False
    duplicate: bool = False
    changed: bool = False  # something was written for Slack


def open_incident(session: Session, group_key: str) -> Incident | None:
    """The group's open incident, locked: notifications for one group are taken one at a time."""
    statement = select(Incident).where(Incident.alert_group_open == group_key).with_for_update()
    return session.exec(statement).first()


def last_state(session: Session, incident_id: str) -> AlertState:
    statement = (
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id, TimelineEntry.event.in_(ALERT_EVENTS))  # type: ignore[union-attr]
        # By id, not time: entries for a group are written one at a time under its incident's row
        # lock, so the newest id is the latest state whatever the replicas' clocks say.
        .order_by(TimelineEntry.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    entry = session.exec(statement).first()
    alerts = entry.data.get("alerts") if entry is not None else None
    return alerts if isinstance(alerts, dict) else {}


def receive(session: Session, webhook: Webhook, *, settings: Settings, now: datetime) -> Outcome:
    """Take one notification in the caller's transaction. Raises IntegrityError if another
    transaction declared the group's incident first: roll back and call again (it is then an update)."""
    key = dedupe_key(webhook)
    claimed = insert_ignoring_conflict(
        session,
        AlertNotification,
        {"dedupe_key": key, "group_key": webhook.group_key, "status": webhook.status, "received_at": now},
    )
    if not claimed:
        seen = session.get(AlertNotification, key)
        return Outcome(incident_id=seen.incident_id if seen else None, duplicate=True)

    incident = open_incident(session, webhook.group_key)
    if incident is None and webhook.status == "resolved":
        # Nothing open for this group (resolved by hand already, or never seen firing).
        return Outcome(incident_id=None)

    state = state_of(webhook)
    data: dict[str, Any] = {"group_key": webhook.group_key, "notification": key}
    if incident is None:
        form, extras = declaration(webhook, default_severity=settings.alert_default_severity, now=now)
        incident = incidents.declare(session, form, declared_by=None, policy=settings.policy(), now=now, extras=extras)
        text = fired_text(webhook)
        incidents.add_system_entry(
            session, incident, SystemEvent.ALERT_FIRED, text, author=None, now=now, data={**data, "alerts": state}
        )
        _reply(session, incident.id, key, text, now=now)
        outcome = Outcome(incident_id=incident.id, declared=True, changed=True)
    else:
        before = last_state(session, incident.id)
        change = changes(before, state)
        if not change:
            outcome = Outcome(incident_id=incident.id)  # a repeat: nothing new to say
        elif webhook.status == "resolved":
            text = resolved_text(change, webhook)
            incidents.add_system_entry(
                session,
                incident,
                SystemEvent.ALERT_RESOLVED,
                text,
                author=None,
                now=now,
                data={**data, "alerts": merged(before, state)},
            )
            _reply(session, incident.id, key, text, now=now, blocks=resolve_offer(incident.id, text))
            if settings.alert_auto_mitigate and incident.status == S.INVESTIGATING:
                incidents.mitigate(
                    session,
                    incident.id,
                    user=None,
                    policy=settings.policy(),
                    now=now,
                    at=ended_at_of(webhook, now),
                    note="its alerts resolved",
                )
            outcome = Outcome(incident_id=incident.id, changed=True)
        else:
            text = changed_text(change, webhook)
            incidents.add_system_entry(
                session,
                incident,
                SystemEvent.ALERT_UPDATED,
                text,
                author=None,
                now=now,
                data={**data, "alerts": merged(before, state)},
            )
            _reply(session, incident.id, key, text, now=now)
            outcome = Outcome(incident_id=incident.id, changed=True)
    session.execute(
        sa.update(AlertNotification).where(AlertNotification.dedupe_key == key).values(incident_id=incident.id)  # type: ignore[arg-type]
    )
    return outcome


def _reply(
    session: Session,
    incident_id: str,
    key: str,
    text: str,
    *,
    now: datetime,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = blocks
    enqueue(
        session, OutboxKind.THREAD_REPLY, incident_id=incident_id, payload=payload, dedupe_key=f"alert:{key}", now=now
    )


def take(sessions: SessionFactory, webhook: Webhook, *, settings: Settings, now: datetime | None = None) -> Outcome:
    """`receive` in its own transaction, again as an update when a replica declared first."""
    for attempt in range(1, DECLARE_ATTEMPTS + 1):
        try:
            with unit_of_work(sessions) as session:
                return receive(session, webhook, settings=settings, now=now or utcnow())
        except sa.exc.IntegrityError:
            if attempt == DECLARE_ATTEMPTS:
                raise
            log.info(
                "alert group %r was declared concurrently; taking the notification as an update", webhook.group_key
            )
    raise AssertionError("unreachable")


# -- the HTTP route --------------------------------------------------------------------------------


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
