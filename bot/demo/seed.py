"""A realistic, deterministic synthetic incident history for demos and benchmarks, written in bulk."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session

from bot.demo.vocabulary import (
    ALERTS,
    CATEGORY_WEIGHTS,
    CHANNEL,
    DAY_SECONDS,
    FOLLOW_UPS,
    LESSONS_DIDNT,
    LESSONS_WORKED,
    MEDIAN_MINUTES,
    MESSAGES,
    ROOT_CAUSE_WEIGHTS,
    SERVICES,
    SEVERITY_WEIGHTS,
    SYMPTOMS,
    USERS,
)
from bot.settings import DEFAULT_RESOLUTION_TARGETS, DEFAULT_RESPONSE_TARGETS, DEFAULT_RUNBOOKS
from storage.db import SessionFactory, unit_of_work
from storage.models import (
    ROOT_CAUSE_CLASSES,
    AlertNotification,
    DayCounter,
    EntryKind,
    Escalation,
    EscalationKind,
    FollowUp,
    Incident,
    Outbox,
    RunbookUse,
    Status,
    SystemEvent,
    TimelineEntry,
)

CHUNK = 5000  # rows per INSERT batch


class SeedRefused(RuntimeError):
    """The database already holds incidents and `force` was not given."""

    def __init__(self, existing: int) -> None:
        super().__init__(f"the database already holds {existing} incidents; pass --force to delete them and seed anew")
        self.existing = existing


@dataclass
class _Batch:
    incidents: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: list[dict[str, Any]] = field(default_factory=list)
    runbook_uses: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)

    def size(self) -> int:
        return len(self.incidents) + len(self.timeline)


def seed(session_factory: SessionFactory, *, incidents: int, seed: int | None, now: datetime, force: bool) -> int:
    """Fill the database with `incidents` incidents over the year before `now`; returns how many.

    The same `seed` and `now` always give the same history.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if incidents < 0:
        raise ValueError("incidents must not be negative")
    rng = random.Random(seed)
    with unit_of_work(session_factory) as session:
        existing = session.execute(sa.select(sa.func.count()).select_from(_table(Incident))).scalar_one()
        if existing and not force:
            raise SeedRefused(existing)
        if force:
            _clear(session)
        counters: dict[date, int] = {}
        batch = _Batch()
        for bundle in _generate(rng, incidents, now, counters):
            for name in ("incidents", "timeline", "follow_ups", "runbook_uses", "escalations"):
                getattr(batch, name).extend(getattr(bundle, name))
            if batch.size() >= CHUNK * 4:
                _flush(session, batch)
                batch = _Batch()
        _flush(session, batch)
        counter_rows = [{"day": day, "last": last} for day, last in sorted(counters.items())]
        _insert(session, DayCounter, counter_rows)
        # Fresh statistics after a bulk load: without them the planner guesses, badly, until
        # autovacuum gets round to it (SQLite's planner does not need them).
        if session.get_bind().dialect.name == "postgresql":
            for model in (Incident, TimelineEntry, FollowUp, RunbookUse, Escalation, DayCounter):
                session.execute(sa.text(f"ANALYZE {_table(model).name}"))
    return incidents


def _table(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


def _clear(session: Session) -> None:
    # Children first: the foreign keys point at incident.
    for model in (TimelineEntry, FollowUp, Escalation, RunbookUse, Outbox, AlertNotification, Incident, DayCounter):
        session.execute(sa.delete(_table(model)))


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    table = _table(model)
    for offset in range(0, len(rows), CHUNK):
        session.execute(sa.insert(table), rows[offset : offset + CHUNK])


def _flush(session: Session, batch: _Batch) -> None:
    _insert(session, Incident, batch.incidents)
    _insert(session, TimelineEntry, batch.timeline)
    _insert(session, FollowUp, batch.follow_ups)
    _insert(session, RunbookUse, batch.runbook_uses)
    _insert(session, Escalation, batch.escalations)


def _declaration_times(rng: random.Random, count: int, now: datetime) -> list[datetime]:
    """Spread over the past year, week by week, with a few weeks at about three times the usual rate."""
    weeks = 52
    weights = [rng.uniform(0.8, 1.2) for _ in range(weeks)]
    for week in rng.sample(range(weeks - 2), k=min(3, weeks - 2)):
        weights[week] *= 3.0
    start = now - timedelta(weeks=weeks)
    latest = (now - start).total_seconds() - 600
    chosen = rng.choices(range(weeks), weights=weights, k=count)
    times = []
    for week in chosen:
        offset = min((week + rng.random()) * 7 * DAY_SECONDS, latest)
        times.append((start + timedelta(seconds=offset)).replace(microsecond=0))
    times.sort()
    return times


def _lognormal_minutes(rng: random.Random, median: float, sigma: float) -> timedelta:
    return timedelta(seconds=round(rng.lognormvariate(math.log(median), sigma) * 60))


def _generate(rng: random.Random, count: int, now: datetime, counters: dict[date, int]) -> Iterator[_Batch]:
    times = _declaration_times(rng, count, now)
    open_count = min(5, max(1, count // 10)) if count else 0
    recent: deque[tuple[str, str, str | None, datetime]] = deque(maxlen=60)
    categories = tuple(SERVICES)
    runbooks_by_category = {
        category: [name for name, rb in DEFAULT_RUNBOOKS.items() if category in rb.categories]
        for category in categories
    }
    for index, declared in enumerate(times):
        day = declared.date()
        counters[day] = counters.get(day, 0) + 1
        incident_id = f"INC-{day:%Y-%m-%d}-{counters[day]:03d}"
        severity = rng.choices(tuple(SEVERITY_WEIGHTS), weights=tuple(SEVERITY_WEIGHTS.values()))[0]
        from_alert = rng.random() < 0.4
        category = rng.choices(categories, weights=CATEGORY_WEIGHTS)[0]
        affected = rng.choice(SERVICES[category])
        alert_name = f"{rng.choice(ALERTS)}:{affected}" if from_alert else None
        candidates = [r for r in recent if r[3] < declared and declared - r[3] <= timedelta(days=30)]
        if candidates and rng.random() < 0.15:
            # A repeat: the same thing breaks again within 30 days of the last fix.
            category, affected, alert_name, _ = rng.choice(candidates)
            from_alert = alert_name is not None
        symptom = rng.choice(SYMPTOMS)
        started = declared - (timedelta(0) if rng.random() < 0.6 else _lognormal_minutes(rng, 4, 0.8))
        ack_m, mit_m, res_m = MEDIAN_MINUTES[severity]
        acknowledged: datetime | None = declared + _lognormal_minutes(rng, ack_m, 0.8)
        mitigated: datetime | None = cast(datetime, acknowledged) + _lognormal_minutes(rng, mit_m, 0.9)
        resolved: datetime | None = cast(datetime, mitigated) + _lognormal_minutes(rng, res_m, 1.0)
        if rng.random() < 0.15:
            mitigated = None  # fixed outright, never marked mitigated
        if index >= count - open_count:
            resolved = None
            if rng.random() < 0.5:
                mitigated = None
        acknowledged, mitigated, resolved = (
            t if t is not None and t <= now else None for t in (acknowledged, mitigated, resolved)
        )
        if acknowledged is None:
            mitigated = resolved = None
        status = Status.RESOLVED if resolved else Status.MITIGATED if mitigated else Status.INVESTIGATING
        declared_by = rng.choice(USERS)
        commander = rng.choice(USERS) if acknowledged else None
        runbook = None
        if rng.random() < 0.5:
            runbook = rng.choice(runbooks_by_category[category] or ["Rollback Procedures"])
        users_median = {"P0": 5000, "P1": 800, "P2": 120, "P3": 15}[severity]
        revenue = None
        if category == "Payment Gateway" or severity in ("P0", "P1"):
            revenue = round(rng.lognormvariate(math.log(users_median * 2.5), 1.0), 2)
        row: dict[str, Any] = {
            "id": incident_id,
            "title": f"{affected}: {symptom}",
            "severity": severity,
            "status": status.value,
            "affected": affected,
            "affected_users": int(rng.lognormvariate(math.log(users_median), 1.0)),
            "detection": f"Alertmanager alert `{alert_name}` fired"
            if from_alert
            else rng.choice(("User report via support", "Spotted on the Grafana dashboard", "Synthetic check failed")),
            "detection_url": None,
            "impact": f"{affected} showed {symptom}",
            "category": category,
            "root_cause": None,
            "root_cause_class": None,
            "resolution": None,
            "revenue_impact": revenue,
            "rca_url": None,
            "runbook": runbook,
            "lessons_worked": None,
            "lessons_didnt": None,
            "declared_by": declared_by,
            "commander": commander,
            "source": "alertmanager" if from_alert else "slack",
            "alert_name": alert_name,
            "alert_group_open": None,
            "started_at": started,
            "declared_at": declared,
            "acknowledged_at": acknowledged,
            "mitigated_at": mitigated,
            "resolved_at": resolved,
            "next_check_at": None if resolved else now,
            "last_activity_at": resolved or now,
            "reopened_count": 0,
            "channel_id": CHANNEL,
            "card_ts": f"{declared.timestamp():.6f}",
        }
        if resolved:
            cause = rng.choices(ROOT_CAUSE_CLASSES, weights=ROOT_CAUSE_WEIGHTS)[0]
            row["root_cause_class"] = cause
            row["root_cause"] = f"{cause} in {affected}"
            row["resolution"] = rng.choice(
                ("Rolled back the deploy", "Scaled out the service", "Fixed the configuration", "Failed over")
            )
            if severity in ("P0", "P1") and rng.random() < 0.8:
                row["rca_url"] = f"https://docs.example.com/rca/{incident_id}"
            if rng.random() < 0.3:
                row["lessons_worked"] = rng.choice(LESSONS_WORKED)
                row["lessons_didnt"] = rng.choice(LESSONS_DIDNT)
            recent.append((category, affected, alert_name, resolved))
        bundle = _Batch(incidents=[row])
        _timeline(rng, bundle, row, now)
        _children(rng, bundle, row, now)
        yield bundle


def _timeline(rng: random.Random, bundle: _Batch, row: dict[str, Any], now: datetime) -> None:
    incident_id = row["id"]
    declared: datetime = row["declared_at"]
    end: datetime = row["resolved_at"] or now
    entries = [
        _system(
            incident_id,
            SystemEvent.DECLARED,
            declared,
            row["declared_by"],
            f"Declared by <@{row['declared_by']}> as {row['severity']}",
        ),
    ]
    if row["acknowledged_at"]:
        entries.append(
            _system(
                incident_id,
                SystemEvent.ACKNOWLEDGED,
                row["acknowledged_at"],
                row["commander"],
                f"Acknowledged by <@{row['commander']}>",
            )
        )
    if row["mitigated_at"]:
        entries.append(
            _system(
                incident_id,
                SystemEvent.STATUS_CHANGED,
                row["mitigated_at"],
                row["commander"],
                f"Status changed to Mitigated by <@{row['commander']}>",
            )
        )
    if row["resolved_at"]:
        entries.append(
            _system(
                incident_id,
                SystemEvent.RESOLVED,
                row["resolved_at"],
                row["commander"],
                f"Resolved by <@{row['commander']}>",
            )
        )
    span = max((end - declared).total_seconds(), 60.0)
    responders = rng.sample(USERS, k=3)
    used_ts: set[str] = set()
    for _ in range(rng.randint(5, 20) - len(entries)):
        when = declared + timedelta(seconds=round(rng.random() * span))
        ts = f"{when.timestamp():.6f}"
        while ts in used_ts:
            when += timedelta(microseconds=1)
            ts = f"{when.timestamp():.6f}"
        used_ts.add(ts)
        roll = rng.random()
        files = []
        if roll < 0.05:
            files = [{"name": "graph.png", "permalink": f"https://example.slack.com/files/{incident_id}/{ts}"}]
        entries.append(
            {
                "incident_id": incident_id,
                "kind": EntryKind.MESSAGE.value,
                "event": None,
                "author": rng.choice(responders),
                "text": rng.choice(MESSAGES).format(service=row["affected"]),
                "slack_ts": ts,
                "edited_ts": f"{when.timestamp() + 60:.6f}" if 0.05 <= roll < 0.10 else None,
                "files": files,
                "data": {},
                "deleted": 0.10 <= roll < 0.13,
                "key_event": 0.13 <= roll < 0.21,
                "occurred_at": when,
            }
        )
    bundle.timeline.extend(entries)


def _system(incident_id: str, event: SystemEvent, when: datetime, author: str | None, text: str) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": EntryKind.SYSTEM.value,
        "event": event.value,
        "author": author,
        "text": text,
        "slack_ts": None,
        "edited_ts": None,
        "files": [],
        "data": {},
        "deleted": False,
        "key_event": False,
        "occurred_at": when,
    }


def _children(rng: random.Random, bundle: _Batch, row: dict[str, Any], now: datetime) -> None:
    incident_id = row["id"]
    severity = row["severity"]
    declared: datetime = row["declared_at"]
    resolved: datetime | None = row["resolved_at"]
    if resolved is not None:
        wanted = {"P0": (1, 3), "P1": (1, 2), "P2": (0, 2), "P3": (0, 1)}[severity]
        for _ in range(rng.randint(*wanted)):
            created = min(resolved + timedelta(minutes=rng.randint(1, 120)), now)
            due = created.date() + timedelta(days=rng.randint(3, 30))
            done = rng.random() < (0.75 if due < now.date() else 0.2)
            done_at = min(created + timedelta(days=rng.uniform(0.5, 20)), now) if done else None
            bundle.follow_ups.append(
                {
                    "incident_id": incident_id,
                    "description": rng.choice(FOLLOW_UPS).format(service=row["affected"]),
                    "owner": rng.choice(USERS),
                    "due_date": due,
                    "done": done,
                    "created_at": created,
                    "done_at": done_at,
                }
            )
    if row["runbook"]:
        for _ in range(rng.randint(1, 3)):
            used = min(declared + _lognormal_minutes(rng, 3, 0.7), now)
            bundle.runbook_uses.append(
                {"incident_id": incident_id, "runbook": row["runbook"], "user_id": rng.choice(USERS), "used_at": used}
            )
    checks = (
        (EscalationKind.RESPONSE, DEFAULT_RESPONSE_TARGETS[severity], row["acknowledged_at"]),
        (EscalationKind.RESOLUTION, DEFAULT_RESOLUTION_TARGETS[severity], resolved),
    )
    for kind, target, done_at in checks:
        due_at = declared + target
        if (done_at or now) > due_at and due_at + timedelta(seconds=15) <= now:
            fired = due_at + timedelta(seconds=rng.randint(1, 15))
            bundle.escalations.append(
                {
                    "incident_id": incident_id,
                    "kind": kind.value,
                    "level": 0,
                    "due_at": due_at,
                    "fired_at": fired,
                    "delivered_at": fired + timedelta(seconds=1),
                }
            )
