"""Delivers the outbox to Slack: after the ack, in order, claimed so one replica sends each call.

A worker thread drains the outbox whenever a listener commits a change (`kick`) and whenever the
periodic sweep runs, so a call that failed (429 storm, 500, Slack down) is retried until it lands.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import Session

from bot import incidents, mrkdwn
from bot.blocks import card as card_blocks
from bot.blocks import messages
from bot.outbox import OutboxKind
from bot.settings import Settings
from storage.db import SessionFactory, unit_of_work
from storage.models import Escalation, Incident, Outbox, utcnow

log = logging.getLogger(__name__)

# Slack's answers that no retry can change: the call becomes a dead letter (see Outbox.dead_at).
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "msg_too_long",
        "no_text",
        "missing_scope",
        "restricted_action",
        "cant_update_message",
        "message_not_found",
        "user_not_found",
        "users_not_found",
    }
)


class ClaimLost(RuntimeError):
    """Another worker holds the row's claim now: this one must not record the delivery."""


# Renewed while a send runs (429 back-offs included): a claim that outlives it is a
# replica that died mid-send, and its call is taken over.
LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True)
class Send:
    """One Slack call prepared from the database, and what to record once Slack took it."""

    call: Callable[[WebClient], Any]
    after: Callable[[Session, Any], None] | None = None


# Reads what to send (in a short transaction); None means there is nothing left to send.
Handler = Callable[[Session, Outbox], Send | None]


class Deliverer:
    def __init__(self, sessions: SessionFactory, client: WebClient, settings: Settings) -> None:
        self.sessions = sessions
        self.client = client
        self.settings = settings
        self.worker = uuid.uuid4().hex[:12]
        self.handlers: dict[str, Handler] = {
            OutboxKind.CARD_POST.value: self._card_post,
            OutboxKind.CARD_UPDATE.value: self._card_update,
            OutboxKind.THREAD_REPLY.value: self._thread_reply,
            OutboxKind.CHANNEL_POST.value: self._channel_post,
            OutboxKind.DIGEST.value: self._digest,
        }
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()
        self._joined: set[str] = set()
        self._forward_kicks: Callable[[], None] | None = None

    # -- the worker -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def kick(self) -> None:
        """Something was committed to the outbox: deliver it soon, off the caller's thread."""
        if self._forward_kicks is not None:
            self._forward_kicks()
        else:
            self._wake.set()

    def hand_kicks_to(self, forward: Callable[[], None]) -> None:
        """In the front process the worker process delivers: kicks (an alert stored here) go to it."""
        self._forward_kicks = forward

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.deliver_pending()
            except sa.exc.SQLAlchemyError:
                # The database is away (restart, network): the next kick or sweep tries again.
                log.warning("outbox delivery paused: database unavailable", exc_info=True)

    # -- one pass -------------------------------------------------------------------------------

    def deliver_pending(self, *, limit: int = 200) -> int:
        """Send what can go now, urgent first; returns how many calls landed.

        A digest (a chart drawn in a child process, then uploads) is slow: after one, the pass
        ends and the next begins, so what became due meanwhile (an escalation) goes before the
        next digest.
        """
        with self._drain_lock:
            delivered = 0
            for row_id, kind in self._candidates(limit):
                if self._stop.is_set():
                    break
                if self._deliver_one(row_id):
                    delivered += 1
                if kind == OutboxKind.DIGEST.value:
                    self._wake.set()
                    break
            return delivered

    def _candidates(self, limit: int) -> list[tuple[int, str]]:
        """The rows that can go now, chosen in SQL (a stuck incident never fills the batch):
        - due, not leased, neither delivered nor dead;
        - no earlier row of the same incident still waiting (one that backs off holds back what
          follows, so its thread reads in order) — except cross-posts to ALERT_CHANNEL, which
          are another channel's story and must not wait on a card that cannot be posted;
        - the incident's card posted, for what goes in its thread or edits it.
        """
        now = utcnow()
        earlier = sa.orm.aliased(Outbox)
        waiting = (
            sa.select(earlier.id)
            .where(
                earlier.incident_id == Outbox.incident_id,
                earlier.id < Outbox.id,
                earlier.delivered_at.is_(None),  # type: ignore[union-attr]
                earlier.dead_at.is_(None),  # type: ignore[union-attr]
                earlier.kind != OutboxKind.CHANNEL_POST.value,
            )
            .exists()
        )
        cross_post = Outbox.kind == OutboxKind.CHANNEL_POST.value
        with unit_of_work(self.sessions) as session:
            rows = session.execute(
                sa.select(Outbox.id, Outbox.kind)
                .outerjoin(Incident, Incident.id == Outbox.incident_id)  # type: ignore[arg-type]
                .where(
                    Outbox.delivered_at.is_(None),  # type: ignore[union-attr]
                    Outbox.dead_at.is_(None),  # type: ignore[union-attr]
                    Outbox.next_attempt_at <= now,
                    sa.or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < now),  # type: ignore[union-attr]
                    sa.or_(
                        Outbox.incident_id.is_(None),  # type: ignore[union-attr]
                        cross_post,
                        sa.and_(
                            ~waiting,
                            sa.or_(Incident.card_ts.is_not(None), Outbox.kind == OutboxKind.CARD_POST.value),  # type: ignore[union-attr]
                        ),
                    ),
                )
                # Escalations, replies and cards before digests; otherwise oldest first.
                .order_by(sa.case((Outbox.kind == OutboxKind.DIGEST.value, 1), else_=0), Outbox.id)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
        return [(row_id, kind) for row_id, kind in rows]

    def _claim(self, row_id: int) -> str | None:
        token = uuid.uuid4().hex[:16]
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            result = session.execute(
                sa.update(Outbox)
                .where(
                    Outbox.id == row_id,
                    Outbox.delivered_at.is_(None),  # type: ignore[union-attr]
                    sa.or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < now),  # type: ignore[union-attr]
                )
                .values(
                    claimed_until=now + LEASE,
                    claim_token=token,
                    attempts=Outbox.attempts + 1,
                    # A card re-render, once taken, renders whatever is current when sent; a change
                    # made after this point needs its own row, so free the coalescing key now.
                    dedupe_key=sa.case((Outbox.kind == OutboxKind.CARD_UPDATE.value, None), else_=Outbox.dedupe_key),
                )
            )
            return token if result.rowcount == 1 else None  # type: ignore[attr-defined]

    def _deliver_one(self, row_id: int) -> bool:
        token = self._claim(row_id)
        if token is None:
            return False  # another replica has it
        try:
            # Three short steps, and no transaction open while Slack is being called: on SQLite a
            # transaction holds the write lock, and a slow Web API must never delay other writers.
            with unit_of_work(self.sessions) as session:
                row = session.get(Outbox, row_id)
                assert row is not None
                handler = self.handlers.get(row.kind)
                if handler is None:
                    raise LookupError(f"no handler for outbox kind {row.kind!r}")
                send = handler(session, row)
            with self._lease_kept(row_id, token):
                result = send.call(self.client) if send is not None else None
            with unit_of_work(self.sessions) as session:
                # Fenced: only the holder of the current claim records the delivery.
                marked = session.execute(
                    sa.update(Outbox)
                    .where(Outbox.id == row_id, Outbox.claim_token == token)  # type: ignore[arg-type]
                    .values(delivered_at=utcnow(), claimed_until=None)
                    .execution_options(preserve_rowcount=True)
                )
                if marked.rowcount != 1:  # type: ignore[attr-defined]
                    raise ClaimLost(row_id)
                if send is not None and send.after is not None:
                    send.after(session, result)
            return True
        except ClaimLost:
            log.warning("Slack call %s: another worker took it over while it was being sent", row_id)
            return False
        except (SlackApiError, SlackClientError, OSError) as exc:
            self._release(row_id, token, _describe(exc))
            return False
        except sa.exc.SQLAlchemyError:
            raise
        except Exception as exc:
            # A bug in a handler must not stop the rest of the outbox; it is logged with its
            # traceback and the call retried with back-off, so nothing is silently dropped.
            log.exception("outbox call %s failed", row_id)
            self._release(row_id, token, f"{type(exc).__name__}: {exc}")
            return False

    @contextlib.contextmanager
    def _lease_kept(self, row_id: int, token: str) -> Iterator[None]:
        """Renew the claim while a send runs: with 429 back-offs and connection retries one send
        may outlast LEASE, and another replica must not take the row (and post it again) meanwhile."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(LEASE.total_seconds() / 3):
                with contextlib.suppress(sa.exc.SQLAlchemyError), unit_of_work(self.sessions) as session:
                    session.execute(
                        sa.update(Outbox)
                        .where(Outbox.id == row_id, Outbox.claim_token == token)  # type: ignore[arg-type]
                        .values(claimed_until=utcnow() + LEASE)
                    )

        renewer = threading.Thread(target=renew, name=f"outbox-lease-{row_id}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()

    def _release(self, row_id: int, token: str, error: str) -> None:
        notify: tuple[str, str] | None = None
        with unit_of_work(self.sessions) as session:
            row = session.get(Outbox, row_id)
            if row is None or row.claim_token != token:
                return
            code = error.rsplit(" ", 1)[-1]
            if code in PERMANENT_ERRORS:
                row.claimed_until = None
                row.dead_at = utcnow()
                row.last_error = error[:500]
                session.add(row)
                # Once, at ERROR: retrying cannot help; an operator must (invite, scope, fix).
                log.error(
                    "Slack call %s (%s, %s) refused for good (%s); set aside as a dead letter: "
                    "see `incident-bot outbox`",
                    row.id,
                    row.kind,
                    row.incident_id,
                    code,
                )
                return
            backoff = min(timedelta(seconds=2 ** min(row.attempts, 10)), MAX_BACKOFF)
            row.claimed_until = None
            row.next_attempt_at = utcnow() + backoff
            row.last_error = error[:500]
            session.add(row)
            log.warning(
                "Slack call %s (%s, %s) failed, attempt %d, retrying in %ss: %s",
                row.id,
                row.kind,
                row.incident_id,
                row.attempts,
                int(backoff.total_seconds()),
                row.last_error,
            )
            if row.kind == OutboxKind.CARD_POST.value and row.attempts == 1 and row.payload.get("notify_user"):
                notify = (row.payload["notify_user"], messages.card_failed(row.incident_id or ""))
        if notify is not None:
            self._tell_user(*notify)

    def _tell_user(self, user_id: str, text: str) -> None:
        try:
            self.client.chat_postEphemeral(channel=self.settings.incident_channel, user=user_id, text=text)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not tell %s about a failed card either: %s", user_id, _describe(exc))

    # -- handlers -------------------------------------------------------------------------------

    def render_card(self, session: Session, incident: Incident, now: datetime) -> dict[str, Any]:
        return card_blocks.card(
            incident,
            policy=self.settings.policy(),
            now=now,
            runbook=self.runbook_for(incident),
            follow_ups=incidents.count_follow_ups(session, incident.id),
        )

    def runbook_for(self, incident: Incident) -> tuple[str, str] | None:
        if incident.runbook and "://" in incident.runbook:
            return ("Alert runbook", incident.runbook)
        name = incident.runbook if incident.runbook in self.settings.runbooks else None
        name = name or self.settings.matching_runbook(incident.severity, incident.category)
        return (name, self.settings.runbook_url(name)) if name else None

    def _card_post(self, session: Session, row: Outbox) -> Send | None:
        incident = incidents.get(session, row.incident_id or "")
        if incident.card_ts:
            return None  # posted already (by a replica that crashed before marking the row)
        message = self.render_card(session, incident, utcnow())
        incident_id = incident.id

        def call(client: WebClient) -> Any:
            response = client.chat_postMessage(channel=self.settings.incident_channel, **message)
            self._join(client, response["channel"])
            return response

        def after(session: Session, response: Any) -> None:
            incidents.card_posted(session, incident_id, channel_id=response["channel"], ts=response["ts"])

        return Send(call, after)

    def _join(self, client: WebClient, channel_id: str) -> None:
        """Be a member of the incident channel, or Slack sends no events for its threads.

        chat:write.public lets the bot post there uninvited, which would hide the problem until
        someone noticed an empty timeline. Joining is idempotent; a private channel needs an /invite.
        """
        if channel_id in self._joined:
            return
        try:
            client.conversations_join(channel=channel_id)
            self._joined.add(channel_id)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning(
                "could not join %s (%s): invite the bot there so it can record the timeline",
                channel_id,
                _describe(exc),
            )

    def _card_update(self, session: Session, row: Outbox) -> Send:
        incident = incidents.get(session, row.incident_id or "")
        message = self.render_card(session, incident, utcnow())
        channel, ts = incident.channel_id, incident.card_ts
        return Send(lambda client: client.chat_update(channel=channel, ts=ts, **message))

    def _thread_reply(self, session: Session, row: Outbox) -> Send:
        incident = incidents.get(session, row.incident_id or "")
        extra = {"blocks": row.payload["blocks"]} if row.payload.get("blocks") else {}
        channel, ts, text = incident.channel_id, incident.card_ts, row.payload["text"]
        escalation_id = row.payload.get("escalation_id")
        return Send(
            lambda client: client.chat_postMessage(channel=channel, thread_ts=ts, text=text, **extra),
            (lambda session, _: _mark_escalation(session, escalation_id)) if escalation_id else None,
        )

    def _digest(self, session: Session, row: Outbox) -> Send | None:
        # bot.digest builds on this module (Send, Deliverer), so it is imported when first needed.
        from bot import digest

        return digest.send(self, session, row)

    def _channel_post(self, session: Session, row: Outbox) -> Send:
        text = row.payload["text"]
        if row.incident_id:
            incident = incidents.get(session, row.incident_id)
            if incident.channel_id and incident.card_ts:
                text += f"\n<{mrkdwn.thread_link(incident.channel_id, incident.card_ts)}|Open the incident thread>"
        extra = {"blocks": row.payload["blocks"]} if row.payload.get("blocks") else {}
        channel = row.payload["channel"]
        return Send(lambda client: client.chat_postMessage(channel=channel, text=text, **extra))


def _mark_escalation(session: Session, escalation_id: int) -> None:
    escalation = session.get(Escalation, escalation_id)
    if escalation is not None and escalation.delivered_at is None:
        escalation.delivered_at = utcnow()
        session.add(escalation)


def _describe(exc: BaseException) -> str:
    """A one-line reason for logs: Slack's error code or the HTTP status, never a token."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = response.get("error") if isinstance(response.data, dict) else None
        return f"HTTP {response.status_code}" + (f" {error}" if error else "")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
