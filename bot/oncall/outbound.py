"""Sending the e-mail and webhook notices a paging sweep claimed, and recording each outcome once.

Each notice is sent outside any transaction, then settled through its fenced claim
(bot/oncall/service.mark_sent / mark_failed): a sender whose lease ran out records nothing.
Failures are retried with back-off; a permanent one (a webhook's 4xx, or too many attempts) is a
dead letter, logged once at ERROR and counted in `/healthz?detail=1` (`page_dead_letters`), listed
and queued again by `incident-bot outbox [retry]` and shown in App Home (bot/oncall/dead_letters.py).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.oncall import service
from bot.oncall.config import OnCallConfig
from bot.oncall.email import EmailError, PageEmail, compose_page_email, notice_key, send_email
from bot.oncall.paging import LIST_TARGET, MAX_ATTEMPTS, EmailLookup, Outbound
from bot.oncall.webhook import backoff, page_payload, send_page_webhook
from storage.db import SessionFactory, unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Senders:
    """Where e-mail and webhooks go (from Settings), and how to find a person's address."""

    smtp_url: str | None = None
    email_from: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    email_lookup: EmailLookup | None = None  # Slack's profile (users.info), after `people:`
    tls_context: ssl.SSLContext | None = None  # tests trust a throw-away certificate
    clock: Callable[[], datetime] | None = None


def email_for(config: OnCallConfig, user: str, lookup: EmailLookup | None) -> str | None:
    person = config.people.get(user)
    if person is not None and person.email:
        return person.email
    return lookup(user) if lookup is not None else None


def send_outbound(sessions: SessionFactory, config: OnCallConfig, items: list[Outbound], senders: Senders,
                  *, now: datetime) -> int:
    """Send each claimed e-mail / webhook notice once and record its outcome; how many were sent."""
    sent = 0
    for item in items:
        try:
            outcome, error, retry_at = _send(config, item, senders, now)
        except Exception as exc:  # a bug here must not drop the other notices; the claim is retried
            log.exception("page notice %s (%s) failed", item.claim.id, item.claim.channel)
            outcome, error, retry_at = "retry", type(exc).__name__, now + backoff(item.claim.attempt)
        if outcome == "retry" and item.claim.attempt >= MAX_ATTEMPTS:
            outcome, retry_at = "dead", None
        try:
            with unit_of_work(sessions) as session:
                if outcome == "sent":
                    service.mark_sent(session=session, claim=item.claim, now=now)
                else:
                    service.mark_failed(session=session, claim=item.claim, now=now, error=error or "failed",
                                        retry_at=retry_at if outcome == "retry" else None)
        except service.ClaimLost:
            log.warning("page notice %s: another sender took it over; its outcome is theirs", item.claim.id)
            continue
        if outcome == "sent":
            sent += 1
        elif outcome == "dead":
            log.error("page notice %s (%s to %s, %s) set aside for good: %s", item.claim.id, item.claim.channel,
                      item.claim.target, item.incident["id"], error)
        else:
            log.warning("page notice %s (%s) failed, attempt %d, retrying: %s", item.claim.id, item.claim.channel,
                        item.claim.attempt, error)
    return sent


def _send(config: OnCallConfig, item: Outbound, senders: Senders,
          now: datetime) -> tuple[str, str | None, datetime | None]:
    claim = item.claim
    if claim.channel == "webhook":
        if not senders.webhook_url or not senders.webhook_secret:
            return "sent", None, None  # turned off since it was claimed: nothing to send
        person = {"user_id": claim.target} | _contact(config, claim.target)
        payload = page_payload(incident=item.incident, person=person, acknowledge_url=None, step=claim.step + 1,
                               sent_at=now, idempotency_key=notice_key(item.incident["id"], claim.id))
        result = send_page_webhook(senders.webhook_url, payload, secret=senders.webhook_secret, now=now,
                                   attempt=claim.attempt)
        return result.outcome, result.error, result.next_attempt_at
    if not senders.smtp_url:
        return "sent", None, None
    if claim.target == LIST_TARGET:
        to = list(config.email.to) if config.email else []
    else:
        address = email_for(config, claim.target, senders.email_lookup)
        to = [address] if address else []
    if not to:
        log.info("page notice %s: no e-mail address for %s; paged through Slack only", claim.id, claim.target)
        return "sent", None, None
    sender = senders.email_from or f"incident-bot@{socket.getfqdn()}"
    incident = item.incident
    message = compose_page_email(
        PageEmail(incident["id"], incident["title"], incident["severity"], incident["status"],
                  incident["thread_url"], step=f"step {claim.step + 1}"),
        to=to, sender=sender, now=now, notice_id=claim.id,
    )
    try:
        send_email(message, smtp_url=senders.smtp_url, tls_context=senders.tls_context)
    except EmailError as exc:
        return "retry", str(exc), now + backoff(claim.attempt)
    return "sent", None, None


def _contact(config: OnCallConfig, user: str) -> dict[str, str]:
    person = config.people.get(user)
    if person is None:
        return {}
    return {key: value for key, value in (("name", person.name), ("email", person.email), ("phone", person.phone))
            if value}
