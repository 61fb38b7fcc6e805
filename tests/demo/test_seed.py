"""The synthetic history: shape, determinism, the id counters, refusal, and bulk speed."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from bot.demo.seed import SeedRefused, seed
from bot.reports import metrics
from bot.reports.periods import current_period, periods_back
from bot.settings import DEFAULT_RESPONSE_TARGETS
from storage.db import SessionFactory
from storage.models import DayCounter, Escalation, FollowUp, Incident, RunbookUse, TimelineEntry, utcnow

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def table(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


def rows(sessions: SessionFactory, statement: Any) -> list[Any]:
    with sessions() as session:
        return list(session.execute(statement))


def test_seeded_history_has_the_promised_shape(sessions: SessionFactory) -> None:
    with freeze_time(NOW):
        written = seed(sessions, incidents=600, seed=3, now=utcnow(), force=False)
    assert written == 600
    inc = table(Incident).c
    incidents = rows(
        sessions,
        sa.select(
            inc.id, inc.severity, inc.status, inc.started_at, inc.declared_at, inc.acknowledged_at, inc.resolved_at
        ).order_by(inc.declared_at, inc.id),
    )
    assert len(incidents) == 600
    assert all(NOW - timedelta(days=366) <= r.declared_at <= NOW for r in incidents)
    assert all(r.started_at <= r.declared_at for r in incidents)
    assert all(r.resolved_at is None or r.resolved_at <= NOW for r in incidents)

    # Ids: the UTC date of declaration and a per-day sequence from 001 without gaps.
    per_day: dict[str, list[int]] = {}
    for r in incidents:
        match = re.fullmatch(r"INC-(\d{4}-\d\d-\d\d)-(\d{3,})", r.id)
        assert match and match.group(1) == f"{r.declared_at:%Y-%m-%d}"
        per_day.setdefault(match.group(1), []).append(int(match.group(2)))
    assert all(sorted(numbers) == list(range(1, len(numbers) + 1)) for numbers in per_day.values())
    counters = {f"{r.day:%Y-%m-%d}": r.last for r in rows(sessions, sa.select(table(DayCounter)))}
    assert counters == {day: max(numbers) for day, numbers in per_day.items()}

    # Skewed toward P2/P3; a handful of the most recent ones still open.
    severities = Counter(r.severity for r in incidents)
    assert severities["P2"] + severities["P3"] > 3 * (severities["P0"] + severities["P1"])
    assert severities["P0"] > 0
    open_ids = [r.id for r in incidents if r.resolved_at is None]
    assert 1 <= len(open_ids) <= 5
    assert set(open_ids) <= {r.id for r in incidents[-10:]}
    assert all((r.status == "Resolved") == (r.resolved_at is not None) for r in incidents)

    # Thread timelines of 5-20 entries, with declared/acknowledged/resolved system entries.
    t = table(TimelineEntry).c
    sizes = dict(rows(sessions, sa.select(t.incident_id, sa.func.count()).group_by(t.incident_id)))
    assert len(sizes) == 600 and min(sizes.values()) >= 5 and max(sizes.values()) <= 20
    events = Counter(e for (e,) in rows(sessions, sa.select(t.event).where(t.kind == "system")))
    assert events["declared"] == 600
    assert events["resolved"] == 600 - len(open_ids)
    assert rows(sessions, sa.select(sa.func.count()).where(t.deleted.is_(True)))[0][0] > 0

    # Follow-ups, some overdue; runbook uses; escalations only where a target was missed.
    with sessions() as session:
        ages = metrics.follow_up_ages(session, today=NOW.date())
        repeats = metrics.repeat_incidents(session, start=NOW - timedelta(days=365), end=NOW)
        weeks = periods_back(current_period("weekly", NOW, "UTC"), 40)
        anomalies = [w for w in metrics.week_anomalies(session, weeks=weeks) if w.flagged]
    assert ages.overdue > 0 and ages.open > ages.overdue
    assert 0 < len(repeats) < 600
    assert anomalies, "the seed plants a few weeks with about three times the usual rate"
    assert rows(sessions, sa.select(sa.func.count()).select_from(table(RunbookUse)))[0][0] > 0
    by_id = {r.id: r for r in incidents}
    e = table(Escalation).c
    escalations = rows(sessions, sa.select(e.incident_id, e.kind, e.due_at))
    assert escalations
    for incident_id, kind, due_at in escalations:
        r = by_id[incident_id]
        if kind == "response":
            assert due_at == r.declared_at + DEFAULT_RESPONSE_TARGETS[r.severity]
            assert r.acknowledged_at is None or r.acknowledged_at > due_at
        else:
            assert r.resolved_at is None or r.resolved_at > due_at


def dump(sessions: SessionFactory) -> tuple[list[Any], list[Any], list[Any]]:
    inc, t, f = table(Incident).c, table(TimelineEntry).c, table(FollowUp).c
    return (
        [tuple(r) for r in rows(sessions, sa.select(table(Incident)).order_by(inc.id))],
        [tuple(r) for r in rows(sessions, sa.select(t.incident_id, t.text, t.occurred_at).order_by(t.id))],
        [tuple(r) for r in rows(sessions, sa.select(f.incident_id, f.description, f.due_date).order_by(f.id))],
    )


def test_same_seed_same_history_and_refusal_without_force(sessions: SessionFactory) -> None:
    assert seed(sessions, incidents=120, seed=42, now=NOW, force=False) == 120
    first = dump(sessions)
    with pytest.raises(SeedRefused, match="--force"):
        seed(sessions, incidents=10, seed=1, now=NOW, force=False)
    assert dump(sessions) == first  # the refusal wrote nothing
    assert seed(sessions, incidents=120, seed=42, now=NOW, force=True) == 120
    assert dump(sessions) == first
    assert seed(sessions, incidents=50, seed=43, now=NOW, force=True) == 50
    other = dump(sessions)
    assert len(other[0]) == 50 and other[0] != first[0][:50]


def test_later_declarations_continue_the_day_sequence(sessions: SessionFactory) -> None:
    from bot.incidents.queries import allocate_id

    seed(sessions, incidents=200, seed=5, now=NOW, force=False)
    inc = table(Incident).c
    (latest,) = rows(sessions, sa.select(inc.id).order_by(inc.declared_at.desc()).limit(1))[0]
    day = datetime.strptime(latest[4:14], "%Y-%m-%d").replace(hour=23, tzinfo=UTC)
    with sessions() as session:
        allocated = allocate_id(session, day)
        session.commit()
    assert allocated == f"{latest[:15]}{int(latest[15:]) + 1:03d}"


def test_bulk_insert_is_fast_on_sqlite(sessions: SessionFactory, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the speed budget is stated for SQLite")
    started = time.perf_counter()
    seed(sessions, incidents=5000, seed=1, now=NOW, force=False)
    elapsed = time.perf_counter() - started
    # 100,000 incidents must take well under a minute: 5,000 gets a twentieth of that, with room.
    assert elapsed < 6, elapsed
    assert rows(sessions, sa.select(sa.func.count()).select_from(table(TimelineEntry)))[0][0] > 5000 * 5
