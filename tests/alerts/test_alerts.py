"""The Alertmanager webhook: the mapping to incidents, malformed bodies, and the real HTTP endpoint."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alert_payloads import NOW, TOKEN, alert, cards, iso, notification, post
from bot_harness import Bot, poll
from fake_slack import Call
from sqlmodel import Session, select

from bot.alerts import mapping as alert_mapping
from bot.alerts import payload as alert_payload
from bot.alerts import service as alert_service
from bot.ids import Action, Callback
from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.incidents.forms import ResolveForm
from bot.runtime import alert_route
from bot.settings import Settings
from bot.slack.context import Runtime
from storage import db
from storage.db import unit_of_work
from storage.models import AlertNotification, Incident, Outbox, TimelineEntry


def parsed(body: dict[str, Any]) -> alert_payload.Webhook:
    return alert_payload.parse_webhook(json.dumps(body).encode())


# -- mapping (pure) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", "P0"),
        ("high", "P1"),
        ("error", "P1"),
        ("warning", "P2"),
        ("info", "P3"),
        ("P0", "P0"),
        ("P1", "P1"),
        ("P2", "P2"),
        ("P3", "P3"),
        ("p1", "P1"),
        ("Critical", "P0"),
        ("sev-9", "P3"),  # unknown: the configured default
        ("", "P3"),
        (None, "P3"),  # no severity label at all
    ],
)
def test_severity_label_maps_to_a_severity(label: str | None, expected: str) -> None:
    labels = {} if label is None else {"severity": label}
    webhook = parsed(notification(alert(**labels)))
    assert alert_mapping.severity_of(webhook, "P3") == expected


def test_severity_default_comes_from_settings() -> None:
    webhook = parsed(notification(alert(severity="page-someone")))
    assert alert_mapping.severity_of(webhook, "P2") == "P2"
    assert alert_mapping.severity_of(webhook, "P1") == "P1"


def test_severity_without_a_common_label_is_the_highest_among_the_alerts() -> None:
    webhook = parsed(notification(alert(instance="a", severity="warning"), alert(instance="b", severity="critical")))
    assert "severity" not in webhook.common_labels
    assert alert_mapping.severity_of(webhook, "P3") == "P0"
    webhook = parsed(notification(alert(instance="a", severity="info"), alert(instance="b")))
    assert alert_mapping.severity_of(webhook, "P2") == "P3"


def test_title_is_the_summary_annotation_else_the_alert_name() -> None:
    with_summary = notification(alert(annotations={"summary": "  Disk   almost\nfull on db-1 "}))
    assert alert_mapping.title_of(parsed(with_summary)) == "Disk almost full on db-1"
    assert alert_mapping.title_of(parsed(notification(alert("HighLatency")))) == "HighLatency"
    # Summaries that differ between alerts are not common: the alert name is the title.
    mixed = notification(
        alert(instance="a", annotations={"summary": "a is slow"}), alert(instance="b", annotations={"summary": "b"})
    )
    assert alert_mapping.title_of(parsed(mixed)) == "DiskFull"


def test_long_titles_are_cut_to_the_title_limit() -> None:
    long = "Disk " + "very " * 60 + "full"
    title = alert_mapping.title_of(parsed(notification(alert(annotations={"summary": long}))))
    assert len(title) == 150 and title.endswith("…") and title.startswith("Disk very very")


def test_declaration_takes_detection_start_and_runbook_from_the_alerts() -> None:
    early = NOW - timedelta(hours=2)
    webhook = parsed(
        notification(
            alert(instance="a", severity="critical", starts=NOW - timedelta(minutes=5)),
            alert(instance="b", severity="critical", starts=early),
            commonAnnotations={"runbook_url": "https://runbooks.example/disk-full"},
        )
    )
    form, extras = alert_mapping.declaration(webhook, default_severity="P2", now=NOW)
    assert (form.title, form.severity) == ("DiskFull", "P0")
    assert form.detection == "Alertmanager: DiskFull"
    assert form.detection_url == "http://prometheus.example:9090/graph?g0.expr=DiskFull"
    assert extras.source == "alertmanager"
    assert extras.started_at == early
    assert extras.alert_group == '{}:{alertname="DiskFull"}'
    assert extras.alert_name == "DiskFull"
    assert extras.runbook == "https://runbooks.example/disk-full"


def test_the_groups_service_label_is_what_the_incident_affects() -> None:
    shared = parsed(notification(alert(instance="a", service="checkout"), alert(instance="b", service="checkout")))
    assert alert_mapping.declaration(shared, default_severity="P2", now=NOW)[0].affected == "checkout"
    grouped = parsed(notification(alert(instance="a"), groupLabels={"service": " payments "}))
    assert alert_mapping.service_of(grouped) == "payments"
    mixed = parsed(notification(alert(instance="a", service="checkout"), alert(instance="b", service="search")))
    assert alert_mapping.declaration(mixed, default_severity="P2", now=NOW)[0].affected is None
    assert alert_mapping.service_of(parsed(notification(alert(instance="a")))) is None


def test_started_at_is_never_in_the_future_and_runbooks_must_be_links() -> None:
    webhook = parsed(
        notification(
            alert(starts=NOW + timedelta(hours=1), annotations={"runbook_url": "javascript:alert(1)"}),
        )
    )
    _, extras = alert_mapping.declaration(webhook, default_severity="P2", now=NOW)
    assert extras.started_at == NOW
    assert extras.runbook is None
    # A runbook on one alert only is still found.
    webhook = parsed(
        notification(
            alert(instance="a"), alert(instance="b", annotations={"runbook_url": "https://runbooks.example/b"})
        )
    )
    assert alert_mapping.declaration(webhook, default_severity="P2", now=NOW)[1].runbook == "https://runbooks.example/b"


def test_groups_have_their_own_keys_and_retries_share_one() -> None:
    first = notification(alert(instance="a"), alert(instance="b"))
    reordered = notification(alert(instance="b"), alert(instance="a"))
    other_group = notification(alert("HighLatency"))
    resolved = notification(
        alert(instance="a", status="resolved", ends=NOW), alert(instance="b", status="resolved", ends=NOW)
    )
    fired_again = notification(alert(instance="a", starts=NOW), alert(instance="b"))
    keys = [alert_mapping.dedupe_key(parsed(b)) for b in (first, reordered, other_group, resolved, fired_again)]
    assert keys[0] == keys[1]  # the same notification, however the alerts are ordered
    assert len(set(keys)) == 4
    assert all(len(k) == 64 for k in keys)  # fits AlertNotification.dedupe_key


def test_changes_name_alerts_that_started_and_stopped() -> None:
    a, b, c = alert(instance="a"), alert(instance="b"), alert(instance="c")
    before = alert_mapping.state_of(parsed(notification(a, b)))
    after = alert_mapping.state_of(parsed(notification(a, {**b, "status": "resolved", "endsAt": iso(NOW)}, c)))
    change = alert_mapping.changes(before, after)
    assert change.fired == ['DiskFull {instance="c"}']
    assert change.resolved == ['DiskFull {instance="b"}']
    # An alert that left the group has stopped firing too (send_resolved: false).
    assert alert_mapping.changes(before, alert_mapping.state_of(parsed(notification(a)))).resolved == [
        'DiskFull {instance="b"}'
    ]
    assert not alert_mapping.changes(before, before)


def test_resolved_notifications_carry_the_end_time() -> None:
    ends = [NOW - timedelta(minutes=3), NOW - timedelta(minutes=1)]
    webhook = parsed(
        notification(
            alert(instance="a", status="resolved", ends=ends[0]), alert(instance="b", status="resolved", ends=ends[1])
        )
    )
    assert webhook.status == "resolved"
    assert alert_mapping.ended_at_of(webhook, NOW) == ends[1]
    assert alert_mapping.ended_at_of(webhook, ends[0]) == ends[0]  # never after "now"
    text = alert_mapping.resolved_text(alert_mapping.Changes(resolved=["DiskFull"]), webhook)
    assert "resolved" in text and "DiskFull" in text
    blocks = alert_mapping.resolve_offer("INC-2026-01-04-001", text)
    button = blocks[1]["elements"][0]
    assert (button["action_id"], button["value"]) == (Action.RESOLVE.value, "INC-2026-01-04-001")


def test_label_values_are_escaped_in_replies() -> None:
    webhook = parsed(notification(alert(instance="<!channel>")))
    assert "<!channel>" not in alert_mapping.fired_text(webhook)
    assert "&lt;!channel&gt;" in alert_mapping.fired_text(webhook)


# -- malformed bodies ------------------------------------------------------------------------------


def _with(**changes: Any) -> bytes:
    return json.dumps(notification(**changes)).encode()


def _with_alert(**changes: Any) -> bytes:
    body = notification()
    body["alerts"][0].update(changes)
    return json.dumps(body).encode()


def _without(key: str) -> bytes:
    body = notification()
    del body[key]
    return json.dumps(body).encode()


MALFORMED = [
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b"{not json", "not JSON", id="non-json"),
    pytest.param(b"\xff\xfe\x00garbage", "not JSON", id="not-utf8"),
    pytest.param(b"payload=%7B%22version%22%3A%224%22%7D", "not JSON", id="form-encoded"),
    pytest.param(b"[1, 2]", "JSON array", id="json-list"),
    pytest.param(b'"firing"', "JSON string", id="json-string"),
    pytest.param(b"null", "JSON null", id="json-null"),
    pytest.param(b'{"type": "url_verification", "challenge": "x"}', "version", id="slack-payload"),
    pytest.param(_with(version="3"), "version", id="wrong-version"),
    pytest.param(_with(version=4), "version", id="version-not-text"),
    pytest.param(_without("groupKey"), "groupKey", id="missing-groupKey"),
    pytest.param(_with(groupKey=""), "groupKey", id="empty-groupKey"),
    pytest.param(_with(groupKey="x" * 3000), "groupKey", id="huge-groupKey"),
    pytest.param(_with(status="pending"), "status", id="bad-status"),
    pytest.param(_with(alerts={"a": 1}), "alerts", id="alerts-not-a-list"),
    pytest.param(_with(alerts=[]), "alerts", id="no-alerts"),
    pytest.param(_with(alerts=["firing"]), "alerts[0]", id="alert-not-an-object"),
    pytest.param(_with(truncatedAlerts=-1), "truncatedAlerts", id="negative-truncated"),
    pytest.param(_with(commonLabels={"severity": 2}), "commonLabels.severity", id="label-not-text"),
    pytest.param(_with_alert(startsAt="yesterday"), "alerts[0].startsAt", id="bad-startsAt"),
    pytest.param(_with_alert(startsAt=1767528000), "alerts[0].startsAt", id="unix-startsAt"),
    pytest.param(_with_alert(startsAt="2026-01-04T10:00:00"), "alerts[0].startsAt", id="no-zone"),
    pytest.param(_with_alert(endsAt="2026-13-40T00:00:00Z"), "alerts[0].endsAt", id="bad-endsAt"),
    pytest.param(_with_alert(status="silenced"), "alerts[0].status", id="bad-alert-status"),
    pytest.param(_with_alert(labels=None), "alerts[0].labels", id="labels-null"),
]


@pytest.mark.parametrize(("body", "fragment"), MALFORMED)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(alert_payload.WebhookError) as caught:
        alert_payload.parse_webhook(body)
    reason = str(caught.value)
    assert fragment in reason, reason
    assert "Traceback" not in reason and len(reason) <= 500


def test_a_real_alertmanager_body_parses() -> None:
    # As Alertmanager 0.25 sends it: nanosecond timestamps, zero endsAt, null-free maps.
    body = (
        b'{"receiver":"incident-bot","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"Probe",'
        b'"severity":"critical"},"annotations":{"summary":"Probe failing"},"startsAt":"2026-01-04T09:52:26.739266876'
        b'+02:00","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom:9090/graph","fingerprint":"1a30ba71cca2'
        b'921f"}],"groupLabels":{"alertname":"Probe"},"commonLabels":{"alertname":"Probe","severity":"critical"},'
        b'"commonAnnotations":{"summary":"Probe failing"},"externalURL":"http://am:9093","version":"4",'
        b'"groupKey":"{}:{alertname=\\"Probe\\"}","truncatedAlerts":0}'
    )
    webhook = alert_payload.parse_webhook(body)
    assert webhook.alerts[0].starts_at == datetime(2026, 1, 4, 7, 52, 26, 739266, tzinfo=UTC)
    assert webhook.alerts[0].ends_at is not None and webhook.alerts[0].ends_at.year == 1
    assert webhook.group_key == '{}:{alertname="Probe"}'
    assert alert_mapping.title_of(webhook) == "Probe failing"


# -- the service, on each database -----------------------------------------------------------------


def settings(**overrides: Any) -> Settings:
    return Settings(**{"slack_bot_token": "xoxb-test", "alertmanager_token": TOKEN, **overrides})


def take(sessions: db.SessionFactory, body: dict[str, Any], *, now: datetime = NOW, **kw: Any) -> alert_service.Outcome:
    return alert_service.take(sessions, parsed(body), settings=settings(**kw), now=now)


def all_incidents(sessions: db.SessionFactory) -> list[Incident]:
    with unit_of_work(sessions) as session:
        return list(session.exec(select(Incident).order_by(Incident.id)))


def alert_entries(sessions: db.SessionFactory, incident_id: str) -> list[TimelineEntry]:
    with unit_of_work(sessions) as session:
        statement = select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id,
            TimelineEntry.event.in_(alert_service.ALERT_EVENTS),  # type: ignore[union-attr]
        )
        return list(session.exec(statement.order_by(TimelineEntry.id)))  # type: ignore[arg-type]


def replies(sessions: db.SessionFactory, incident_id: str) -> list[dict[str, Any]]:
    with unit_of_work(sessions) as session:
        rows = session.exec(
            select(Outbox).where(Outbox.incident_id == incident_id, Outbox.kind == "thread_reply").order_by(Outbox.id)  # type: ignore[arg-type]
        )
        return [r.payload for r in rows]


def test_each_group_opens_one_incident(sessions: db.SessionFactory) -> None:
    disk = take(sessions, notification(alert(severity="critical", annotations={"summary": "Disk full"})))
    latency = take(sessions, notification(alert("HighLatency", severity="warning")))
    assert disk.declared and latency.declared and disk.incident_id != latency.incident_id
    found = {i.alert_name: i for i in all_incidents(sessions)}
    assert set(found) == {"DiskFull", "HighLatency"}
    assert (found["DiskFull"].title, found["DiskFull"].severity, found["DiskFull"].source) == (
        "Disk full",
        "P0",
        "alertmanager",
    )
    assert found["HighLatency"].severity == "P2"
    assert found["DiskFull"].started_at == NOW - timedelta(minutes=10)
    assert found["DiskFull"].alert_group_open == '{}:{alertname="DiskFull"}'
    # One card and one reply listing the firing alerts, through the outbox.
    with unit_of_work(sessions) as session:
        kinds = [r.kind for r in session.exec(select(Outbox).where(Outbox.incident_id == disk.incident_id))]
    assert sorted(kinds) == ["card_post", "thread_reply"]
    assert "1 alert firing" in replies(sessions, disk.incident_id or "")[0]["text"]


def test_repeats_update_the_incident_only_when_something_changed(sessions: db.SessionFactory) -> None:
    a, b = alert(instance="a"), alert(instance="b")
    first = take(sessions, notification(a))
    again = take(sessions, notification(a), now=NOW + timedelta(minutes=1))
    assert again == alert_service.Outcome(incident_id=first.incident_id, duplicate=True)
    grown = take(sessions, notification(a, b), now=NOW + timedelta(minutes=2))
    assert (grown.incident_id, grown.declared, grown.changed) == (first.incident_id, False, True)
    # An HA peer's copy (its own startsAt for b) is not a duplicate, yet says nothing new.
    twin = {**b, "startsAt": iso(NOW - timedelta(minutes=9))}
    same = take(sessions, notification(a, twin), now=NOW + timedelta(minutes=3))
    assert same == alert_service.Outcome(incident_id=first.incident_id)
    assert len(all_incidents(sessions)) == 1
    entries = alert_entries(sessions, first.incident_id or "")
    assert [e.event for e in entries] == ["alert_fired", "alert_updated"]
    texts = [r["text"] for r in replies(sessions, first.incident_id or "")]
    assert len(texts) == 2
    assert 'DiskFull {instance="b"}' in texts[1] and "1 new" in texts[1] and "2 alerts still firing" in texts[1]


def test_resolved_notes_it_and_marks_mitigated_at_the_end_time(sessions: db.SessionFactory) -> None:
    a, b = alert(instance="a"), alert(instance="b")
    fired = take(sessions, notification(a, b))
    ends = NOW - timedelta(minutes=1)
    done = notification(
        {**a, "status": "resolved", "endsAt": iso(ends - timedelta(minutes=2))},
        {**b, "status": "resolved", "endsAt": iso(ends)},
    )
    outcome = take(sessions, done, now=NOW + timedelta(minutes=5))
    assert outcome.incident_id == fired.incident_id and outcome.changed
    (incident,) = all_incidents(sessions)
    assert incident.status == "Mitigated" and incident.mitigated_at == ends
    assert incident.alert_group_open is not None  # resolving stays a human decision
    resolved_reply = next(r for r in replies(sessions, incident.id) if r.get("blocks"))
    assert "all alerts resolved" in resolved_reply["text"]
    assert [e.event for e in alert_entries(sessions, incident.id)] == ["alert_fired", "alert_resolved"]
    # The same resolved notification again changes nothing.
    assert take(sessions, done, now=NOW + timedelta(minutes=6)).duplicate


def test_auto_mitigate_off_leaves_the_status(sessions: db.SessionFactory) -> None:
    take(sessions, notification(alert()), alert_auto_mitigate=False)
    take(sessions, notification(alert(status="resolved", ends=NOW)), alert_auto_mitigate=False)
    (incident,) = all_incidents(sessions)
    assert incident.status == "Investigating" and incident.mitigated_at is None
    assert [e.event for e in alert_entries(sessions, incident.id)] == ["alert_fired", "alert_resolved"]


def test_resolved_without_an_open_incident_is_recorded_only(sessions: db.SessionFactory) -> None:
    outcome = take(sessions, notification(alert(status="resolved", ends=NOW)))
    assert outcome == alert_service.Outcome(incident_id=None)
    assert all_incidents(sessions) == []
    with unit_of_work(sessions) as session:
        assert len(list(session.exec(select(AlertNotification)))) == 1


def test_a_group_fires_a_new_incident_once_the_first_is_resolved(sessions: db.SessionFactory) -> None:
    first = take(sessions, notification(alert()))
    with unit_of_work(sessions) as session:
        form = ResolveForm(root_cause="disk", resolution="cleaned", root_cause_class="Capacity Issue")
        incidents.resolve(session, first.incident_id or "", form, user="U0ALICE", policy=settings().policy(), now=NOW)
    again = take(sessions, notification(alert(starts=NOW + timedelta(minutes=1))), now=NOW + timedelta(minutes=2))
    assert again.declared and again.incident_id != first.incident_id
    assert [i.status for i in all_incidents(sessions)] == ["Resolved", "Investigating"]


def _resolve(sessions: db.SessionFactory, incident_id: str, *, now: datetime) -> None:
    with unit_of_work(sessions) as session:
        form = ResolveForm(root_cause="disk", resolution="cleaned", root_cause_class="Capacity Issue")
        incidents.resolve(session, incident_id, form, user="U0ALICE", policy=settings().policy(), now=now)


def _reopen(sessions: db.SessionFactory, incident_id: str, *, now: datetime) -> None:
    with unit_of_work(sessions) as session:
        incidents.reopen(session, incident_id, user="U0BOB", policy=settings().policy(), now=now)


def test_a_reopened_incident_takes_its_group_back(sessions: db.SessionFactory) -> None:
    """The group firing again after its incident was reopened updates that incident: no second one."""
    first = take(sessions, notification(alert()))
    take(sessions, notification(alert(status="resolved", ends=NOW)), now=NOW + timedelta(minutes=1))
    _resolve(sessions, first.incident_id or "", now=NOW + timedelta(minutes=5))
    _reopen(sessions, first.incident_id or "", now=NOW + timedelta(hours=3))
    (reopened,) = all_incidents(sessions)
    assert reopened.alert_group_open == '{}:{alertname="DiskFull"}'
    later = NOW + timedelta(hours=3, minutes=1)
    again = take(sessions, notification(alert(starts=NOW + timedelta(hours=3))), now=later)
    assert (again.incident_id, again.declared, again.changed) == (first.incident_id, False, True)
    assert [i.status for i in all_incidents(sessions)] == ["Investigating"]
    assert [e.event for e in alert_entries(sessions, first.incident_id or "")][-1] == "alert_updated"
    # Resolving again lets go of the group, as the first resolution did.
    _resolve(sessions, first.incident_id or "", now=NOW + timedelta(hours=4))
    assert all_incidents(sessions)[0].alert_group_open is None


def test_reopening_leaves_the_group_to_a_newer_incident(sessions: db.SessionFactory) -> None:
    first = take(sessions, notification(alert()))
    _resolve(sessions, first.incident_id or "", now=NOW + timedelta(minutes=5))
    second = take(sessions, notification(alert(starts=NOW + timedelta(hours=1))), now=NOW + timedelta(hours=1))
    assert second.declared
    _reopen(sessions, first.incident_id or "", now=NOW + timedelta(hours=2))
    by_id = {i.id: i for i in all_incidents(sessions)}
    assert by_id[first.incident_id or ""].status == "Investigating"
    assert by_id[first.incident_id or ""].alert_group_open is None
    assert by_id[second.incident_id or ""].alert_group_open == '{}:{alertname="DiskFull"}'
    both = notification(alert(starts=NOW + timedelta(hours=1)), alert(instance="b"))
    update = take(sessions, both, now=NOW + timedelta(hours=3))
    assert update.incident_id == second.incident_id and not update.declared


def test_a_concurrent_declaration_is_taken_as_an_update(
    sessions: db.SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race two replicas run: both see no open incident, the second declare hits the unique index."""
    take(sessions, notification(alert(instance="a")))
    # Replay "the other replica committed first" by hiding the open incident from one attempt.
    calls = {"n": 0}
    real = alert_service.open_incident

    def blind_once(session: Session, group_key: str) -> Incident | None:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(session, group_key)

    monkeypatch.setattr(alert_service, "open_incident", blind_once)
    outcome = take(sessions, notification(alert(instance="a"), alert(instance="b")), now=NOW + timedelta(minutes=1))
    assert calls["n"] == 2 and not outcome.declared and outcome.changed
    assert len(all_incidents(sessions)) == 1


def test_database_down_answers_503() -> None:
    engine = db.create_db_engine("postgresql://postgres@127.0.0.1:1/nowhere", poolclass=sa.pool.NullPool)
    rt = Runtime.build(settings(), engine)
    route = alert_route.make_route(rt)
    assert route is not None
    status, body, _ = route({"authorization": f"Bearer {TOKEN}"}, json.dumps(notification()).encode())
    assert status == 503 and b"database unavailable" in body
    engine.dispose()


def test_route_is_off_without_a_token() -> None:
    engine = db.create_db_engine("sqlite://")
    assert alert_route.make_route(Runtime.build(Settings(slack_bot_token="xoxb-test"), engine)) is None
    assert alert_route.make_route(Runtime.build(settings(alertmanager_token=""), engine)) is None
    engine.dispose()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (None, False),
        ("", False),
        ("Bearer", False),
        ("Bearer wrong", False),
        (f"Bearer {TOKEN}x", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        ("Bearer ünïcode", False),
    ],
)
def test_bearer_token_check(header: str | None, ok: bool) -> None:
    assert alert_route.authorized(header, TOKEN) is ok


# -- over HTTP, through the real server --------------------------------------------------------------


def nothing_stored(bot: Bot) -> bool:
    with unit_of_work(bot.sessions) as session:
        counts = [
            session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (AlertNotification, Incident, Outbox)
        ]
    return counts == [0, 0, 0]


def in_thread(incident: Incident) -> Callable[[Call], bool]:
    return lambda c: c.params.get("thread_ts") == incident.card_ts


def stored(bot: Bot, incident_id: str) -> Incident:
    with unit_of_work(bot.sessions) as session:
        return incident_queries.get(session, incident_id)


@pytest.fixture
def am_bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot(alertmanager_token=TOKEN)


def test_endpoint_is_off_when_the_token_is_unset(bot: Bot) -> None:
    status, _ = post(bot, notification())
    assert status == 404
    assert nothing_stored(bot)


def test_missing_or_wrong_token_is_401(am_bot: Bot) -> None:
    for token in (None, "wrong", TOKEN + "x", TOKEN[:-1], TOKEN.upper()):
        status, body = post(am_bot, notification(), token=token)
        assert status == 401, token
        assert body["status"] == "error" and "token" in body["error"]
    status, _ = post(am_bot, notification(), token="")
    assert status == 401
    assert nothing_stored(am_bot)


def test_oversized_body_is_413(am_bot: Bot) -> None:
    huge = json.dumps(notification(alert(annotations={"description": "x" * (3 * 512 * 1024)}))).encode()
    assert len(huge) > 1.5 * 1024 * 1024
    connection = http.client.HTTPConnection("127.0.0.1", am_bot.service.port, timeout=15)
    try:
        connection.putrequest("POST", alert_route.PATH)
        connection.putheader("Authorization", f"Bearer {TOKEN}")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(huge)))
        connection.endheaders()
        # The server answers from the headers; it never reads (or stores) the body.
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()
    assert nothing_stored(am_bot)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{nope", "not JSON"),
        (_with(version="3"), "version"),
        (_without("groupKey"), "groupKey"),
        (_with(status="maybe"), "status"),
        (_with(alerts="all of them"), "alerts"),
        (_with_alert(startsAt="soon"), "alerts[0].startsAt"),
    ],
    ids=["non-json", "version", "groupKey", "status", "alerts", "startsAt"],
)
def test_malformed_bodies_are_400_and_store_nothing(am_bot: Bot, raw: bytes, fragment: str) -> None:
    status, body = post(am_bot, None, raw=raw)
    assert status == 400
    assert body["status"] == "error" and fragment in body["error"]
    assert nothing_stored(am_bot)


def test_firing_declares_and_posts_the_card(am_bot: Bot) -> None:
    body = notification(
        alert(instance="db-1", severity="critical", annotations={"summary": "Disk full on db-1"}),
        commonAnnotations={"summary": "Disk full on db-1", "runbook_url": "https://runbooks.example/disk"},
    )
    status, answer = post(am_bot, body)
    assert status == 200 and answer["status"] == "ok" and answer["incident"].startswith("INC-")
    card = am_bot.fake.wait_for("chat.postMessage", where=cards)[0]
    text = json.dumps(card.params["blocks"])
    for expected in (
        answer["incident"],
        "Disk full on db-1",
        "P0",
        "Investigating",
        "alertmanager",
        "Alertmanager: DiskFull",
    ):
        assert expected in text, expected
    assert "https://runbooks.example/disk" in text  # the alert's runbook is the card's runbook button
    incident = am_bot.wait_incident(lambda i: i.card_ts is not None)
    assert (incident.id, incident.source, incident.severity) == (answer["incident"], "alertmanager", "P0")
    reply = am_bot.fake.wait_for("chat.postMessage", where=in_thread(incident))[0]
    assert "1 alert firing" in reply.params["text"] and "DiskFull" in reply.params["text"]


def test_repeats_open_no_second_incident_and_note_only_changes(am_bot: Bot) -> None:
    a, b = alert(instance="a"), alert(instance="b")
    _, first = post(am_bot, notification(a))
    incident = am_bot.wait_incident(lambda i: i.card_ts is not None)
    am_bot.fake.wait_for("chat.postMessage", where=in_thread(incident))
    # An identical retry adds nothing.
    status, again = post(am_bot, notification(a))
    assert status == 200 and again["incident"] == first["incident"]
    am_bot.fake.assert_no_more("chat.postMessage", 1, where=in_thread(incident))
    # A new alert in the group: one reply naming it.
    status, grown = post(am_bot, notification(a, b))
    assert status == 200 and grown["incident"] == first["incident"]
    change = am_bot.fake.wait_for("chat.postMessage", count=2, where=in_thread(incident))[1]
    assert 'DiskFull {instance="b"}' in change.params["text"]
    post(am_bot, notification(a, b))
    am_bot.fake.assert_no_more("chat.postMessage", 2, where=in_thread(incident))
    assert [i.id for i in am_bot.incidents()] == [first["incident"]]
    am_bot.fake.assert_no_more("chat.postMessage", 1, where=cards)


def test_resolved_offers_the_resolve_button_and_mitigates(am_bot: Bot) -> None:
    a = alert(severity="warning")
    _, answer = post(am_bot, notification(a))
    incident = am_bot.wait_incident(lambda i: i.card_ts is not None)
    ends = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    status, resolved = post(am_bot, notification({**a, "status": "resolved", "endsAt": iso(ends)}))
    assert status == 200 and resolved["incident"] == answer["incident"]
    reply = am_bot.fake.wait_for("chat.postMessage", where=lambda c: in_thread(incident)(c) and "blocks" in c.params)[0]
    assert "all alerts resolved" in reply.params["text"]
    buttons = [e for b in reply.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in buttons] == [(Action.RESOLVE.value, incident.id)]
    after = stored(am_bot, incident.id)
    assert after.status == "Mitigated" and after.mitigated_at == ends
    poll(lambda: any("Mitigated" in c.params.get("text", "") for c in am_bot.fake.calls("chat.postMessage")))
    # The button is the card's own Resolve action: it opens the resolve modal.
    am_bot.click(Action.RESOLVE.value, incident.id, card=incident)
    modal = am_bot.fake.wait_for("views.open")[0].params["view"]
    assert modal["callback_id"] == Callback.RESOLVE.value and modal["private_metadata"] == incident.id
    assert stored(am_bot, incident.id).status == "Mitigated"  # not resolved by the alert itself


def test_slack_down_still_stores_and_posts_later(am_bot: Bot) -> None:
    am_bot.fake.fail("chat.postMessage", status=500, times=None)
    status, answer = post(am_bot, notification(alert()))
    assert status == 200 and answer["incident"]
    assert [i.id for i in am_bot.incidents()] == [answer["incident"]]
    am_bot.fake.wait_for("chat.postMessage")  # tried, and failed
    assert stored(am_bot, answer["incident"]).card_ts is None
    am_bot.fake.heal()
    poll(lambda: stored(am_bot, answer["incident"]).card_ts is not None, timeout=20, message="card after heal")
    posted = [c for c in am_bot.fake.calls("chat.postMessage") if c.status == 200 and cards(c)]
    assert len(posted) == 1 and answer["incident"] in json.dumps(posted[0].params["blocks"])


def test_identical_deliveries_to_two_replicas_at_once(db_url: str, make_bot: Callable[..., Bot]) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("replicas racing on one database is a PostgreSQL deployment; SQLite serialises all writers")
    replicas = [make_bot(alertmanager_token=TOKEN), make_bot(alertmanager_token=TOKEN)]
    body = notification(alert(instance="a", severity="critical"), alert(instance="b", severity="critical"))
    barrier = threading.Barrier(6)
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def deliver(n: int) -> None:
        barrier.wait()
        answer = post(replicas[n % 2], body)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 6 and {s for s, _ in answers} == {200}
    assert len({a["incident"] for _, a in answers}) == 1
    (incident,) = replicas[0].incidents()
    replicas[0].wait_incident(lambda i: i.card_ts is not None)
    fake = replicas[0].fake
    fake.wait_for("chat.postMessage", where=in_thread(incident))
    fake.assert_no_more("chat.postMessage", 1, where=cards, settle=1.0)
    fake.assert_no_more("chat.postMessage", 1, where=in_thread(incident), settle=0.5)
    with unit_of_work(replicas[0].sessions) as session:
        assert len(list(session.exec(select(AlertNotification)))) == 1
