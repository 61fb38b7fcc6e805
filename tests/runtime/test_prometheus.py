"""GET /metrics: the exposition parses, and each figure reads what the database and the acks say."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from bot.runtime import prometheus, prometheus_db
from bot.runtime.scheduler import Throttle
from storage import db, inbox, jobs
from storage.models import Incident, Outbox
from storage.readonly import create_read_engine

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics(db_url: str) -> Iterator[prometheus.Metrics]:
    m = prometheus.Metrics(create_read_engine(db_url), cache_seconds=0)
    yield m
    m.close()


def scrape(m: prometheus.Metrics) -> dict[Any, float]:
    status, body, headers = m.route({}, b"")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(body.decode())


def incident(
    n: int, severity: str, *, declared: datetime, ack: float | None = None, resolve: float | None = None
) -> Incident:
    """An incident declared at `declared`, acknowledged and resolved so many seconds later."""
    return Incident(
        id=f"INC-{declared:%Y-%m-%d}-{n:03d}",
        title=f"incident {n}",
        severity=severity,
        status="Resolved" if resolve is not None else "Investigating",
        started_at=declared,
        declared_at=declared,
        acknowledged_at=declared + timedelta(seconds=ack) if ack is not None else None,
        resolved_at=declared + timedelta(seconds=resolve) if resolve is not None else None,
    )


def outbox_row(*, error: str | None = None, delivered: bool = False, dead: bool = False, age: float = 0) -> Outbox:
    created = NOW - timedelta(seconds=age)
    return Outbox(
        kind="thread_reply",
        payload={},
        created_at=created,
        next_attempt_at=created,
        last_error=error,
        delivered_at=NOW if delivered else None,
        dead_at=NOW if dead else None,
    )


@freeze_time(NOW)
def test_the_exposition_reads_the_database(engine: Any, metrics: prometheus.Metrics) -> None:
    with Session(engine) as session:
        session.add_all(
            [
                incident(1, "P1", declared=NOW - timedelta(hours=1)),  # open
                incident(2, "P1", declared=NOW - timedelta(hours=2), ack=120),  # open, acknowledged
                incident(3, "P0", declared=NOW - timedelta(days=2), ack=30, resolve=500),
                incident(4, "P2", declared=NOW - timedelta(days=3), ack=4000, resolve=7000),
                incident(5, "P0", declared=NOW - timedelta(days=40), ack=10, resolve=100),  # outside the 30 days
            ]
        )
        session.add_all(
            [
                outbox_row(age=90),  # waiting, never failed
                outbox_row(error="HTTP 429 ratelimited", age=30),  # retrying
                outbox_row(error="HTTP 404 channel_not_found", dead=True),
                outbox_row(error="HTTP 404 channel_not_found", dead=True),
                outbox_row(error="HTTP 503"),
                outbox_row(error="ConnectionError: [Errno 111] refused xoxb-0000"),
                outbox_row(error="HTTP 500 internal_error", delivered=True),  # went out on a retry
            ]
        )
        session.commit()
        for n in range(3):
            inbox.record(session.connection(), key=f"k{n}", mode="http", body="{}", headers={}, now=NOW)
        session.connection().execute(inbox.TABLE.update().where(inbox.TABLE.c.key == "k0").values(done_at=NOW))
        jobs.record_run(
            session.connection(), name=jobs.SWEEP, finished_at=NOW - timedelta(seconds=7), duration_seconds=0.25
        )
        session.commit()

    found = scrape(metrics)
    assert value(found, "incident_bot_database_up") == 1
    assert [value(found, "incident_bot_open_incidents", severity=s) for s in ("P0", "P1", "P2", "P3")] == [0, 2, 0, 0]
    assert value(found, "incident_bot_inbox_backlog") == 2
    assert value(found, "incident_bot_outbox_depth") == 4  # neither the dead letters nor the delivered one
    assert value(found, "incident_bot_outbox_oldest_age_seconds") == 90
    assert value(found, "incident_bot_dead_letters") == 2
    errors = {labels[0][1]: v for (name, labels), v in found.items() if name == "incident_bot_slack_errors"}
    assert errors == {"ratelimited": 1, "channel_not_found": 2, "http_503": 1, "ConnectionError": 1}
    assert value(found, "incident_bot_sweep_lag_seconds") == 7
    assert value(found, "incident_bot_sweep_duration_seconds") == 0.25
    assert value(found, "incident_bot_sweep_last_run_timestamp_seconds") == (NOW - timedelta(seconds=7)).timestamp()
    # MTTA: P1 120 s (the open one counts once acknowledged), P0 30 s, P2 4000 s; the 40-day-old P0 is out.
    assert value(found, "incident_bot_mtta_seconds_count", severity="P1") == 1
    assert value(found, "incident_bot_mtta_seconds_bucket", severity="P1", le="60.0") == 0
    assert value(found, "incident_bot_mtta_seconds_bucket", severity="P1", le="300.0") == 1
    assert value(found, "incident_bot_mtta_seconds_count", severity="P0") == 1
    assert value(found, "incident_bot_mtta_seconds_sum", severity="P0") == 30
    assert value(found, "incident_bot_mtta_seconds_bucket", severity="P2", le="3600.0") == 0
    assert value(found, "incident_bot_mtta_seconds_bucket", severity="P2", le="7200.0") == 1
    assert value(found, "incident_bot_mttr_seconds_count", severity="P1") == 0
    assert value(found, "incident_bot_mttr_seconds_bucket", severity="P0", le="300.0") == 0
    assert value(found, "incident_bot_mttr_seconds_bucket", severity="P0", le="600.0") == 1
    assert value(found, "incident_bot_mttr_seconds_bucket", severity="P0", le="+Inf") == 1
    assert value(found, "incident_bot_mttr_seconds_sum", severity="P2") == 7000
    # No secret and no message text reaches a label.
    assert "xoxb" not in metrics.route({}, b"")[1].decode()


def test_every_name_has_the_prefix_and_a_unit_where_it_measures_time(metrics: prometheus.Metrics) -> None:
    for family in text_string_to_metric_families(metrics.route({}, b"")[1].decode()):
        assert family.name.startswith("incident_bot_"), family.name
        name = family.name.removesuffix("_created")  # prometheus_client's creation times of counters
        if "duration" in name or "lag" in name or "age" in name:
            assert name.endswith("_seconds"), name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_the_database_figures_are_cached_for_a_few_seconds(engine: Any, db_url: str) -> None:
    m = prometheus.Metrics(create_read_engine(db_url), cache_seconds=3600)
    try:
        assert value(scrape(m), "incident_bot_open_incidents", severity="P3") == 0
        with Session(engine) as session:
            session.add(incident(1, "P3", declared=datetime.now(UTC)))
            session.commit()
        assert value(scrape(m), "incident_bot_open_incidents", severity="P3") == 0  # the cached read
        m.database.cache_seconds = 0
        assert value(scrape(m), "incident_bot_open_incidents", severity="P3") == 1
    finally:
        m.close()


def test_a_database_that_does_not_answer_gives_up_zero_and_the_rest_still_answers() -> None:
    m = prometheus.Metrics(create_read_engine("postgresql://postgres@127.0.0.1:9/none", wait=1), cache_seconds=0)
    try:
        m.observe_ack({"command": "/incident"}, 200, 0.01)
        found = scrape(m)
        assert value(found, "incident_bot_database_up") == 0
        assert value(found, "incident_bot_slack_acks_total", surface="command", status="200") == 1
        assert not any(name == "incident_bot_open_incidents" for name, _ in found)
    finally:
        m.close()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"command": "/incident", "text": ""}, "command"),
        ({"type": "block_actions"}, "action"),
        ({"type": "view_submission"}, "view"),
        ({"type": "view_closed"}, "view"),
        ({"type": "event_callback"}, "event"),
        ({"type": "shortcut"}, "shortcut"),
        ({"type": "message_action"}, "shortcut"),
        ({"type": "block_suggestion"}, "options"),
        ({"type": "url_verification"}, "other"),
        ("not a dict", "other"),
    ],
)
def test_surface(payload: Any, expected: str) -> None:
    assert prometheus.surface(payload) == expected


@pytest.mark.parametrize(
    ("last_error", "expected"),
    [
        ("HTTP 404 channel_not_found", "channel_not_found"),
        ("HTTP 429 ratelimited", "ratelimited"),
        ("HTTP 502", "http_502"),
        ("TimeoutError: The read operation timed out", "TimeoutError"),
        ("HTTP 200 <html>what is this", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_error_code(last_error: str | None, expected: str) -> None:
    assert prometheus_db.error_code(last_error) == expected


def test_acks_are_counted_by_surface_around_the_real_ack(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    bot.send_ok(sr.slash_command("help", secret=SECRET))
    bot.send_ok(sr.slash_command("list", secret=SECRET))
    status, _, _ = bot.send(sr.slash_command("help", secret="not-the-secret"))
    assert status == 401
    code, body = bot.get(prometheus.PATH)
    assert code == 200
    found = samples(body.decode())
    assert value(found, "incident_bot_slack_acks_total", surface="command", status="200") == 2
    assert value(found, "incident_bot_slack_acks_total", surface="command", status="401") == 1
    assert value(found, "incident_bot_slack_acks_total", surface="event", status="200") == 0
    assert value(found, "incident_bot_slack_ack_duration_seconds_count", surface="command") == 3
    assert value(found, "incident_bot_slack_ack_duration_seconds_bucket", surface="command", le="5.0") == 3
    assert value(found, "incident_bot_database_up") == 1


def test_each_service_has_a_registry_of_its_own(make_bot: Callable[..., Bot]) -> None:
    one, two = make_bot(), make_bot()
    one.send_ok(sr.slash_command("help", secret=SECRET))
    counts = [
        value(
            samples(b.get(prometheus.PATH)[1].decode()),
            "incident_bot_slack_acks_total",
            surface="command",
            status="200",
        )
        for b in (one, two)
    ]
    assert counts == [1, 0]


def test_the_sweep_records_its_runs(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()  # escalation_check_interval 0.5 s

    def lag() -> float | None:
        found = samples(bot.get(prometheus.PATH)[1].decode())
        return found.get(("incident_bot_sweep_lag_seconds", ()))

    from bot_harness import poll

    poll(lambda: lag() is not None, message="a sweep recorded in job_run")
    with db.unit_of_work(bot.sessions) as session:
        run = jobs.last_run(session.connection(), jobs.SWEEP)
    assert run is not None and run.duration_seconds >= 0


def test_the_sweep_is_recorded_at_most_every_few_seconds() -> None:
    with freeze_time(NOW) as frozen:
        throttle = Throttle(5)
        assert throttle.due()  # the first sweep after start-up is recorded at once
        assert not throttle.due()
        frozen.tick(4.9)
        assert not throttle.due()
        frozen.tick(0.2)
        assert throttle.due()
