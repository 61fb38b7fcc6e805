"""Claims on outbox rows and their renewal while a send runs, so a slow send is never sent twice."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm

from storage.db import SessionFactory, unit_of_work
from storage.models import Outbox, utcnow

log = logging.getLogger(__name__)


# Renewed while a send runs (429 back-offs and connection retries included): a claim that
# outlives it is a replica that died mid-send, and its call is taken over.
LEASE = timedelta(seconds=60)


class Leases:
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
