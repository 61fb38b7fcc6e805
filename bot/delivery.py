"""Delivers the outbox to Slack: after the ack, in order, claimed so one replica sends each call.

Two worker threads (lanes) drain the outbox whenever a listener commits a change (`kick`) and
whenever the periodic sweep runs, so a call that failed (429 storm, 500, Slack down) is retried
until it lands. One lane sends the incidents' calls (cards, thread replies, escalations and their
cross-posts), the other the digests: a digest (a chart drawn in a child process, then three upload
calls) takes seconds, and an escalation must never queue behind it.

Exactly once into Slack: every post carries message metadata naming its outbox row. When a send's
outcome is unknown (its sender died, or the request timed out after it left), the next sender
looks for that metadata in the thread or channel before posting again.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
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
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "msg_too_long",
        "no_text",
        "missing_scope",
        "not_allowed_token_type",
        "restricted_action",
        "cant_update_message",
        "message_not_found",
        "user_not_found",
        "users_not_found",
    }
)

# The message metadata event type that names the outbox row a post came from.
METADATA_EVENT = "incident_bot_outbox"
# How far back a lookup reads, before the row was written: Slack's clock and ours may differ.
LOOKUP_SKEW = timedelta(minutes=5)
LOOKUP_PAGES = 5  # of 200 messages: far more than an incident writes while one call is in doubt
_CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class ClaimLost(RuntimeError):
    """Another worker holds the row's claim now: this one must not record the delivery."""


# Renewed while a send runs (429 back-offs and connection retries included): a claim that
# outlives it is a replica that died mid-send, and its call is taken over.
LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True)
class Posted:
    """Where a post of an outbox row lands, so a sender unsure of an earlier attempt can look."""

    channel: str  # an ID, or the name the post was addressed to
    thread_ts: str | None
    since: datetime  # the row's created_at: the post cannot be older


@dataclass(frozen=True)
class Send:
    """One Slack call prepared from the database, and what to record once Slack took it.

    `after` runs in the transaction that records the delivery; `then` after it has committed
    (what must wait until the delivery is on record, such as joining the channel of a new card).
    """

    call: Callable[[WebClient], Any]
    after: Callable[[Session, Any], None] | None = None
    posted: Posted | None = None
    then: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Claim:
    token: str
    unsure: bool  # an earlier claim expired with no outcome on record: the call may be in Slack


# Reads what to send (in a short transaction); None means there is nothing left to send.
Handler = Callable[[Session, Outbox], Send | None]


@dataclass
class _Lane:
    """One delivery thread and the kinds it sends; each lane drains on its own."""

    name: str
    digests: bool
    wake: threading.Event
    lock: threading.Lock
    thread: threading.Thread | None = None


class _Leases:
    """Renews the claims of the sends in flight, from one thread, every third of LEASE.

    A send may outlast LEASE (three 429s with Retry-After, connection retries at 15 s each), and
    another replica must not take its row, and post it again, meanwhile. A replica that dies stops
    renewing, and its rows are taken over once LEASE has passed.
    """

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._held: dict[int, str] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopped = False
        self._thread: threading.Thread | None = None

    def hold(self, row_id: int, token: str) -> None:
        with self._lock:
            self._held[row_id] = token
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="outbox-leases", daemon=True)
                self._thread.start()

    def release(self, row_id: int) -> None:
        with self._lock:
            self._held.pop(row_id, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._changed.wait(LEASE.total_seconds() / 3)
                if self._stopped:
                    return
                held = dict(self._held)
            for row_id, token in held.items():
                self._renew(row_id, token)

    def _renew(self, row_id: int, token: str) -> None:
        try:
            now = utcnow()
            with unit_of_work(self.sessions) as session:
                # Only a live claim: a send that finished meanwhile left it cleared (or expired, when
                # its outcome is unknown), and renewing that would hold the row back for a lease.
                renewed = session.execute(
                    sa.update(Outbox)
                    .where(Outbox.id == row_id, Outbox.claim_token == token, Outbox.claimed_until > now)  # type: ignore[arg-type,operator]
                    .values(claimed_until=now + LEASE)
                    .execution_options(preserve_rowcount=True)
                ).rowcount  # type: ignore[attr-defined]
        except sa.exc.SQLAlchemyError as exc:
            # The next renewal tries again; should the database stay away past LEASE, another
            # replica may take the row, and the fence keeps it from being recorded twice.
            log.warning("could not renew the claim on Slack call %s: %s", row_id, type(exc).__name__)
            return
        if renewed != 1:
            # Finished meanwhile, or taken over (which the send learns, and logs, when it tries to
            # record its delivery): nothing left to renew either way.
            self.release(row_id)


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
        # Urgent first: deliver_pending() drains the lanes in this order.
        self._lanes = [
            _Lane("outbox-delivery", digests=False, wake=threading.Event(), lock=threading.Lock()),
            _Lane("outbox-digests", digests=True, wake=threading.Event(), lock=threading.Lock()),
        ]
        self._stop = threading.Event()
        self._leases = _Leases(sessions)
        self._joined: set[str] = set()
        # Channel names resolved by Slack's answers, for looking up a post whose outcome is unknown.
        self._channel_ids: dict[str, str] = {}
        self._forward_kicks: Callable[[], None] | None = None

    # -- the workers ----------------------------------------------------------------------------

    def start(self) -> None:
        for lane in self._lanes:
            lane.thread = threading.Thread(target=self._run, args=(lane,), name=lane.name, daemon=True)
            lane.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for lane in self._lanes:
            lane.wake.set()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout)
        self._leases.stop()

    def kick(self) -> None:
        """Something was committed to the outbox: deliver it soon, off the caller's thread."""
        if self._forward_kicks is not None:
            self._forward_kicks()
        else:
            # The incidents' lane looks for every kind and wakes the digest lane when it sees one:
            # one candidate query per kick (on SQLite each transaction takes the write lock).
            self._lanes[0].wake.set()

    def hand_kicks_to(self, forward: Callable[[], None]) -> None:
        """In the front process the worker process delivers: kicks (an alert stored here) go to it."""
        self._forward_kicks = forward

    def _run(self, lane: _Lane) -> None:
        while not self._stop.is_set():
            lane.wake.wait()
            lane.wake.clear()
            if self._stop.is_set():
                break
            try:
                self._drain(lane, limit=200)
            except sa.exc.SQLAlchemyError:
                # The database is away (restart, network): the next kick or sweep tries again.
                log.warning("outbox delivery paused: database unavailable", exc_info=True)

    # -- one pass -------------------------------------------------------------------------------

    def deliver_pending(self, *, limit: int = 200) -> int:
        """Send what can go now, the incidents' calls before the digests; how many calls landed."""
        return sum(self._drain(lane, limit=limit) for lane in self._lanes)

    def _drain(self, lane: _Lane, *, limit: int) -> int:
        with lane.lock:
            delivered = 0
            for row_id, kind in self._candidates(limit, only_digests=lane.digests):
                if self._stop.is_set():
                    break
                if kind == OutboxKind.DIGEST.value and not lane.digests:
                    self._lanes[1].wake.set()  # its own thread sends it, however long it takes
                    continue
                if self._deliver_one(row_id):
                    delivered += 1
            return delivered

    def _candidates(self, limit: int, *, only_digests: bool = False) -> list[tuple[int, str]]:
        """The rows that can go now, oldest first, chosen in SQL (a stuck incident never fills the batch):
        - of every kind (the incidents' lane hands the digests it sees to theirs), or only digests;
        - due, not leased, neither delivered nor dead;
        - no earlier row of the same incident still waiting (one that backs off holds back what
          follows, so its thread reads in order). A dead letter no longer holds anything back: it
          waits for an operator, and the story goes on without it. Two kinds neither wait nor hold
          back: card re-renders (they show whatever is current when sent, coalesced) and
          cross-posts to ALERT_CHANNEL (another channel's story, which must not wait on a card
          that cannot be posted; it goes without the thread link then);
        - the incident's card posted, for what goes in its thread or edits it.
        """
        now = utcnow()
        unordered = (OutboxKind.CHANNEL_POST.value, OutboxKind.CARD_UPDATE.value)
        earlier = sa.orm.aliased(Outbox)
        waiting = (
            sa.select(earlier.id)
            .where(
                earlier.incident_id == Outbox.incident_id,
                earlier.id < Outbox.id,
                earlier.delivered_at.is_(None),  # type: ignore[union-attr]
                earlier.dead_at.is_(None),  # type: ignore[union-attr]
                earlier.kind.not_in(unordered),  # type: ignore[attr-defined]
            )
            .exists()
        )
        kind = Outbox.kind == OutboxKind.DIGEST.value if only_digests else sa.true()
        with unit_of_work(self.sessions) as session:
            rows = session.execute(
                sa.select(Outbox.id, Outbox.kind)
                .outerjoin(Incident, Incident.id == Outbox.incident_id)  # type: ignore[arg-type]
                .where(
                    kind,
                    Outbox.delivered_at.is_(None),  # type: ignore[union-attr]
                    Outbox.dead_at.is_(None),  # type: ignore[union-attr]
                    Outbox.next_attempt_at <= now,
                    sa.or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < now),  # type: ignore[union-attr]
                    sa.or_(
                        Outbox.incident_id.is_(None),  # type: ignore[union-attr]
                        Outbox.kind == OutboxKind.CHANNEL_POST.value,
                        sa.and_(
                            sa.or_(Outbox.kind == OutboxKind.CARD_UPDATE.value, ~waiting),
                            sa.or_(Incident.card_ts.is_not(None), Outbox.kind == OutboxKind.CARD_POST.value),  # type: ignore[union-attr]
                        ),
                    ),
                )
                .order_by(Outbox.id)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
        return [(row_id, kind) for row_id, kind in rows]

    def _claim(self, row_id: int) -> Claim | None:
        token = uuid.uuid4().hex[:16]
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            before = session.execute(
                sa.select(Outbox.claim_token, Outbox.claimed_until).where(Outbox.id == row_id)  # type: ignore[arg-type]
            ).first()
            if before is None:
                return None
            previous_token, previous_until = before
            # Compare-and-set on the previous token: whoever wins the claim also learns, race-free,
            # whether the claim before it ended without an outcome.
            result = session.execute(
                sa.update(Outbox)
                .where(
                    Outbox.id == row_id,
                    Outbox.delivered_at.is_(None),  # type: ignore[union-attr]
                    Outbox.dead_at.is_(None),  # type: ignore[union-attr]
                    Outbox.claim_token.is_not_distinct_from(previous_token),  # type: ignore[union-attr]
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
                .execution_options(preserve_rowcount=True)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return Claim(token, unsure=previous_until is not None)

    def _deliver_one(self, row_id: int) -> bool:
        claim = self._claim(row_id)
        if claim is None:
            return False  # another replica has it
        token = claim.token
        # Until the request leaves, the outcome is as (un)known as the claim found it.
        unsure = claim.unsure
        self._leases.hold(row_id, token)
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
            result: Any = None
            if send is not None:
                found = self._find_posted(row_id, send.posted) if unsure and send.posted else None
                if found is not None:
                    log.info(
                        "Slack call %s had reached Slack before (ts %s): recorded, not sent again", row_id, found["ts"]
                    )
                    result = found
                else:
                    unsure = True  # the request leaves now; only Slack's answer settles it
                    try:
                        result = send.call(self.client)
                    except SlackApiError:
                        unsure = False  # Slack answered, and did not take it
                        raise
                    self._learn_channel(send, result)
                unsure = False
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
            if send is not None and send.then is not None:
                send.then(result)
            return True
        except ClaimLost:
            log.warning("Slack call %s: another worker took it over while it was being sent", row_id)
            return False
        except (SlackApiError, SlackClientError, OSError) as exc:
            self._release(row_id, token, exc, unsure=unsure)
            return False
        except sa.exc.SQLAlchemyError:
            # The claim expires by itself, with no outcome on record: the next sender checks Slack.
            raise
        except Exception as exc:
            # A bug in a handler must not stop the rest of the outbox; it is logged with its
            # traceback and the call retried with back-off, so nothing is silently dropped.
            log.exception("outbox call %s failed", row_id)
            self._release(row_id, token, exc, unsure=unsure)
            return False
        finally:
            self._leases.release(row_id)

    # -- a call whose outcome is unknown --------------------------------------------------------

    def _find_posted(self, row_id: int, posted: Posted) -> dict[str, Any] | None:
        """The message an earlier attempt of this row left in Slack, found by its metadata.

        A lookup Slack refuses for good (a scope, a channel the bot cannot read) cannot tell: the
        call is sent again, since a doubled message is better than a lost escalation. A lookup
        that fails for the moment raises, and the row is tried later, still in doubt.
        """
        channel = self._channel_id(posted.channel)
        if channel is None:
            log.warning(
                "Slack call %s may have reached Slack, but %s is a channel name not resolved yet: "
                "sending it again (configure the channel by ID to rule out a duplicate)",
                row_id,
                posted.channel,
            )
            return None
        oldest = f"{(posted.since - LOOKUP_SKEW).timestamp():.6f}"
        cursor: str | None = None
        try:
            for _ in range(LOOKUP_PAGES):
                args: dict[str, Any] = {
                    "channel": channel,
                    "oldest": oldest,
                    "limit": 200,
                    "include_all_metadata": True,
                }
                if cursor:
                    args["cursor"] = cursor
                if posted.thread_ts:
                    page = self.client.conversations_replies(ts=posted.thread_ts, **args)
                else:
                    page = self.client.conversations_history(**args)
                for message in page.get("messages") or []:
                    if _outbox_id(message) == row_id:
                        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    break
        except SlackApiError as exc:
            if _slack_error(exc) not in PERMANENT_ERRORS | {"thread_not_found"}:
                raise
            log.warning(
                "Slack call %s may have reached Slack, but looking cannot tell (%s): sending it again",
                row_id,
                _describe(exc),
            )
        return None

    def _channel_id(self, channel: str) -> str | None:
        if _CONVERSATION_ID.match(channel):
            return channel
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if channel == self.settings.incident_channel:
            # Every card lands in the incident channel: any incident's card names its ID.
            with unit_of_work(self.sessions) as session:
                known = session.execute(
                    sa.select(Incident.channel_id).where(Incident.channel_id.is_not(None)).limit(1)  # type: ignore[union-attr]
                ).scalar()
            if known:
                self._channel_ids[channel] = known
                return known
        return None

    def _learn_channel(self, send: Send, result: Any) -> None:
        if send.posted is None or not hasattr(result, "get"):
            return
        channel_id = result.get("channel")
        if isinstance(channel_id, str) and channel_id:
            self._channel_ids[send.posted.channel] = channel_id

    def _release(self, row_id: int, token: str, exc: BaseException, *, unsure: bool) -> None:
        error = _describe(exc)
        notify: tuple[str, str] | None = None
        with unit_of_work(self.sessions) as session:
            row = session.get(Outbox, row_id)
            if row is None or row.claim_token != token:
                return
            code = _slack_error(exc)
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
            now = utcnow()
            # A claim left expired rather than cleared marks the outcome unknown (see Outbox.claimed_until).
            row.claimed_until = now if unsure else None
            row.next_attempt_at = now + backoff
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
            mttr=incidents.open_time(session, incident) if incident.resolved_at and incident.reopened_count else None,
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
        incident_id, channel, tag = incident.id, self.settings.incident_channel, outbox_metadata(row)

        def after(session: Session, response: Any) -> None:
            incidents.card_posted(session, incident_id, channel_id=response["channel"], ts=response["ts"])

        # The card's ts is on record before the bot joins the channel: replies in its thread, whose
        # events may come as soon as the bot is a member, find their incident.
        return Send(
            lambda client: client.chat_postMessage(channel=channel, metadata=tag, **message),
            after,
            Posted(channel, None, row.created_at),
            lambda response: self._join(self.client, response["channel"]),
        )

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
        # An update is idempotent: sent twice, the card shows the same thing.
        return Send(lambda client: client.chat_update(channel=channel, ts=ts, **message))

    def _thread_reply(self, session: Session, row: Outbox) -> Send:
        incident = incidents.get(session, row.incident_id or "")
        extra = {"blocks": row.payload["blocks"]} if row.payload.get("blocks") else {}
        channel, ts, text, tag = incident.channel_id or "", incident.card_ts, row.payload["text"], outbox_metadata(row)
        escalation_id = row.payload.get("escalation_id")
        return Send(
            lambda client: client.chat_postMessage(channel=channel, thread_ts=ts, text=text, metadata=tag, **extra),
            (lambda session, _: _mark_escalation(session, escalation_id)) if escalation_id else None,
            Posted(channel, ts, row.created_at),
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
        channel, tag = row.payload["channel"], outbox_metadata(row)
        return Send(
            lambda client: client.chat_postMessage(channel=channel, text=text, metadata=tag, **extra),
            posted=Posted(channel, None, row.created_at),
        )


def outbox_metadata(row: Outbox) -> dict[str, Any]:
    """Slack message metadata naming the outbox row a post comes from (see Deliverer._find_posted)."""
    return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": row.id}}


def _outbox_id(message: dict[str, Any]) -> int | None:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    return value if isinstance(value, int) else None


def _mark_escalation(session: Session, escalation_id: int) -> None:
    escalation = session.get(Escalation, escalation_id)
    if escalation is not None and escalation.delivered_at is None:
        escalation.delivered_at = utcnow()
        session.add(escalation)


def _slack_error(exc: BaseException) -> str | None:
    """Slack's error code (`channel_not_found`, …) when Slack answered with one."""
    if not isinstance(exc, SlackApiError) or not isinstance(exc.response.data, dict):
        return None
    error = exc.response.data.get("error")
    return error if isinstance(error, str) else None


def _describe(exc: BaseException) -> str:
    """A one-line reason for logs: Slack's error code or the HTTP status, never a token."""
    if isinstance(exc, SlackApiError):
        error = _slack_error(exc)
        return f"HTTP {exc.response.status_code}" + (f" {error}" if error else "")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
