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
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import col

from bot.incidents.outbox import OutboxKind
from bot.settings import Settings
from bot.slack import leases
from bot.slack.blocks import messages
from bot.slack.lookup import PostedLookup
from bot.slack.outbox_kinds import OutboxKinds
from bot.slack.sends import (
    PERMANENT_ERRORS,
    Claim,
    ClaimLost,
    Handler,
    describe,
    slack_error,
)
from storage.db import SessionFactory, unit_of_work
from storage.models import Incident, Outbox, utcnow

log = logging.getLogger(__name__)


FIRST_RETRY = timedelta(seconds=2)  # then twice as long each time: 2, 4, 8 s … up to MAX_BACKOFF
MAX_BACKOFF = timedelta(minutes=5)


def retry_backoff(attempts: int) -> timedelta:
    """How long a row waits after its `attempts`-th failed try (a row is never given up on)."""
    return min(FIRST_RETRY * 2 ** (min(max(attempts, 1), 10) - 1), MAX_BACKOFF)


@dataclass
class _Lane:
    """One delivery thread and the kinds it sends; each lane drains on its own."""

    name: str
    digests: bool
    wake: threading.Event
    lock: threading.Lock
    thread: threading.Thread | None = None


class Deliverer(OutboxKinds, PostedLookup):
    """Sends the outbox to Slack from two lanes; the per-kind calls come from OutboxKinds."""

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
        }
        # Urgent first: deliver_pending() drains the lanes in this order.
        self._lanes = [
            _Lane("outbox-delivery", digests=False, wake=threading.Event(), lock=threading.Lock()),
            _Lane("outbox-digests", digests=True, wake=threading.Event(), lock=threading.Lock()),
        ]
        self._stop = threading.Event()
        self._leases = leases.Leases(sessions)
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

    def register(self, kind: OutboxKind, handler: Handler) -> None:
        """Add the handler of a kind defined elsewhere (the digests register theirs when the app is wired)."""
        self.handlers[kind.value] = handler

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
          that cannot be posted; it goes without the thread link then). A page's DM does not wait
          or hold back either (a page must not queue behind a reply that backs off), but waits
          for the card, for its thread link;
        - the incident's card posted, for what goes in its thread or edits it.
        """
        now = utcnow()
        # A page's DM must not wait behind the thread's story either (a reply backing off).
        unordered = (OutboxKind.CHANNEL_POST.value, OutboxKind.CARD_UPDATE.value, OutboxKind.PAGE_DM.value)
        earlier = sa.orm.aliased(Outbox)
        waiting = (
            sa.select(col(earlier.id))
            .where(
                col(earlier.incident_id) == col(Outbox.incident_id),
                col(earlier.id) < col(Outbox.id),
                col(earlier.delivered_at).is_(None),
                col(earlier.dead_at).is_(None),
                col(earlier.kind).not_in(unordered),
            )
            .exists()
        )
        kind = col(Outbox.kind) == OutboxKind.DIGEST.value if only_digests else sa.true()
        with unit_of_work(self.sessions) as session:
            rows = session.execute(
                sa.select(col(Outbox.id), col(Outbox.kind))
                .outerjoin(Incident, col(Incident.id) == col(Outbox.incident_id))
                .where(
                    kind,
                    col(Outbox.delivered_at).is_(None),
                    col(Outbox.dead_at).is_(None),
                    col(Outbox.next_attempt_at) <= now,
                    sa.or_(col(Outbox.claimed_until).is_(None), col(Outbox.claimed_until) < now),
                    sa.or_(
                        col(Outbox.incident_id).is_(None),
                        col(Outbox.kind) == OutboxKind.CHANNEL_POST.value,
                        sa.and_(
                            sa.or_(col(Outbox.kind).in_(unordered[1:]), ~waiting),
                            sa.or_(col(Incident.card_ts).is_not(None), col(Outbox.kind) == OutboxKind.CARD_POST.value),
                        ),
                    ),
                )
                .order_by(col(Outbox.id))
                .limit(limit)
            ).all()
        return [(row_id, kind) for row_id, kind in rows]

    def _claim(self, row_id: int) -> Claim | None:
        token = uuid.uuid4().hex[:16]
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            before = session.execute(
                sa.select(
                    col(Outbox.claim_token), col(Outbox.claimed_until), col(Outbox.kind), col(Outbox.incident_id)
                ).where(col(Outbox.id) == row_id)
            ).first()
            if before is None:
                return None
            previous_token, previous_until, kind, incident_id = before
            busy = kind == OutboxKind.CARD_UPDATE.value and incident_id is not None
            if busy and self._card_update_in_flight(session, str(incident_id), now):
                return None  # taken again once that one is done: it renders what is current then
            # Compare-and-set on the previous token: whoever wins the claim also learns, race-free,
            # whether the claim before it ended without an outcome.
            result = session.execute(
                sa.update(Outbox)
                .where(
                    col(Outbox.id) == row_id,
                    col(Outbox.delivered_at).is_(None),
                    col(Outbox.dead_at).is_(None),
                    col(Outbox.claim_token).is_not_distinct_from(previous_token),
                    sa.or_(col(Outbox.claimed_until).is_(None), col(Outbox.claimed_until) < now),
                )
                .values(
                    claimed_until=now + leases.LEASE,
                    claim_token=token,
                    attempts=Outbox.attempts + 1,
                    # A card re-render, once taken, renders whatever is current when sent; a change
                    # made after this point needs its own row, so free the coalescing key now.
                    dedupe_key=sa.case(
                        (col(Outbox.kind) == OutboxKind.CARD_UPDATE.value, None), else_=col(Outbox.dedupe_key)
                    ),
                )
                .execution_options(preserve_rowcount=True)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return Claim(token, unsure=previous_until is not None)

    def _card_update_in_flight(self, session: sa.orm.Session, incident_id: str, now: Any) -> bool:
        """Whether another re-render of this incident's card is claimed and not yet done.

        A re-render renders when it is taken, so two in flight at once (two lanes, two replicas)
        could reach Slack in the wrong order and leave the card showing the older state. One at a
        time per incident: on PostgreSQL the incident's row is locked first, so two claimers take
        turns and the second sees the first's claim (SQLite has one writer at a time).
        """
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.select(col(Incident.id)).where(col(Incident.id) == incident_id).with_for_update())
        other = session.execute(
            sa.select(col(Outbox.id))
            .where(
                col(Outbox.incident_id) == incident_id,
                col(Outbox.kind) == OutboxKind.CARD_UPDATE.value,
                col(Outbox.delivered_at).is_(None),
                col(Outbox.dead_at).is_(None),
                col(Outbox.claimed_until) > now,
            )
            .limit(1)
        ).first()
        return other is not None

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
                    .where(col(Outbox.id) == row_id, col(Outbox.claim_token) == token)
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

    def _release(self, row_id: int, token: str, exc: BaseException, *, unsure: bool) -> None:
        error = describe(exc)
        notify: tuple[str, str] | None = None
        with unit_of_work(self.sessions) as session:
            row = session.get(Outbox, row_id)
            if row is None or row.claim_token != token:
                return
            code = slack_error(exc)
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
            backoff = retry_backoff(row.attempts)
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
            log.warning("could not tell %s about a failed card either: %s", user_id, describe(exc))

    # -- handlers -------------------------------------------------------------------------------
