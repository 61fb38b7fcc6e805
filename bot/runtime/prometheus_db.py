"""The figures GET /metrics reads from the database at scrape time, so they hold across processes and replicas.

The front serves /metrics, but most of the work happens elsewhere: in its worker process (the
inbox, the outbox, the sweep) or in another replica. Counting those in memory would show only
this process's share; the database sees all of it. A scrape runs a handful of indexed aggregate
queries through an engine of its own (storage/readonly.py), and the result is kept for a few
seconds, so however often Prometheus (or two of them) scrapes, the database is asked once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from bot.reports import metrics
from bot.reports.periods import Period
from storage import inbox, jobs
from storage.models import SEVERITIES, Incident, Outbox, Status, utcnow

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
# MTTA and MTTR cover the incidents declared in this window (the reports' rule: an incident
# belongs to the period of its declaration).
DURATION_WINDOW = timedelta(days=30)
# Seconds; the edges sit on the default targets (5, 10, 15, 30 min, 1, 2, 4, 8 h), so a bucket
# reads as "within target" on a dashboard.
DURATION_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0)
# What an outbox row's last_error (bot/slack/sends.py `describe`) says: "HTTP 404 channel_not_found",
# "HTTP 503", or "ConnectionError: …". Only the code becomes a label, never the message.
_SLACK_CODE = re.compile(r"^HTTP (\d{3})(?: ([a-z0-9_]{1,64}))?$")
_EXCEPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63}):")

incident_table = Incident.__table__  # type: ignore[attr-defined]
outbox_table = Outbox.__table__  # type: ignore[attr-defined]


def error_code(last_error: str | None) -> str:
    """The low-cardinality label for an outbox row's last error."""
    text = (last_error or "").strip()
    match = _SLACK_CODE.match(text)
    if match:
        return match.group(2) or f"http_{match.group(1)}"
    match = _EXCEPTION.match(text)
    return match.group(1) if match else "other"


class DatabaseCollector(Collector):
    """A prometheus_client custom collector: reads the database when scraped, at most every few seconds."""

    def __init__(self, engine: Engine, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._read_at: float | None = None

    def collect(self) -> Iterator[Metric]:
        # One scrape reads; one arriving meanwhile waits for it and takes its result.
        with self._lock:
            if self._read_at is None or time.monotonic() - self._read_at >= self.cache_seconds:
                self._families = self._read()
                self._read_at = time.monotonic()
            families = list(self._families)
        yield from families

    def _read(self) -> list[Metric]:
        started = time.monotonic()
        up = GaugeMetricFamily("incident_bot_database_up", "1 when /metrics could read the database, else 0")
        try:
            with self.engine.connect() as connection:
                families = read_families(connection, now=utcnow())
        except sa.exc.SQLAlchemyError as exc:
            # Never the message: it may carry the URL. The rest of /metrics still answers.
            log.warning("metrics: could not read the database (%s)", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        took = GaugeMetricFamily(
            "incident_bot_metrics_read_duration_seconds", "How long the last read of the database-derived metrics took"
        )
        took.add_metric([], time.monotonic() - started)
        return [up, took, *families]


def read_families(connection: Connection, *, now: datetime) -> list[Metric]:
    return [
        *_health(connection, now),
        _open_incidents(connection),
        *_durations(connection, now),
    ]


def _health(connection: Connection, now: datetime) -> list[Metric]:
    o = outbox_table.c
    backlog = GaugeMetricFamily("incident_bot_inbox_backlog", "Acked Slack requests whose work is not done yet")
    backlog.add_metric([], inbox.backlog(connection))
    waiting = sa.and_(o.delivered_at.is_(None), o.dead_at.is_(None))
    depth, oldest = connection.execute(sa.select(sa.func.count(), sa.func.min(o.created_at)).where(waiting)).one()
    outbox = GaugeMetricFamily(
        "incident_bot_outbox_depth", "Slack calls in the outbox not delivered yet (dead letters apart)"
    )
    outbox.add_metric([], depth)
    age = GaugeMetricFamily(
        "incident_bot_outbox_oldest_age_seconds", "Age of the oldest undelivered outbox row (0 when there is none)"
    )
    age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    dead = GaugeMetricFamily(
        "incident_bot_dead_letters", "Slack calls refused for good and set aside (incident-bot outbox)"
    )
    dead.add_metric([], connection.execute(sa.select(sa.func.count()).where(o.dead_at.is_not(None))).scalar_one())
    errors = GaugeMetricFamily(
        "incident_bot_slack_errors",
        "Undelivered outbox rows (retrying or dead letters) by the Slack Web API error of their last attempt",
        labels=["error"],
    )
    counts: dict[str, int] = {}
    failing = sa.and_(o.delivered_at.is_(None), o.last_error.is_not(None))
    for last_error, count in connection.execute(
        sa.select(o.last_error, sa.func.count()).where(failing).group_by(o.last_error)
    ):
        code = error_code(last_error)
        counts[code] = counts.get(code, 0) + int(count)
    for code, count in sorted(counts.items()):
        errors.add_metric([code], count)
    return [backlog, outbox, age, dead, errors, *_sweep(connection, now)]


def _sweep(connection: Connection, now: datetime) -> list[Metric]:
    """The sweep runs in a worker (any replica's); each run is recorded in job_run (bot/runtime/scheduler.py)."""
    run = jobs.last_run(connection, jobs.SWEEP)
    if run is None:
        return []  # no sweep yet: alert on absent(incident_bot_sweep_last_run_timestamp_seconds)
    last = GaugeMetricFamily("incident_bot_sweep_last_run_timestamp_seconds", "When the escalation sweep last finished")
    last.add_metric([], run.finished_at.timestamp())
    lag = GaugeMetricFamily(
        "incident_bot_sweep_lag_seconds",
        "Seconds since the escalation sweep last finished (it runs every ESCALATION_CHECK_INTERVAL)",
    )
    lag.add_metric([], max(0.0, (now - run.finished_at).total_seconds()))
    duration = GaugeMetricFamily("incident_bot_sweep_duration_seconds", "How long the last escalation sweep took")
    duration.add_metric([], run.duration_seconds)
    return [last, lag, duration]


def _open_incidents(connection: Connection) -> Metric:
    c = incident_table.c
    rows = connection.execute(
        sa.select(c.severity, sa.func.count()).where(c.status != Status.RESOLVED.value).group_by(c.severity)
    )
    counts = dict.fromkeys(SEVERITIES, 0) | {severity: int(count) for severity, count in rows}
    family = GaugeMetricFamily(
        "incident_bot_open_incidents", "Incidents not resolved, by severity", labels=["severity"]
    )
    for severity, count in counts.items():
        family.add_metric([severity], count)
    return family


def _durations(connection: Connection, now: datetime) -> list[Metric]:
    window = Period(kind="custom", start=now - DURATION_WINDOW, end=now, label="last 30 days")
    with Session(bind=connection) as session:
        samples = metrics.duration_samples(session, period=window)
    mtta = HistogramMetricFamily(
        "incident_bot_mtta_seconds",
        "Declared to acknowledged, of the incidents declared in the last 30 days that were acknowledged",
        labels=["severity"],
    )
    mttr = HistogramMetricFamily(
        "incident_bot_mttr_seconds",
        "Started to resolved (reopened: the time open), of the incidents declared in the last 30 days, resolved",
        labels=["severity"],
    )
    for severity in SEVERITIES:
        acks, _mitigations, resolutions = samples.get(severity, ([], [], []))
        mtta.add_metric([severity], _buckets(acks), sum_value=float(sum(acks)))
        mttr.add_metric([severity], _buckets(resolutions), sum_value=float(sum(resolutions)))
    return [mtta, mttr]


def _buckets(values: Sequence[int]) -> list[tuple[str, float]]:
    """Cumulative bucket counts, as the exposition format wants them, ending with +Inf."""
    edges = [(str(edge), float(sum(1 for v in values if v <= edge))) for edge in DURATION_BUCKETS]
    return [*edges, ("+Inf", float(len(values)))]
