"""On-call storage: overrides, pages, and notices claimed exactly once by racing replicas."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from incident_rows import incident, store
from oncall_fixtures import schedule, utc

from bot.oncall import service
from bot.oncall.schedules import on_call_at
from bot.oncall.service import ClaimLost, Notice
from storage import db

NOW = utc(2026, 12, 2, 3)
INCIDENT = "INC-2026-12-02-001"


@pytest.fixture
def incident_id(sessions: db.SessionFactory) -> str:
    store(sessions, incident(NOW, id=INCIDENT, severity="P0"))
    return INCIDENT


def _page(sessions: db.SessionFactory, incident_id: str) -> int:
    with db.unit_of_work(sessions) as session:
        page = service.start_page(session=session, incident_id=incident_id, policy="default", now=NOW)
        assert page is not None and page.id is not None
        return page.id


def _race(db_url: str, replicas: int, work: Callable[[Any], Any]) -> list[Any]:
    """Run `work(session)` at once in `replicas` threads, each with its own engine (a replica)."""
    barrier = threading.Barrier(replicas)
    results: list[Any] = [None] * replicas
    errors: list[BaseException] = []

    def replica(i: int) -> None:
        engine = db.create_db_engine(db_url)
        try:
            barrier.wait()
            with db.unit_of_work(db.session_factory(engine)) as session:
                results[i] = work(session)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_overrides_round_trip_and_window(sessions: db.SessionFactory) -> None:
    s = schedule()
    with db.unit_of_work(sessions) as session:
        service.add_override(session=session, schedule="primary", user_id="U04DAVE", starts_at=utc(2026, 1, 12),
                             ends_at=utc(2026, 1, 13), created_by="U01ALICE", now=utc(2026, 1, 1))
        service.add_override(session=session, schedule="primary", user_id="U03CAROL",
                             starts_at=utc(2026, 1, 12, 12), ends_at=utc(2026, 1, 12, 14), created_by=None,
                             now=utc(2026, 1, 2))
        service.add_override(session=session, schedule="other", user_id="U03CAROL", starts_at=utc(2026, 2, 1),
                             ends_at=utc(2026, 2, 2), created_by=None, now=utc(2026, 1, 2))
        with pytest.raises(service.OverrideError):
            service.add_override(session=session, schedule="primary", user_id="U03CAROL", starts_at=utc(2026, 2, 2),
                                 ends_at=utc(2026, 2, 2), created_by=None, now=utc(2026, 1, 2))
    with db.unit_of_work(sessions) as session:
        rows = service.list_overrides(session=session, schedule="primary")
        assert [r.user_id for r in rows] == ["U04DAVE", "U03CAROL"]
        assert rows[0].starts_at == utc(2026, 1, 12)  # aware UTC back
        assert service.list_overrides(session=session, start=utc(2026, 1, 13)) == [
            r for r in service.list_overrides(session=session) if r.schedule == "other"
        ]
        indexes = service.override_indexes(session=session)
    assert on_call_at(s, indexes["primary"], utc(2026, 1, 12, 13)) == "U03CAROL"
    assert on_call_at(s, indexes["primary"], utc(2026, 1, 12, 15)) == "U04DAVE"


def test_page_lifecycle(sessions: db.SessionFactory, incident_id: str) -> None:
    page_id = _page(sessions, incident_id)
    with db.unit_of_work(sessions) as session:
        assert service.start_page(session=session, incident_id=incident_id, policy="default", now=NOW) is None
        assert [p.id for p in service.active_pages(session=session)] == [page_id]
        page = service.acknowledge_page(session=session, incident_id=incident_id, user_id="U02BOB",
                                        now=NOW + timedelta(minutes=3))
        assert page is not None and page.acknowledged_by == "U02BOB"
        assert page.acknowledged_at == NOW + timedelta(minutes=3)
        assert service.acknowledge_page(session=session, incident_id=incident_id, user_id="U03CAROL", now=NOW) is None
        assert service.active_pages(session=session) == []
        # Acknowledged: nothing more is claimed for it.
        assert service.claim_notices(session=session, page_id=page_id, notices=[Notice(0, 1, "U1", "dm")],
                                     worker="w", now=NOW) == []
        # A later spell (raised again after it ended) is a new page; resolving ends it.
        second = service.start_page(session=session, incident_id=incident_id, policy="default", now=NOW)
        assert second is not None and second.spell == 2
        assert service.end_pages(session=session, incident_id=incident_id, now=NOW) == 1
        assert service.end_pages(session=session, incident_id=incident_id, now=NOW) == 0


def test_racing_replicas_start_one_page(db_url: str, incident_id: str) -> None:
    results = _race(db_url, 4, lambda session: service.start_page(
        session=session, incident_id=incident_id, policy="default", now=NOW))
    assert sum(page is not None for page in results) == 1


NOTICES = [Notice(r, s, f"U{t}TARGET", ch, "primary") for r in range(2) for s in range(3) for t in range(2)
           for ch in ("dm", "email", "webhook")]


def test_each_notice_is_claimed_once_by_racing_replicas(db_url: str, sessions: db.SessionFactory,
                                                        incident_id: str) -> None:
    page_id = _page(sessions, incident_id)
    results = _race(db_url, 4, lambda session: service.claim_notices(
        session=session, page_id=page_id, notices=NOTICES, worker=f"w{threading.get_ident()}", now=NOW))
    claimed = [(c.round, c.step, c.target, c.channel) for claims in results for c in claims]
    assert sorted(claimed) == sorted((n.round, n.step, n.target, n.channel) for n in NOTICES)
    # Asking again claims nothing: the rows are there.
    with db.unit_of_work(sessions) as session:
        assert service.claim_notices(session=session, page_id=page_id, notices=NOTICES, worker="x", now=NOW) == []
        assert len(service.notifications(session=session, page_id=page_id)) == len(NOTICES)


def test_retries_are_claimed_once_and_fenced(db_url: str, sessions: db.SessionFactory, incident_id: str) -> None:
    page_id = _page(sessions, incident_id)
    with db.unit_of_work(sessions) as session:
        first = service.claim_notices(session=session, page_id=page_id, notices=NOTICES, worker="w0", now=NOW)
        for claim in first:
            service.mark_failed(session=session, claim=claim, now=NOW, error="HTTP 503",
                                retry_at=NOW + timedelta(minutes=1))
    with db.unit_of_work(sessions) as session:
        assert service.claim_retries(session=session, worker="early", now=NOW + timedelta(seconds=30)) == []
    later = NOW + timedelta(minutes=1)
    results = _race(db_url, 3, lambda session: service.claim_retries(
        session=session, worker=f"w{threading.get_ident()}", now=later, limit=1000))
    ids = [c.id for claims in results for c in claims]
    assert sorted(ids) == sorted(c.id for c in first)
    assert all(c.attempt == 2 for claims in results for c in claims)
    winner = next(claims for claims in results if claims)[0]
    # The first attempt's claim is stale now: recording its outcome fails.
    with pytest.raises(ClaimLost), db.unit_of_work(sessions) as session:
        service.mark_sent(session=session, claim=next(c for c in first if c.id == winner.id), now=later)
    with db.unit_of_work(sessions) as session:
        service.mark_sent(session=session, claim=winner, now=later)
        # Leased rows are not claimed again before the lease lapses; then all but the sent one are.
        assert service.claim_retries(session=session, worker="z", now=later) == []
        again = service.claim_retries(session=session, worker="z", now=later + timedelta(minutes=5), limit=1000)
        assert len(again) == len(NOTICES) - 1 and winner.id not in [c.id for c in again]
        service.mark_failed(session=session, claim=again[0], now=later, error="HTTP 410 Gone", retry_at=None)
        rows = {row.id: row for row in service.notifications(session=session, page_id=page_id)}
        assert rows[winner.id].sent_at == later
        assert rows[again[0].id].dead_at == later and rows[again[0].id].last_error == "HTTP 410 Gone"
        # A resolved incident's notices are not retried.
        service.end_pages(session=session, incident_id=incident_id, now=later)
        assert service.claim_retries(session=session, worker="z", now=later + timedelta(hours=1)) == []


def test_a_handoff_notice_is_claimed_once(db_url: str) -> None:
    shift = utc(2026, 12, 7, 8)
    results = _race(db_url, 4, lambda session: service.claim_handoff_notice(
        session=session, schedule="primary", shift_start=shift, user_id="U02BOB", worker="w", now=NOW))
    owned = [r for r in results if r is not None]
    assert len(owned) == 1
    engine = db.create_db_engine(db_url)
    try:
        with db.unit_of_work(db.session_factory(engine)) as session:
            service.mark_handoff_sent(session=session, notice_id=owned[0], now=NOW)
            assert service.claim_handoff_notice(session=session, schedule="primary", shift_start=shift,
                                                user_id="U02BOB", worker="w", now=NOW) is None
    finally:
        engine.dispose()
