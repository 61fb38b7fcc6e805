"""Inbox workers: claim stored Slack requests and do their work, once, on any replica.

One claiming thread takes batches of requests (storage/inbox.py says how claims are fenced) and
hands each to a pool thread, which dispatches it to the WORK app (bot/app.py). The request is
marked done in the same transaction as the work's first write (storage.db.on_first_write), so:
- killed before that commit: the request is still pending, and is taken again when its lease
  ends (at once, when the front process restarts a worker it saw die: `release`);
- killed after it: the work is in, and the request is done;
- outlived its lease and was taken over: our write fails its fence and rolls back.
Work that writes nothing (a read-only answer, a modal) is marked done when it returns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
from slack_bolt import App, BoltRequest
from sqlmodel import Session

from bot.slack import reply_batch
from bot.slack.context import Runtime
from bot.slack.listeners import WorkDeferred
from storage import db, inbox, spool
from storage.models import utcnow

log = logging.getLogger(__name__)

# Threads blocked on the Web API cost no CPU; with few of them a slow Slack queued everything
# behind a handful of sleeping calls.
THREADS = 32
# A worker that stops answering (SIGSTOP, a dead host) loses its requests to another after this;
# a live one renews the lease of what it holds every LEASE / 3.
LEASE = timedelta(seconds=30)
# How often the inbox is read without a wake-up: rows of a dead replica, expired leases.
POLL_SECONDS = 1.0
# A burst of acks (wake-ups less than BURST_QUIET apart): the claim waits for the burst to end, at
# most BURST_LIMIT, and then takes it in a few claims. A lone request waits BURST_QUIET, for the
# requests stored just after it; see _yield_to_a_burst.
BURST_QUIET = 0.025
BURST_LIMIT = 0.2
# How soon work that found the database unavailable is tried again.
RETRY_DELAY = timedelta(seconds=2)
# Requests claimed per free thread: thread replies go many to a task (bot/slack/reply_batch.py),
# so a claim sized to the free threads alone would starve the batches.
CLAIMS_PER_THREAD = 2
# Thread replies stored in one transaction at most.
REPLY_BATCH = 50
BATCH_WRITERS = 4
# A request taken this many times without finishing (each time its worker died) is set aside.
MAX_ATTEMPTS = 5


def _monotonic() -> float:
    # The system's clock, not time.monotonic, which the tests that freeze time stop too.
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class _FirstWrite:
    """Marks the claimed request done inside the first unit of work that writes (see module doc)."""

    def __init__(self, claim: inbox.Claim) -> None:
        self.claim = claim
        self.done = False

    def __call__(self, session: Session) -> None:
        if self.done:
            return
        self.done = True
        inbox.settle(session.connection(), self.claim, now=utcnow())


class InboxWorker:
    def __init__(
        self,
        rt: Runtime,
        app: App,
        *,
        worker_id: str | None = None,
        threads: int = THREADS,
        lease: timedelta = LEASE,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.rt = rt
        self.app = app
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.threads = threads
        self.lease = lease
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        # When the last wake came (the front stored a request, or forwarded an outbox kick), when
        # its burst began, and which burst the claim loop has waited for (_yield_to_a_burst), on
        # _monotonic()'s clock.
        self._woken_at = self._burst_began = float("-inf")
        self._waited_for: float | None = None
        self._stopping = threading.Event()
        self._in_hand: dict[int, inbox.Claim] = {}
        self._tasks = 0  # pool tasks submitted and not finished
        # Reply batches writing at once: past a few they only queue on SQLite's writer lock or on
        # the incident's row (the `message` listener's TIMELINE_WRITERS, for the same reason).
        self._batch_writers = threading.BoundedSemaphore(BATCH_WRITERS)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inbox")
        self._thread: threading.Thread | None = None
        self._spool = spool.for_engine(rt.engine)

    def start(self) -> InboxWorker:
        self._thread = threading.Thread(target=self._claim_loop, name="inbox-claim", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """A request was stored: claim it now rather than at the next poll."""
        now = _monotonic()
        if now - self._woken_at >= BURST_QUIET:
            self._burst_began = now
        self._woken_at = now
        self._wake.set()

    def stop(self) -> None:
        """Claim nothing more; finish what is in hand (a SIGTERM must not cut work short)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        # The claim loop renewed the leases; while the pool drains, this does, or a long drain
        # would hand the queued requests to another replica mid-way.
        drained = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(drained,), name="inbox-renew", daemon=True)
        renewer.start()
        self._pool.shutdown(wait=True)
        drained.set()
        renewer.join()

    def _renew_until(self, done: threading.Event) -> None:
        while not done.wait(self.lease.total_seconds() / 3):
            self._renew()

    def in_hand(self) -> int:
        with self._lock:
            return len(self._in_hand)

    # -- inside ---------------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        renewed = utcnow()
        while not self._stopping.is_set():
            self._yield_to_a_burst()
            if self._stopping.is_set():
                break  # stopped during the wait: claim nothing more (see stop)
            claims = self._claim()
            self._submit(claims)
            if utcnow() - renewed >= self.lease / 3:
                self._renew()
                renewed = utcnow()
            if not claims or self._free_threads() <= 0:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _yield_to_a_burst(self) -> None:
        """While the front is storing requests, wait until it has been quiet for BURST_QUIET, at
        most BURST_LIMIT from here, once per burst (a spike broken by quiet gaps is several).

        The acks must answer within Slack's 3 s; the work after them can wait a moment. In a burst
        (an incident's first minute: a flurry of replies and clicks), this process, its database
        work and the front share the cores, and work done during the burst slowed the acks
        still coming in: at 32 requests at once the bot's ack latency rose through each burst
        of 100 (benchmarks/bot_bench.py). Waiting for the end of the burst, or BURST_LIMIT,
        moves that work after it, and claims the burst in a few transactions rather than dozens.
        Under a load that never pauses the wait is taken once, at its start, and the work then
        goes alongside the acks. A lone request is claimed BURST_QUIET after it was stored (the
        wait for the requests stored just after it was 5 ms). The gaps are measured where the
        wakes arrive, after the pipe: a late one only starts another burst, with its own wait.
        """
        now, burst = _monotonic(), self._burst_began
        if now - self._woken_at >= BURST_QUIET or self._waited_for == burst:
            return  # quiet, or this burst had its wait
        self._waited_for = burst
        deadline = now + BURST_LIMIT
        while not self._stopping.is_set():
            now = _monotonic()
            until = min(self._woken_at + BURST_QUIET, deadline)
            if now >= until:
                return
            self._stopping.wait(until - now)

    def _free_threads(self) -> int:
        with self._lock:
            return self.threads - self._tasks

    def _submit(self, claims: list[inbox.Claim]) -> None:
        """One task per request, except thread replies: REPLY_BATCH of them to a task."""
        replies: list[reply_batch.QueuedReply] = []
        tasks: list[Callable[[], None]] = []
        for claim in claims:
            reply = reply_batch.reply_of(self.rt, claim) if claim.attempt <= MAX_ATTEMPTS else None
            if reply is None:
                tasks.append(partial(self._run, claim))
            else:
                replies.append(reply)
        for start in range(0, len(replies), REPLY_BATCH):
            tasks.append(partial(self._run_replies, replies[start : start + REPLY_BATCH]))
        with self._lock:
            self._tasks += len(tasks)
        for task in tasks:
            self._pool.submit(self._task, task)

    def _task(self, task: Callable[[], None]) -> None:
        try:
            task()
        finally:
            with self._lock:
                self._tasks -= 1
            self._wake.set()  # a thread is free: the claim loop may be waiting for one

    def _claim(self) -> list[inbox.Claim]:
        free_threads = self._free_threads()
        if free_threads <= 0:
            return []
        # At least a batch's worth, or a busy pool (one thread freed at a time) would claim two
        # requests at a wake-up and the batches would shrink to two replies just under load.
        free = max(free_threads * CLAIMS_PER_THREAD, REPLY_BATCH)
        moved = 0
        try:
            with self.rt.engine.begin() as connection:
                if self._spool is not None:  # SQLite: the acks wait there (storage/spool.py)
                    moved = self._spool.move(connection)
                claims = inbox.claim(connection, worker=self.worker_id, limit=free, lease=self.lease, now=utcnow())
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            if not db.is_disconnect(exc):
                log.exception("could not claim Slack requests from the inbox")
            else:
                log.warning("could not claim Slack requests: the database is unavailable")
            self._stopping.wait(self.poll_seconds)
            return []
        with self._lock:
            self._in_hand.update((claim.id, claim) for claim in claims)
        if moved and self._spool is not None:
            try:
                self._spool.forget(moved)
            except sqlite3.Error as exc:  # moved again next time, where their keys insert nothing
                log.warning("could not clear the intake spool (%s)", exc)
        return claims

    def _renew(self) -> None:
        with self._lock:
            held = list(self._in_hand.values())
        if not held:
            return
        try:
            with self.rt.engine.begin() as connection:
                inbox.renew(connection, held, lease=self.lease, now=utcnow())
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not renew inbox leases (%s)", type(exc).__name__)

    def _run(self, claim: inbox.Claim) -> None:
        try:
            if claim.attempt > MAX_ATTEMPTS:
                log.error("Slack request %d was taken %d times without finishing; set aside", claim.id, claim.attempt)
                self._finish(claim, error=f"abandoned after {claim.attempt - 1} attempts")
                return
            first_write = _FirstWrite(claim)
            with db.on_first_write(first_write):
                try:
                    self.app.dispatch(_request(claim))
                except WorkDeferred:
                    self._defer(claim)
                    return
                except Exception:
                    # The listeners log their own failures; this is Bolt itself failing.
                    log.exception("Slack request %d could not be dispatched", claim.id)
            if not first_write.done:
                self._finish(claim)
        finally:
            self._forget([claim])

    def _run_replies(self, queued: list[reply_batch.QueuedReply]) -> None:
        """Store a batch of thread replies in one transaction; on any trouble, one at a time."""
        try:
            if not self._store_batch(queued):
                for item in queued:  # each fenced on its own: only the ones we lost are skipped
                    self._run(item.claim)
        finally:
            # Done, or run one by one (`_run` lets go of each it ran); one the fallback never
            # reached (it raised) must not stay in hand, renewed for ever: its lease ends instead.
            self._forget([item.claim for item in queued])

    def _store_batch(self, queued: list[reply_batch.QueuedReply]) -> bool:
        """True when the batch is stored and settled. Any failure, an outage included, is left to
        the one-request path, which tells an outage (deferred) from a bug (logged) and a lost
        claim (skipped) request by request."""
        try:
            with self._batch_writers:
                reply_batch.store(self.rt, queued)
            return True
        except inbox.ClaimLost as exc:
            log.info("thread replies: %s; storing them one at a time", exc)
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            log.warning("a batch of %d thread replies failed (%s); storing them one at a time", len(queued), exc)
        except Exception:
            log.exception("a batch of %d thread replies failed; storing them one at a time", len(queued))
        return False

    def _forget(self, claims: list[inbox.Claim]) -> None:
        with self._lock:
            for claim in claims:
                self._in_hand.pop(claim.id, None)

    def _defer(self, claim: inbox.Claim) -> None:
        """Try again after a pause (the database was unreachable); if this fails, after the lease."""
        try:
            with self.rt.engine.begin() as connection:
                inbox.renew(connection, [claim], lease=RETRY_DELAY, now=utcnow())
        except sa.exc.SQLAlchemyError as exc:
            log.debug("could not reschedule Slack request %d (%s)", claim.id, type(exc).__name__)

    def _finish(self, claim: inbox.Claim, error: str | None = None) -> None:
        try:
            with self.rt.engine.begin() as connection:
                inbox.settle(connection, claim, now=utcnow(), error=error)
        except inbox.ClaimLost:
            log.info("Slack request %d was taken over before it was marked done", claim.id)
        except sa.exc.SQLAlchemyError as exc:
            # It is done but not marked: it runs again after its lease (work is idempotent).
            log.warning("could not mark Slack request %d done (%s)", claim.id, type(exc).__name__)


def _request(claim: inbox.Claim) -> BoltRequest:
    body = json.loads(claim.body) if claim.mode == "socket_mode" else claim.body
    return BoltRequest(body=body, headers=dict(claim.headers), mode=claim.mode)
