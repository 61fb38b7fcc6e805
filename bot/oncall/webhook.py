"""The page webhook: each page as signed JSON to PAGE_WEBHOOK_URL, with its outcome classified.

Signature (CONTRACT.md): `X-Incident-Bot-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`
keyed with PAGE_WEBHOOK_SECRET, and `X-Incident-Bot-Timestamp: <unix seconds>`, so a receiver can
refuse both forgeries and replays. Outcomes: 2xx sent; 5xx, 408, 429, timeouts and connection
errors are retried with capped exponential back-off; any other 4xx is permanent (a dead letter).
Standard library only (urllib); `opener` is injectable for tests that do not want a socket.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

SIGNATURE_HEADER = "X-Incident-Bot-Signature"
TIMESTAMP_HEADER = "X-Incident-Bot-Timestamp"
# The notice's stable name (bot.oncall.email.notice_key), also the body's `idempotency_key`: the
# same on every attempt, so a relay drops a call repeated after a lost answer or a crash.
IDEMPOTENCY_HEADER = "Idempotency-Key"
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class WebhookResult:
    outcome: Literal["sent", "retry", "dead"]
    status: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None  # set when outcome == "retry"


def page_payload(
    *,
    incident: dict[str, Any],
    person: dict[str, Any],
    acknowledge_url: str | None,
    step: int,
    sent_at: datetime,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The body: incident {id, title, severity, status, thread_url}, person {user_id, name?, email?,
    phone?} (absent details left out), acknowledge_url, step, sent_at (ISO 8601 UTC), and the
    notice's idempotency_key (the Idempotency-Key header's value)."""
    key = {"idempotency_key": idempotency_key} if idempotency_key else {}
    return key | {
        "incident": {key: incident.get(key) for key in ("id", "title", "severity", "status", "thread_url")},
        "person": {"user_id": person["user_id"]}
        | {key: person[key] for key in ("name", "email", "phone") if person.get(key)},
        "acknowledge_url": acknowledge_url,
        "step": step,
        "sent_at": sent_at.isoformat().replace("+00:00", "Z"),
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: datetime, tolerance: int = 300) -> bool:
    """What a receiver checks: the signature, in constant time, and a timestamp within `tolerance` s."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt `attempt` (1, 2, …): 30 s, 1 min, 2 min, … at most an hour."""
    # Capped exponent too: 2**attempt for a long-dead receiver would overflow timedelta.
    return min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(max(0, attempt - 1), 20)))


def send_page_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str,
    now: datetime,
    attempt: int = 1,
    timeout: float = 10.0,
    opener: urllib.request.OpenerDirector | None = None,
) -> WebhookResult:
    """POST the signed payload once and classify the outcome (never raises for HTTP or network errors).

    The payload's `idempotency_key`, when it has one, also goes as the Idempotency-Key header."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "incident-bot",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        | ({IDEMPOTENCY_HEADER: str(payload["idempotency_key"])} if payload.get("idempotency_key") else {}),
    )
    retry_at = now + backoff(attempt)
    try:
        with (opener or _OPENER).open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        exc.close()
    except (TimeoutError, socket.timeout):  # noqa: UP041  (kept explicit: urllib raises either)
        return WebhookResult("retry", error="timed out", next_attempt_at=retry_at)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return WebhookResult("retry", error=f"connection failed: {reason}", next_attempt_at=retry_at)
    if 200 <= status < 300:
        return WebhookResult("sent", status=status)
    if status >= 500 or status in RETRYABLE_4XX:
        return WebhookResult("retry", status=status, error=f"HTTP {status}", next_attempt_at=retry_at)
    return WebhookResult("dead", status=status, error=f"HTTP {status}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would replay the signed body to wherever it points: treat it as a 3xx answer.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())
