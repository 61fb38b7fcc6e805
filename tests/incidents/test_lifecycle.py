"""End to end: declare, the card, acknowledge, mitigate, severity, follow-ups, resolve, reopen, commands.

Every test drives the real HTTP server with signed requests and asserts on the Web API calls the
fake Slack recorded, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot, declare_values, poll
from sqlmodel import select

from bot.ids import Action, Block, Callback
from bot.incidents import queries as incident_queries
from bot.incidents import timeline
from storage.db import unit_of_work
from storage.models import FollowUp, Incident


def card_of(bot: Bot, incident_id: str) -> dict[str, Any]:
    """The newest rendering of the card Slack holds (post or update)."""
    calls = [
        c
        for c in bot.fake.calls()
        if c.method in ("chat.postMessage", "chat.update")
        and incident_id in json.dumps(c.params.get("blocks", []))
        and "thread_ts" not in c.params
    ]
    assert calls, f"no card for {incident_id}"
    return calls[-1].params


def mrkdwn_texts(node: Any) -> list[str]:
    """Every mrkdwn text object in a block tree (the places Slack turns <!channel> into a ping)."""
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" else []
        return found + [t for value in node.values() for t in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    return []


def card_text(bot: Bot, incident_id: str) -> str:
    return json.dumps(card_of(bot, incident_id)["blocks"])


def thread_replies(bot: Bot, incident: Incident) -> list[str]:
    return [
        c.params["text"] for c in bot.fake.calls("chat.postMessage") if c.params.get("thread_ts") == incident.card_ts
    ]


def action_ids(bot: Bot, incident_id: str) -> list[str]:
    blocks = card_of(bot, incident_id)["blocks"]
    actions = next(b for b in blocks if b["type"] == "actions")
    return [e["action_id"] for e in actions["elements"]]


def stored(bot: Bot, incident_id: str) -> Incident:
    with unit_of_work(bot.sessions) as session:
        return incident_queries.get(session, incident_id)


# -- declaring ---------------------------------------------------------------------------------


def test_slash_command_opens_the_declare_modal(bot: Bot) -> None:
    status, body, _ = bot.send(sr.slash_command("", secret=SECRET, trigger_id="T-1"))
    assert status == 200 and body == b""
    call = bot.fake.wait_for("views.open")[0]
    view = call.params["view"]
    assert call.params["trigger_id"] == "T-1"
    assert view["callback_id"] == Callback.DECLARE.value
    block_ids = [b.get("block_id") for b in view["blocks"]]
    for block in (
        Block.TITLE,
        Block.SEVERITY,
        Block.AFFECTED,
        Block.AFFECTED_USERS,
        Block.DETECTION,
        Block.CATEGORY,
        Block.COMMANDER,
    ):
        assert block.value in block_ids
    severity = next(b for b in view["blocks"] if b["block_id"] == Block.SEVERITY.value)
    options = severity["element"]["options"]
    assert [o["value"] for o in options] == ["P0", "P1", "P2", "P3"]
    assert "outage" in options[0]["description"]["text"]  # the meaning is shown, not just the label
    commander = next(b for b in view["blocks"] if b["block_id"] == Block.COMMANDER.value)
    assert commander["optional"] is True


def test_slash_command_with_a_title_prefills_it(bot: Bot) -> None:
    bot.send_ok(sr.slash_command("Checkout   is down", secret=SECRET))
    view = bot.fake.wait_for("views.open")[0].params["view"]
    title = next(b for b in view["blocks"] if b["block_id"] == Block.TITLE.value)
    assert title["element"]["initial_value"] == "Checkout is down"


def test_message_shortcut_prefills_from_the_message(bot: Bot) -> None:
    message = {"type": "message", "user": "U0CAROL", "ts": "1764168000.000900", "text": "payments failing for EU"}
    bot.send_ok(
        sr.message_shortcut(Callback.DECLARE_SHORTCUT.value, secret=SECRET, message=message, channel_id="C0GENERAL")
    )
    view = bot.fake.wait_for("views.open")[0].params["view"]
    title = next(b for b in view["blocks"] if b["block_id"] == Block.TITLE.value)
    detection = next(b for b in view["blocks"] if b["block_id"] == Block.DETECTION.value)
    assert title["element"]["initial_value"] == "payments failing for EU"
    # The form's text is the user's (no markup in it); the author travels in the metadata.
    assert detection["element"]["initial_value"] == "Slack message"
    # Submitting that modal keeps the link to the message as the detection link, and its author.
    values = declare_values("payments failing for EU", "P1", detection="Slack message <b>via</b> #general")
    bot.send_ok(
        sr.view_submission(Callback.DECLARE.value, values, secret=SECRET, private_metadata=view["private_metadata"])
    )
    incident = bot.wait_incident(lambda i: i.card_ts is not None)
    assert incident.detection_url == "https://slack.com/archives/C0GENERAL/p1764168000000900"
    assert incident.reported_by == "U0CAROL"
    # The card escapes the user's text but not its own link and mention.
    card = json.dumps(bot.fake.calls("chat.postMessage")[0].params["blocks"])
    expected = (
        "Detected: <https://slack.com/archives/C0GENERAL/p1764168000000900|Slack message &lt;b&gt;via&lt;/b&gt; "
        "#general> (message from <@U0CAROL>)"
    )
    assert expected in card, card
    assert "&lt;@U0CAROL&gt;" not in card


@pytest.mark.parametrize(
    ("fields", "block", "fragment"),
    [
        ({"title": "   "}, Block.TITLE, "title"),
        ({"title": ""}, Block.TITLE, "title"),
        ({"title": "x" * 151}, Block.TITLE, "150"),
        ({"affected_users": "-5"}, Block.AFFECTED_USERS, "negative"),
        ({"affected_users": "lots"}, Block.AFFECTED_USERS, "whole number"),
        ({"severity": None}, Block.SEVERITY, "choose"),
        ({"severity": "P9"}, Block.SEVERITY, "P0"),
    ],
)
def test_invalid_declarations_get_field_errors_and_store_nothing(
    bot: Bot, fields: dict[str, Any], block: Block, fragment: str
) -> None:
    values = declare_values(**{"title": "Valid title", "severity": "P1", **fields})
    answer = bot.send_ok(sr.view_submission(Callback.DECLARE.value, values, secret=SECRET))
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block.value]
    assert fragment.lower() in answer["errors"][block.value].lower()
    assert bot.incidents() == []
    time.sleep(0.3)  # nothing is queued either: give a wrongly-queued card the chance to show
    assert bot.fake.calls("chat.postMessage") == []


def test_declaring_stores_and_posts_the_card(bot: Bot) -> None:
    incident = bot.declare(
        "Checkout <!channel> down",
        "P0",
        affected="checkout",
        affected_users="1200",
        detection="PagerDuty alert",
        category="Payment Gateway",
        commander="U0CAROL",
    )
    assert incident.id.startswith("INC-") and len(incident.id) == len("INC-2026-01-04-001")
    assert (incident.severity, incident.status, incident.affected_users) == ("P0", "Investigating", 1200)
    assert incident.commander == "U0CAROL" and incident.declared_by == "U0ALICE"
    assert incident.declared_at.tzinfo is not None
    post = bot.fake.calls("chat.postMessage")[0]
    assert post.params["channel"] == "ops-incidents"  # INCIDENT_CHANNEL by name
    assert incident.channel_id == "C0INCIDENTS" and incident.card_ts
    text = json.dumps(post.params["blocks"])
    for expected in (incident.id, "P0", "Investigating", "<@U0CAROL>", "Response target", "Resolution target"):
        assert expected in text
    # The title is escaped wherever Slack parses mrkdwn: typing <!channel> in a title must not ping
    # the channel (plain_text, as in the header, is never parsed for mentions).
    parsed = [post.params["text"], *mrkdwn_texts(post.params["blocks"])]
    assert all("<!channel>" not in t for t in parsed)
    assert "&lt;!channel&gt;" in post.params["text"]
    assert action_ids(bot, incident.id) == [
        Action.ACKNOWLEDGE,
        Action.MITIGATE,
        Action.RESOLVE,
        Action.SEVERITY,
        Action.FOLLOW_UP,
        Action.RUNBOOK,
    ]
    # The commander named in the form is announced in the thread.
    bot.fake.wait_for("chat.postMessage", count=2)
    assert any("<@U0CAROL> is the incident commander" in t for t in thread_replies(bot, incident))


def test_bot_joins_the_incident_channel_once(bot: Bot) -> None:
    bot.declare("First")
    bot.declare("Second")
    joins = bot.fake.wait_for("conversations.join")
    assert [c.params["channel"] for c in joins] == ["C0INCIDENTS"]  # so thread replies reach it as events


def test_incident_channel_may_be_an_id(make_bot: Any) -> None:
    bot = make_bot(incident_channel="C0WARROOM")
    incident = bot.declare()
    assert bot.fake.calls("chat.postMessage")[0].params["channel"] == "C0WARROOM"
    assert incident.channel_id == "C0WARROOM"


# -- the lifecycle -----------------------------------------------------------------------------


def test_acknowledge_mitigate_resolve_reopen(bot: Bot) -> None:
    incident = bot.declare("Login failures", "P1")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    poll(lambda: stored(bot, incident.id).acknowledged_at is not None, message="acknowledged")
    acked = stored(bot, incident.id)
    assert acked.commander == "U0BOB"  # the acknowledger becomes commander when there is none
    bot.fake.wait_for("chat.update", where=lambda c: c.params.get("ts") == incident.card_ts)
    poll(lambda: any("Acknowledged by <@U0BOB>" in t for t in thread_replies(bot, incident)), message="ack reply")
    poll(lambda: Action.ACKNOWLEDGE.value not in action_ids(bot, incident.id), message="card re-rendered")
    assert "<@U0BOB>" in card_text(bot, incident.id)

    bot.click(Action.MITIGATE.value, incident.id, card=incident)
    poll(lambda: stored(bot, incident.id).status == "Mitigated", message="mitigated")
    assert stored(bot, incident.id).mitigated_at is not None
    poll(lambda: any("Mitigated" in t for t in thread_replies(bot, incident)), message="mitigated reply")

    bot.click(Action.RESOLVE.value, incident.id, card=incident)
    modal = bot.fake.wait_for("views.open")[-1].params["view"]
    assert modal["callback_id"] == Callback.RESOLVE.value and modal["private_metadata"] == incident.id
    modal_blocks = [b.get("block_id") for b in modal["blocks"]]
    assert Block.RCA_URL.value in modal_blocks  # asked for on P1
    for block in (
        Block.ROOT_CAUSE,
        Block.RESOLUTION,
        Block.ROOT_CAUSE_CLASS,
        Block.CATEGORY,
        Block.LESSONS_WORKED,
        Block.LESSONS_DIDNT,
    ):
        assert block.value in modal_blocks

    values = resolve_values(rca_url="not a link")
    answer = bot.send_ok(
        sr.view_submission(Callback.RESOLVE.value, values, secret=SECRET, private_metadata=incident.id)
    )
    assert answer["response_action"] == "errors" and Block.RCA_URL.value in answer["errors"]
    assert stored(bot, incident.id).status == "Mitigated"

    values = resolve_values()
    answer = bot.send_ok(
        sr.view_submission(Callback.RESOLVE.value, values, secret=SECRET, private_metadata=incident.id, user_id="U0BOB")
    )
    assert answer == {}
    resolved = stored(bot, incident.id)
    assert resolved.status == "Resolved" and resolved.resolved_at is not None
    assert (resolved.root_cause, resolved.root_cause_class, resolved.category) == (
        "Expired certificate",
        "Configuration Error",
        "Authentication",
    )
    assert resolved.rca_url == "https://docs.example.com/rca/1"
    assert resolved.lessons_worked == "Fast rollback"
    poll(lambda: "*MTTR*" in card_text(bot, incident.id), message="MTTR on the card")
    assert Action.REOPEN.value in action_ids(bot, incident.id)
    assert Action.RESOLVE.value not in action_ids(bot, incident.id)
    poll(
        lambda: any("Resolved by <@U0BOB>" in t and "MTTR" in t for t in thread_replies(bot, incident)),
        message="resolved reply",
    )

    bot.click(Action.REOPEN.value, incident.id, user="U0CAROL", card=incident)
    poll(lambda: stored(bot, incident.id).status == "Investigating", message="reopened")
    assert stored(bot, incident.id).resolved_at is None
    poll(lambda: any("Reopened by <@U0CAROL>" in t for t in thread_replies(bot, incident)), message="reopen reply")

    with unit_of_work(bot.sessions) as session:
        events = [e.event for e in timeline.timeline(session, incident.id) if e.kind == "system"]
    assert events == ["declared", "acknowledged", "status_changed", "resolved", "reopened"]


def resolve_values(**overrides: Any) -> dict[str, Any]:
    fields = {
        Block.ROOT_CAUSE: sr.plain(overrides.get("root_cause", "Expired certificate")),
        Block.RESOLUTION: sr.plain("Rotated the certificate"),
        Block.ROOT_CAUSE_CLASS: sr.select("Configuration Error"),
        Block.CATEGORY: sr.select("Authentication"),
        Block.IMPACT: sr.plain("Nobody could log in"),
        Block.REVENUE: sr.number("1200"),
        Block.LESSONS_WORKED: sr.plain("Fast rollback"),
        Block.LESSONS_DIDNT: sr.plain("No cert expiry alert"),
        Block.RCA_URL: sr.url(overrides.get("rca_url", "https://docs.example.com/rca/1")),
    }
    return {b.value: {b.value + "_input": element} for b, element in fields.items()}


def test_resolve_modal_requires_root_cause(bot: Bot) -> None:
    incident = bot.declare()
    answer = bot.send_ok(
        sr.view_submission(
            Callback.RESOLVE.value, resolve_values(root_cause="  "), secret=SECRET, private_metadata=incident.id
        )
    )
    assert answer["response_action"] == "errors" and Block.ROOT_CAUSE.value in answer["errors"]
    assert stored(bot, incident.id).status == "Investigating"


def test_severity_change_is_recorded_and_rerenders(bot: Bot) -> None:
    incident = bot.declare("Slow queries", "P2")
    bot.click(Action.SEVERITY.value, "", user="U0DAVE", card=incident, selected=f"{incident.id}|P0")
    poll(lambda: stored(bot, incident.id).severity == "P0", message="severity change")
    with unit_of_work(bot.sessions) as session:
        entry = next(e for e in timeline.timeline(session, incident.id) if e.event == "severity_changed")
    assert (entry.author, entry.data) == ("U0DAVE", {"from": "P2", "to": "P0"})
    poll(lambda: any("from P2 to P0 by <@U0DAVE>" in t for t in thread_replies(bot, incident)), message="reply")
    poll(lambda: ":red_circle: P0" in card_text(bot, incident.id), message="card shows P0")


def test_follow_up_gets_owner_and_due_date(bot: Bot) -> None:
    incident = bot.declare()
    bot.click(Action.FOLLOW_UP.value, incident.id, card=incident)
    modal = bot.fake.wait_for("views.open")[-1].params["view"]
    assert modal["callback_id"] == Callback.FOLLOW_UP.value
    values = {
        Block.FOLLOW_UP_TEXT.value: {Block.FOLLOW_UP_TEXT.value + "_input": sr.plain("Add cert expiry alert")},
        Block.FOLLOW_UP_OWNER.value: {Block.FOLLOW_UP_OWNER.value + "_input": sr.user("U0ERIN")},
        Block.FOLLOW_UP_DUE.value: {Block.FOLLOW_UP_DUE.value + "_input": sr.date("2026-12-24")},
    }
    assert (
        bot.send_ok(
            sr.view_submission(
                Callback.FOLLOW_UP.value, values, secret=SECRET, private_metadata=modal["private_metadata"]
            )
        )
        == {}
    )
    with unit_of_work(bot.sessions) as session:
        follow_up = session.exec(select(FollowUp)).one()
    assert (follow_up.description, follow_up.owner, str(follow_up.due_date)) == (
        "Add cert expiry alert",
        "U0ERIN",
        "2026-12-24",
    )
    poll(
        lambda: any(f"FU-{follow_up.id}" in t and "<@U0ERIN>" in t for t in thread_replies(bot, incident)),
        message="follow-up reply",
    )
    poll(lambda: "1 follow-up" in card_text(bot, incident.id), message="card counts follow-ups")


def test_double_acknowledge_is_refused_politely(bot: Bot) -> None:
    incident = bot.declare()
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0BOB", card=incident)
    poll(lambda: stored(bot, incident.id).acknowledged_at is not None, message="ack")
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0CAROL", card=incident)
    call = bot.fake.wait_for("chat.postEphemeral")[0]
    assert call.params["user"] == "U0CAROL" and "already acknowledged" in call.params["text"]
    assert stored(bot, incident.id).commander == "U0BOB"


def test_runbook_button_counts_a_use(bot: Bot) -> None:
    incident = bot.declare("Database down", "P0", category="Database")
    runbook = next(
        e for e in card_of(bot, incident.id)["blocks"][-1]["elements"] if e["action_id"] == Action.RUNBOOK.value
    )
    assert runbook["url"].endswith("runbooks/p0-database-failure.md")
    bot.click(Action.RUNBOOK.value, runbook["value"], card=incident)
    from storage.models import RunbookUse

    def uses() -> list[RunbookUse]:
        with unit_of_work(bot.sessions) as session:
            return list(session.exec(select(RunbookUse)))

    found = poll(uses, message="runbook use")
    assert [(u.incident_id, u.runbook) for u in found] == [(incident.id, "P0: Database Failure")]


# -- commands ----------------------------------------------------------------------------------


def test_help_and_usage_are_ephemeral(bot: Bot) -> None:
    answer = bot.send_ok(sr.slash_command("help", secret=SECRET))
    assert answer["response_type"] == "ephemeral"
    for word in ("/incident", "list", "status", "help"):
        assert word in answer["text"]
    for bad in ("status", "status nonsense", "list everything", "--force"):
        answer = bot.send_ok(sr.slash_command(bad, secret=SECRET))
        assert answer["response_type"] == "ephemeral" and "/incident" in answer["text"], bad
    assert bot.fake.calls("views.open") == []


def test_list_and_status(bot: Bot) -> None:
    first = bot.declare("Checkout down", "P0")
    bot.declare("Slow search", "P3")
    url = bot.fake.response_url("list")
    bot.send_ok(sr.slash_command("list", secret=SECRET, response_url=url))
    listing = bot.fake.wait_for("response_url")[0].params
    assert listing["response_type"] == "ephemeral"
    assert "2 open incidents" in listing["text"] and "Checkout down" in listing["text"]
    assert listing["text"].index("Checkout down") < listing["text"].index("Slow search")  # P0 first

    bot.send_ok(sr.slash_command(f"status {first.id.lower()}", secret=SECRET, response_url=url))
    status = bot.fake.wait_for("response_url", count=2)[1].params
    assert first.id in status["text"] and "Investigating" in status["text"]

    bot.send_ok(sr.slash_command("status INC-2020-01-01-001", secret=SECRET, response_url=url))
    missing = bot.fake.wait_for("response_url", count=3)[2].params
    assert "no incident INC-2020-01-01-001" in missing["text"]


# -- Web API faults ----------------------------------------------------------------------------


def test_card_posted_once_after_429(bot: Bot) -> None:
    bot.fake.fail("chat.postMessage", status=429, times=1, retry_after=1)
    incident = bot.declare()
    posts = [c for c in bot.fake.calls("chat.postMessage") if "thread_ts" not in c.params]
    assert [c.status for c in posts] == [429, 200]  # retried after Retry-After, delivered once
    bot.fake.assert_no_more("chat.postMessage", 2, settle=1.0, where=lambda c: "thread_ts" not in c.params)
    assert incident.card_ts is not None


def test_card_500_keeps_the_incident_tells_the_user_and_posts_later(bot: Bot) -> None:
    bot.fake.fail("chat.postMessage", status=500, times=2)  # the client retries a 500 once
    answer = bot.submit_declare("Queue backlog", "P2")
    assert answer == {}  # the modal closes: the incident is saved
    incident = bot.wait_incident(lambda i: i.title == "Queue backlog")
    notice = bot.fake.wait_for("chat.postEphemeral")[0]
    assert notice.params["user"] == "U0ALICE" and incident.id in notice.params["text"]
    assert "saved" in notice.params["text"]
    # The sweep retries the outbox: the card arrives once Slack answers again.
    bot.fake.wait_for("chat.postMessage", count=3, timeout=15, where=lambda c: "thread_ts" not in c.params)
    posted = bot.wait_incident(lambda i: i.id == incident.id and i.card_ts is not None, timeout=15)
    assert posted.channel_id == "C0INCIDENTS"
    bot.fake.assert_no_more("chat.postMessage", 3, settle=1.5, where=lambda c: "thread_ts" not in c.params)


def test_acks_do_not_wait_for_a_slow_web_api(bot: Bot) -> None:
    incident = bot.declare()
    bot.fake.delay("*", 2.0)
    timings = {}
    for name, request in {
        "slash": sr.slash_command("", secret=SECRET),
        "slash-list": sr.slash_command("list", secret=SECRET, response_url=bot.fake.response_url("l")),
        "declare": sr.view_submission(Callback.DECLARE.value, declare_values("Another", "P2"), secret=SECRET),
        "ack": sr.block_action(
            Action.ACKNOWLEDGE.value,
            value=incident.id,
            secret=SECRET,
            channel_id=incident.channel_id,
            message_ts=incident.card_ts,
        ),
        "event": sr.event(
            sr.thread_reply(incident.channel_id, incident.card_ts, "1764168999.000100", "U0BOB", "hi"), secret=SECRET
        ),
    }.items():
        started = time.monotonic()
        status, _, _ = bot.send(request)
        timings[name] = time.monotonic() - started
        assert status == 200, name
    assert max(timings.values()) < 1.0, timings


def test_bad_signatures_get_401_and_do_nothing(bot: Bot) -> None:
    good = sr.slash_command("", secret=SECRET)
    forged = sr.slash_command("", secret="wrong-secret")
    stale = sr.slash_command("", secret=SECRET, timestamp=int(time.time()) - 600)
    unsigned = sr.SignedRequest(body=good.body, headers={"Content-Type": good.headers["Content-Type"]})
    for request in (forged, stale, unsigned):
        assert bot.send(request)[0] == 401
    time.sleep(0.3)
    assert bot.fake.calls("views.open") == []


def test_healthz(bot: Bot) -> None:
    assert bot.get("/healthz") == (200, b"ok")
    assert bot.get("/nope")[0] == 404
