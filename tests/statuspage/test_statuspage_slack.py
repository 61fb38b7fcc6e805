"""The status page driven from Slack, end to end through the real HTTP server and the fake Slack:
publish from the card, post updates, the reminder, the final update at resolve, maintenance windows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta

import alert_payloads as ap
import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from sp_slack import (
    card_buttons,
    maintenance_values,
    page,
    page_settings,
    publish,
    thread_texts,
    update_values,
    wait_page,
)

from bot.ids import Action, Block, Callback
from bot.runtime import statuspage_jobs
from bot.statuspage import service
from storage import db
from storage.models import utcnow
from storage.statuspage import PublicIncident


def _public(bot: Bot, incident_id: str) -> PublicIncident | None:
    with db.unit_of_work(bot.sessions) as session:
        found = service.open_for_incident(incident_id, session=session)
        if found is None:
            from sqlmodel import select

            found = session.exec(select(PublicIncident).where(PublicIncident.incident_id == incident_id)).first()
        if found is not None:
            session.expunge(found)
        return found


def test_the_card_has_no_status_page_button_when_the_page_is_off(bot: Bot) -> None:
    incident = bot.declare("Checkout down", "P1")
    assert Action.PUBLISH.value not in card_buttons(bot, incident)


def test_publish_from_the_card_shows_on_the_page_within_a_second(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings(status_page_url="https://status.example.com"))
    incident = bot.declare("Internal: pg-main-3 OOM killed by cron", "P1", category="Payment Gateway")
    assert card_buttons(bot, incident)[Action.PUBLISH.value] == incident.id
    started = time.monotonic()
    assert publish(bot, incident) == {}
    body = wait_page(bot, "Checkout unavailable", timeout=1.0)
    assert time.monotonic() - started < 1.5
    assert "Payments fail for most users." in body
    assert "pg-main-3" not in body and incident.id not in body  # nothing internal
    view = bot.fake.calls("views.open")[-1].params["view"]
    components = next(b for b in view["blocks"] if b.get("block_id") == Block.COMPONENTS.value)["element"]
    assert [o["value"] for o in components["options"]] == ["api", "web", "cdn", "db"]
    summary = json.loads(page(bot, "/api/v2/summary.json"))
    assert [i["name"] for i in summary["incidents"]] == ["Checkout unavailable"]
    assert {c["name"]: c["status"] for c in summary["components"]}["API"] == "major_outage"
    # The card now offers an update; the thread says it was published, with the public link.
    public = _public(bot, incident.id)
    assert public is not None
    poll(lambda: card_buttons(bot, incident).get(Action.STATUS_UPDATE.value) == str(public.id), message="card")
    poll(lambda: any("published this to the status page" in t for t in thread_texts(bot, incident)), message="reply")
    assert any(f"https://status.example.com/status/incidents/{public.id}" in t for t in thread_texts(bot, incident))


def test_an_unpublished_incident_never_appears(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    secret = bot.declare("Secret internal outage", "P0")
    shown = bot.declare("Visible one", "P1")
    publish(bot, shown, title="Website slow", components=("web",), impact="degraded_performance")
    wait_page(bot, "Website slow")
    for path in ("/status", "/status/history", "/api/v2/incidents.json", "/status/history.atom"):
        assert "Secret internal outage" not in page(bot, path) and secret.id not in page(bot, path)


def test_a_second_publish_is_refused_under_the_title(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    incident = bot.declare("Checkout down", "P1")
    publish(bot, incident)
    answer = publish(bot, incident)
    assert answer["response_action"] == "errors" and Block.PUBLIC_TITLE.value in answer["errors"]


def test_a_form_without_components_keeps_the_modal_open(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    incident = bot.declare("Checkout down", "P1")
    answer = publish(bot, incident, components=())
    assert answer["response_action"] == "errors" and Block.COMPONENTS.value in answer["errors"]
    assert _public(bot, incident.id) is None


def test_status_update_then_the_reminder_once_when_due(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    incident = bot.declare("Checkout down", "P1", commander="U0CAROL")
    publish(bot, incident, next_update=None)
    public = _public(bot, incident.id)
    assert public is not None and public.next_update_due is None
    bot.click(Action.STATUS_UPDATE.value, str(public.id), card=incident)
    view = bot.fake.wait_for("views.open", count=2)[-1].params["view"]
    assert view["callback_id"] == Callback.STATUS_UPDATE.value and view["private_metadata"] == str(public.id)
    answer = bot.send_ok(
        sr.view_submission(
            Callback.STATUS_UPDATE.value,
            update_values("identified", "A bad deploy; rolling back.", next_update="15"),
            secret=SECRET,
            private_metadata=str(public.id),
        )
    )
    assert answer == {}
    wait_page(bot, "A bad deploy; rolling back.")
    due = _public(bot, incident.id)
    assert due is not None and due.next_update_due is not None
    assert timedelta(minutes=14) < due.next_update_due - utcnow() <= timedelta(minutes=15)
    # Not yet due: nothing. Due: one reminder to the commander; called again (another replica): none.
    rt = bot.service.background.rt if bot.service.background else bot.service.rt
    assert statuspage_jobs.remind_job(rt, now=due.next_update_due - timedelta(seconds=1)) == []
    assert statuspage_jobs.remind_job(rt, now=due.next_update_due + timedelta(seconds=1)) == [public.id]
    assert statuspage_jobs.remind_job(rt, now=due.next_update_due + timedelta(minutes=5)) == []
    poll(lambda: any("<@U0CAROL>" in t and "status page update" in t for t in thread_texts(bot, incident)))
    time.sleep(0.3)  # let any duplicate arrive (the outbox is asynchronous), not waiting for a deadline
    assert sum("status page update" in t and "is due" in t for t in thread_texts(bot, incident)) == 1


def test_resolve_asks_for_the_final_public_update(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    incident = bot.declare("Checkout down", "P1")
    publish(bot, incident)
    bot.click(Action.RESOLVE.value, incident.id, card=incident)
    view = bot.fake.wait_for("views.open", count=2)[-1].params["view"]
    final = next(b for b in view["blocks"] if b.get("block_id") == Block.FINAL_UPDATE.value)
    assert final["element"]["initial_value"] == "This incident has been resolved."
    fields = {
        Block.ROOT_CAUSE: sr.plain("A bad deploy"),
        Block.RESOLUTION: sr.plain("Rolled back"),
        Block.ROOT_CAUSE_CLASS: sr.select("Configuration Error"),
        Block.FINAL_UPDATE: sr.plain("Payments work again; sorry for the trouble."),
    }
    values = {b.value: {b.value + "_input": e} for b, e in fields.items()}
    submission = sr.view_submission(Callback.RESOLVE.value, values, secret=SECRET, private_metadata=incident.id)
    answer = bot.send_ok(submission)
    assert answer == {}
    public = _public(bot, incident.id)
    assert public is not None and public.status == "resolved" and public.resolved_at is not None
    wait_page(bot, "Payments work again; sorry for the trouble.", path=f"/status/incidents/{public.id}")


def test_resolve_of_an_unpublished_incident_has_no_final_update(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    incident = bot.declare("Checkout down", "P1")
    bot.click(Action.RESOLVE.value, incident.id, card=incident)
    view = bot.fake.wait_for("views.open")[-1].params["view"]
    assert Block.FINAL_UPDATE.value not in [b.get("block_id") for b in view["blocks"]]


def test_maintenance_window_from_the_command_silences_its_alerts(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings(alertmanager_token=ap.TOKEN))
    bot.send_ok(sr.slash_command("maintenance", secret=SECRET))
    view = bot.fake.wait_for("views.open")[-1].params["view"]
    assert view["callback_id"] == Callback.MAINTENANCE.value
    now = utcnow()
    answer = bot.send_ok(
        sr.view_submission(
            Callback.MAINTENANCE.value,
            maintenance_values(("api",), now - timedelta(minutes=5), now + timedelta(hours=1), "Database upgrade"),
            secret=SECRET,
        )
    )
    assert answer == {}
    wait_page(bot, "Database upgrade")
    # The API (service label api-gateway) is under maintenance: recorded, no incident, no card.
    status, body = ap.post(bot, ap.notification(ap.alert("ApiDown", service="api-gateway", starts=now)))
    assert (status, body["incident"]) == (200, None)
    # Another component is not: that alert opens an incident as ever.
    status, body = ap.post(bot, ap.notification(ap.alert("DbDown", service="postgres", starts=now)))
    assert status == 200 and body["incident"] is not None
    assert [i.title for i in bot.incidents()] == ["DbDown"]


def test_maintenance_that_ends_before_it_starts_is_refused(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(**page_settings())
    now = utcnow()
    answer = bot.send_ok(
        sr.view_submission(
            Callback.MAINTENANCE.value,
            maintenance_values(("api",), now + timedelta(hours=2), now + timedelta(hours=1), "x"),
            secret=SECRET,
        )
    )
    assert answer["response_action"] == "errors" and Block.ENDS_AT.value in answer["errors"]
