"""The Alertmanager webhook payload (version 4) as a validated model, with one-line reasons for what is malformed."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot import mrkdwn

# PostgreSQL cannot index a text value much over 2.7 kB, and alert_group_open is a unique index.
GROUP_KEY_MAX_BYTES = 2048


URL_MAX = 2000


class WebhookError(ValueError):
    """The body is not an Alertmanager webhook notification; the message says why (HTTP 400)."""


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
