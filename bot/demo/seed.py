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

from bot.demo.story import thread
from bot.demo.vocabulary import (
    ALERT_SHARE,
    ALERTS,
    CATEGORY_WEIGHTS,
    CHANNEL,
    DAY_SECONDS,
    FOLLOW_UPS,
    LESSONS_DIDNT,
    LESSONS_WORKED,
    MEDIAN_MINUTES,
    PEOPLE,
    QUALIFIERS,
    REMEDIES,
    REOPEN_SHARE,
    REPEAT_SHARE,
    ROOT_CAUSE_WEIGHTS,
    SERVICES,
    SEVERITY_WEIGHTS,
    SYMPTOMS,
    USERS,
)
from bot.reports.metrics.results import REPEAT_WINDOW
from bot.settings import DEFAULT_RESOLUTION_TARGETS, DEFAULT_RESPONSE_TARGETS, DEFAULT_RUNBOOKS
from storage.db import SessionFactory, unit_of_work
from storage.models import (
    ROOT_CAUSE_CLASSES,
    AlertNotification,
    DayCounter,
    Escalation,
    EscalationKind,
    FollowUp,
    Incident,
    Outbox,
    Reopen,
    RunbookUse,
    Status,
    TimelineEntry,
)
from storage.people import Person

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
    reopens: list[dict[str, Any]] = field(default_factory=list)

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
            for name in ("incidents", "timeline", "follow_ups", "runbook_uses", "escalations", "reopens"):
                getattr(batch, name).extend(getattr(bundle, name))
            if batch.size() >= CHUNK * 4:
                _flush(session, batch)
                batch = _Batch()
        _flush(session, batch)
        counter_rows = [{"day": day, "last": last} for day, last in sorted(counters.items())]
        _insert(session, DayCounter, counter_rows)
        # The synthetic people's names, so the Markdown outputs print them (any earlier copy replaced).
        session.execute(sa.delete(_table(Person)).where(_table(Person).c.user_id.in_(USERS)))
        people = [
            {"user_id": user_id, "display_name": display, "real_name": real, "email": None, "updated_at": now}
            for user_id, (display, real) in zip(USERS, PEOPLE, strict=True)
        ]
        _insert(session, Person, people)
        # Fresh statistics after a bulk load: without them the planner guesses, badly, until
        # autovacuum gets round to it (SQLite's planner does not need them).
        if session.get_bind().dialect.name == "postgresql":
            for model in (Incident, TimelineEntry, FollowUp, RunbookUse, Escalation, Reopen, DayCounter):
                session.execute(sa.text(f"ANALYZE {_table(model).name}"))
    return incidents


def _table(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


def _clear(session: Session) -> None:
    # Children first: the foreign keys point at incident.
    for model in (
        TimelineEntry,
        FollowUp,
        Escalation,
        RunbookUse,
        Reopen,
        Outbox,
        AlertNotification,
        Incident,
        DayCounter,
    ):
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
    _insert(session, Reopen, batch.reopens)


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
    # Ten seconds at least: every step of an incident takes some time, and its thread fits between.
    return timedelta(seconds=max(round(rng.lognormvariate(math.log(median), sigma) * 60), 10))


def _generate(rng: random.Random, count: int, now: datetime, counters: dict[date, int]) -> Iterator[_Batch]:
    times = _declaration_times(rng, count, now)
    open_count = min(5, max(1, count // 10)) if count else 0
    recent: deque[tuple[str, str, str | None, datetime]] = deque(maxlen=60)
    resolutions: dict[tuple[str, str], list[datetime]] = {}  # (category, service) -> when resolved
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
        from_alert = rng.random() < ALERT_SHARE
        category = rng.choices(categories, weights=CATEGORY_WEIGHTS)[0]
        # The draw first: the scan of recent resolutions is only worth it for a repeat.
        repeat = rng.random() < REPEAT_SHARE
        candidates = [r for r in recent if r[3] < declared and declared - r[3] <= REPEAT_WINDOW] if repeat else []
        if candidates:
            # A repeat: the same thing breaks again within 30 days of the last fix.
            category, affected, alert_name, _ = rng.choice(candidates)
            from_alert = alert_name is not None
        else:
            affected = _fresh_service(rng, category, declared, resolutions)
            alert_name = f"{rng.choice(ALERTS)}:{affected}" if from_alert else None
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
        reopen: dict[str, Any] | None = None
        if resolved is not None and rng.random() < REOPEN_SHARE:
            # Fixed, then back: reopened a while later, mitigated and resolved again.
            reopened = resolved + _lognormal_minutes(rng, 120, 1.0)
            spell_mitigated = reopened + _lognormal_minutes(rng, mit_m, 0.9)
            final = spell_mitigated + _lognormal_minutes(rng, res_m, 1.0)
            if final <= now:
                reopen = {
                    "incident_id": incident_id,
                    "seq": 1,
                    "resolved_before": resolved,
                    "reopened_at": reopened,
                    "reopened_by": rng.choice(USERS),
                    "mitigated_at": spell_mitigated,
                }
                resolved = final
        status = Status.RESOLVED if resolved else Status.MITIGATED if mitigated else Status.INVESTIGATING
        declared_by = None if from_alert else rng.choice(USERS)
        commander = rng.choice(USERS) if acknowledged else None
        remedy = rng.choice(tuple(REMEDIES))
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
            "reopened_count": 1 if reopen else 0,
            "channel_id": CHANNEL,
            "card_ts": f"{declared.timestamp():.6f}",
        }
        if resolved:
            cause = rng.choices(ROOT_CAUSE_CLASSES, weights=ROOT_CAUSE_WEIGHTS)[0]
            row["root_cause_class"] = cause
            row["root_cause"] = f"{cause} in {affected}"
            row["resolution"] = remedy
            if severity in ("P0", "P1") and rng.random() < 0.8:
                row["rca_url"] = f"https://docs.example.com/rca/{incident_id}"
            if rng.random() < 0.3:
                row["lessons_worked"] = rng.choice(LESSONS_WORKED)
                row["lessons_didnt"] = rng.choice(LESSONS_DIDNT)
            recent.append((category, affected, alert_name, resolved))
            resolutions.setdefault((category, affected), []).append(resolved)
        bundle = _Batch(incidents=[row], reopens=[reopen] if reopen else [])
        _children(rng, bundle, row, now)
        responders = [commander or rng.choice(USERS), *rng.sample(USERS, k=2)]
        bundle.timeline = thread(
            rng,
            row,
            remedy=remedy,
            responders=responders,
            escalations=bundle.escalations,
            reopen=reopen,
            targets=_TARGETS[severity],
            now=now,
        )
        yield bundle


_TARGETS = {
    severity: {"response": DEFAULT_RESPONSE_TARGETS[severity], "resolution": DEFAULT_RESOLUTION_TARGETS[severity]}
    for severity in DEFAULT_RESPONSE_TARGETS
}


def _fresh_service(
    rng: random.Random, category: str, declared: datetime, resolutions: dict[tuple[str, str], list[datetime]]
) -> str:
    """A service (and where in it) with no resolution in the 30 days before `declared`: not a repeat.

    Repeats are planted, at REPEAT_SHARE; with a handful of services every incident would be one.
    """

    def free(name: str) -> bool:
        times = resolutions.get((category, name))
        if not times:
            return True
        times[:] = [t for t in times if declared - t <= REPEAT_WINDOW]  # older ones never matter again
        return not any(t <= declared for t in times)

    services = SERVICES[category]
    for _ in range(3):
        qualifier = rng.choice(QUALIFIERS)
        name = f"{rng.choice(services)} ({qualifier})" if qualifier else rng.choice(services)
        if free(name):
            return name
    shard = len(resolutions)
    while not free(name := f"{rng.choice(services)} (shard {shard})"):
        shard += 1
    return name


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
