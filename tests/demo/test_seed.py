"""The synthetic history: shape, determinism, the id counters, refusal, and bulk speed."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from conftest import BACKENDS, create_pg_database, drop_pg_database
from freezegun import freeze_time

from bot.demo.seed import SeedRefused, seed
from bot.demo.vocabulary import CONFIRMED_LINE, REMEDIES, USERS
from bot.reports import metrics
from bot.reports.periods import current_period, periods_back
from bot.reports.postmortem import render_postmortem
from bot.settings import DEFAULT_RESPONSE_TARGETS, Settings
from storage import db
from storage.db import SessionFactory
from storage.models import DayCounter, Escalation, FollowUp, Incident, Reopen, RunbookUse, TimelineEntry, utcnow
from storage.people import Person

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
    reopened = rows(sessions, sa.select(sa.func.count()).select_from(table(Reopen)))[0][0]
    assert events["resolved"] == 600 - len(open_ids) + reopened  # a reopened one was resolved twice
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


def test_bulk_insert_writes_every_incident_with_its_timeline(sessions: SessionFactory) -> None:
    # How fast (100,000 incidents well under a minute) is a benchmark figure, not a timed test:
    # benchmarks/reports_bench.py seeds its history with this and reports `seeded_s`.
    seed(sessions, incidents=1000, seed=1, now=NOW, force=False)
    assert rows(sessions, sa.select(sa.func.count()).select_from(table(Incident)))[0][0] == 1000
    assert rows(sessions, sa.select(sa.func.count()).select_from(table(TimelineEntry)))[0][0] > 1000 * 5


@pytest.fixture(scope="module", params=BACKENDS)
def _seeded_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database seeded once per module (and test worker): seeding 800 incidents takes seconds,
    and each test below reads its own copy of it."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("seeded") / "seeded.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = create_pg_database("ib_seeded")
    try:
        engine = db.create_db_engine(url, poolclass=sa.pool.NullPool)
        db.upgrade(engine)
        seed(db.session_factory(engine), incidents=800, seed=11, now=NOW, force=False)
        engine.dispose()
        yield url
    finally:
        if request.param == "postgresql":
            drop_pg_database(url)


@pytest.fixture
def demo(_seeded_url: str, tmp_path: Path) -> Iterator[SessionFactory]:
    """The seeded history, in a copy of its own (a test may write to it)."""
    if _seeded_url.startswith("sqlite"):
        path = tmp_path / "demo.db"
        shutil.copyfile(_seeded_url.removeprefix("sqlite:///"), path)
        url = f"sqlite:///{path}"
    else:
        url = create_pg_database("ib_demo", template=_seeded_url)
    engine = db.create_db_engine(url)
    yield db.session_factory(engine)
    engine.dispose()
    if not url.startswith("sqlite"):
        drop_pg_database(url)


def incidents_by_id(sessions: SessionFactory) -> dict[str, Any]:
    return {r.id: r for r in rows(sessions, sa.select(table(Incident)))}


def timelines(sessions: SessionFactory) -> dict[str, list[Any]]:
    t = table(TimelineEntry).c
    found: dict[str, list[Any]] = {}
    for entry in rows(sessions, sa.select(table(TimelineEntry)).order_by(t.occurred_at, t.id)):
        found.setdefault(entry.incident_id, []).append(entry)
    return found


def story_lines(row: Any, texts: dict[str, datetime]) -> tuple[str, str, str]:
    """The remedy's (diagnosis, action, effect) lines: the resolution's, else the one the thread names."""
    for name, lines in REMEDIES.items():
        formatted = tuple(line.format(service=row.affected) for line in lines)
        if row.resolution in (None, name) and formatted[0] in texts:
            return formatted  # type: ignore[return-value]
    raise AssertionError(f"{row.id}: no remedy's lines in {sorted(texts)}")


def test_timelines_are_causal(demo: SessionFactory) -> None:
    """The acknowledgement before the fix, the fix before its effect, "confirmed fixed" before resolved."""
    by_id, threads = incidents_by_id(demo), timelines(demo)
    reopen_of = {r.incident_id: r for r in rows(demo, sa.select(table(Reopen)))}
    checked = 0
    for incident_id, entries in threads.items():
        row = by_id[incident_id]
        # The first resolution of a reopened incident ended its first spell.
        first_resolution = reopen_of[incident_id].resolved_before if incident_id in reopen_of else row.resolved_at
        fix = row.mitigated_at or first_resolution
        system = {e.event: e.occurred_at for e in entries if e.kind == "system"}
        assert system["declared"] == min(e.occurred_at for e in entries) == row.declared_at
        texts = {e.text: e.occurred_at for e in entries if e.kind == "message"}
        assert all(row.declared_at < when <= NOW for when in texts.values())
        if row.acknowledged_at is None:
            continue
        assert system["acknowledged"] == row.acknowledged_at
        found, action, effect = story_lines(row, texts)
        assert row.acknowledged_at < texts[found]
        if fix is None:
            assert action not in texts and effect not in texts
            continue
        assert row.acknowledged_at < texts[found] < texts[action] < texts[effect]
        if row.mitigated_at is not None:
            assert texts[action] < row.mitigated_at < texts[effect]
        if first_resolution is not None:
            assert texts[effect] < texts[CONFIRMED_LINE] < first_resolution
            checked += 1
    assert checked > 600


def test_escalations_appear_in_their_incidents_timelines(demo: SessionFactory) -> None:
    e = table(Escalation).c
    escalations = rows(demo, sa.select(e.incident_id, e.kind, e.fired_at))
    assert len(escalations) > 100
    threads = timelines(demo)
    for incident_id, kind, fired_at in escalations:
        matching = [x for x in threads[incident_id] if x.event == "escalated" and x.data.get("kind") == kind]
        assert [x.occurred_at for x in matching] == [fired_at]
        assert f"the {kind} target" in matching[0].text and incident_id in matching[0].text


def test_a_repeat_rate_around_ten_to_twenty_percent(demo: SessionFactory) -> None:
    with demo() as session:
        for days in (365, 90):
            start = NOW - timedelta(days=days)
            total = session.execute(sa.select(sa.func.count()).where(table(Incident).c.declared_at >= start))
            repeats = metrics.repeat_incidents(session, start=start, end=NOW)
            share = len(repeats) / total.scalar_one()
            assert 0.08 <= share <= 0.22, (days, share)


def test_follow_ups_some_done_some_overdue(demo: SessionFactory) -> None:
    f = table(FollowUp).c
    done = rows(demo, sa.select(sa.func.count()).where(f.done.is_(True)))[0][0]
    overdue = rows(demo, sa.select(sa.func.count()).where(f.done.is_(False), f.due_date < NOW.date()))[0][0]
    upcoming = rows(demo, sa.select(sa.func.count()).where(f.done.is_(False), f.due_date >= NOW.date()))[0][0]
    assert done > overdue > 0 and upcoming > 0


def test_alert_and_person_declared_incidents(demo: SessionFactory) -> None:
    by_id, threads = incidents_by_id(demo), timelines(demo)
    alerts = [r for r in by_id.values() if r.source == "alertmanager"]
    people = [r for r in by_id.values() if r.source == "slack"]
    assert 0.25 < len(alerts) / len(by_id) < 0.55 and people
    for row in alerts:
        assert row.declared_by is None and row.alert_name and row.alert_name in row.detection
        assert [x.event for x in threads[row.id]][:2] == ["alert_fired", "declared"]
    for row in people:
        assert row.declared_by in USERS and row.alert_name is None
        assert f"<@{row.declared_by}>" in threads[row.id][0].text


def test_a_few_reopened_incidents(demo: SessionFactory) -> None:
    by_id, threads = incidents_by_id(demo), timelines(demo)
    reopens = rows(demo, sa.select(table(Reopen)))
    assert 5 <= len(reopens) <= 0.05 * len(by_id)
    assert {r.incident_id for r in reopens} == {r.id for r in by_id.values() if r.reopened_count}
    for reopen in reopens:
        row = by_id[reopen.incident_id]
        assert (reopen.seq, row.reopened_count, row.status) == (1, 1, "Resolved")
        assert reopen.resolved_before < reopen.reopened_at < reopen.mitigated_at < row.resolved_at <= NOW
        events = [x.event for x in threads[row.id] if x.event in ("resolved", "reopened")]
        assert events == ["resolved", "reopened", "resolved"]
    with demo() as session:
        # Counted once, and the time it sat resolved is not part of its MTTR.
        month = metrics.summaries(session, settings=Settings(), periods=[year_of(NOW)], now=NOW)[0]
    assert month.total == len(by_id)


def test_the_synthetic_people_have_names(demo: SessionFactory) -> None:
    names = dict(rows(demo, sa.select(table(Person).c.user_id, table(Person).c.real_name)))
    assert set(names) == set(USERS) and all(names.values())
    incident_id = rows(demo, sa.select(table(Incident).c.id).where(table(Incident).c.commander.is_not(None)))[0][0]
    with demo() as session:
        text = render_postmortem(session, incident_id) or ""
    assert "<@U0SEED" not in text and "Acknowledged by " in text
    # Seeding again over it (--force) replaces them rather than failing on the key.
    seed(demo, incidents=10, seed=1, now=NOW, force=True)
    assert len(rows(demo, sa.select(table(Person)))) == len(USERS)


def year_of(now: datetime) -> Any:
    from bot.reports.periods import custom_period

    return custom_period(now - timedelta(days=400), now, "all")
