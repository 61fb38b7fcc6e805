"""The incident timeline end to end: signed Events API requests to the real bot's HTTP server.

Events are acked at once and processed in the background, so every check polls the database.
To show that something did NOT happen, a later event that must be stored (a sentinel) is sent
and waited for first; an event in an incident thread also leaves its id in processed_event,
in the same transaction as its effect, which tells us exactly when it has been handled.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from sqlmodel import select

from bot.ids import Action
from bot.incidents import timeline
from storage.db import unit_of_work
from storage.models import EntryKind, Incident, ProcessedEvent, SystemEvent, TimelineEntry

OTHER_CHANNEL = "C0RANDOM"


# ---------------------------------------------------------------------- helpers


def entries(bot: Bot, incident: Incident) -> list[TimelineEntry]:
    with unit_of_work(bot.sessions) as session:
        return timeline.timeline(session, incident.id)


def messages(bot: Bot, incident: Incident) -> list[TimelineEntry]:
    return [e for e in entries(bot, incident) if e.kind == EntryKind.MESSAGE.value]


def entry(bot: Bot, incident: Incident, ts: str) -> TimelineEntry | None:
    found = [e for e in entries(bot, incident) if e.slack_ts == ts]
    assert len(found) <= 1, found
    return found[0] if found else None


def all_entries_with_ts(bot: Bot, ts: str) -> list[TimelineEntry]:
    with unit_of_work(bot.sessions) as session:
        return list(session.exec(select(TimelineEntry).where(TimelineEntry.slack_ts == ts)))


def processed(bot: Bot, event_id: str) -> bool:
    with unit_of_work(bot.sessions) as session:
        return session.get(ProcessedEvent, event_id) is not None


def reload(bot: Bot, incident: Incident) -> Incident:
    with unit_of_work(bot.sessions) as session:
        found = session.get(Incident, incident.id)
        assert found is not None
        return found


def wait_entry(bot: Bot, incident: Incident, ts: str, what: str = "the entry", **expect: Any) -> TimelineEntry:
    def check() -> TimelineEntry | None:
        found = entry(bot, incident, ts)
        if found is None or any(getattr(found, k) != v for k, v in expect.items()):
            return None
        return found

    result: TimelineEntry = poll(check, message=f"{what} ({ts}, {expect})")
    return result


def send_event(bot: Bot, event: dict[str, Any], **kwargs: Any) -> str:
    """Deliver `event`; returns its event id."""
    event_id = kwargs.pop("event_id", None) or f"Ev{sr.new_ts().replace('.', '')}"
    bot.send_ok(sr.event(event, secret=SECRET, event_id=event_id, **kwargs))
    return event_id


def sentinel(bot: Bot, incident: Incident, text: str = "sentinel") -> TimelineEntry:
    """A reply that must be stored, sent after the events under test and waited for."""
    ts = sr.new_ts()
    bot.reply(incident, ts, text)
    return wait_entry(bot, incident, ts, "the sentinel reply")


def reply_event(incident: Incident, ts: str, text: str, user: str = "U0BOB", **kwargs: Any) -> dict[str, Any]:
    assert incident.channel_id and incident.card_ts
    return sr.thread_reply(incident.channel_id, incident.card_ts, ts, user, text, **kwargs)


def edit_event(incident: Incident, ts: str, text: str, edited_ts: str, user: str = "U0BOB") -> dict[str, Any]:
    assert incident.channel_id and incident.card_ts
    return sr.message_changed(incident.channel_id, incident.card_ts, ts, user, text, edited_ts)


def delete_event(incident: Incident, ts: str, text: str = "", user: str = "U0BOB") -> dict[str, Any]:
    assert incident.channel_id and incident.card_ts
    return sr.message_deleted(incident.channel_id, incident.card_ts, ts, user, text=text)


@pytest.fixture
def incident(bot: Bot) -> Incident:
    declared = bot.declare("Checkout latency", "P1")
    assert declared.channel_id == "C0INCIDENTS" and declared.card_ts
    return declared


# ---------------------------------------------------------------------- replies become entries


def test_reply_in_the_thread_becomes_a_message_entry(bot: Bot, incident: Incident) -> None:
    ts = "1700000000.250000"  # long before "now", so occurred_at visibly comes from the ts
    bot.reply(incident, ts, "Rolling back deploy 42", user="U0CAROL")

    stored = wait_entry(bot, incident, ts)
    assert stored.kind == EntryKind.MESSAGE.value
    assert stored.incident_id == incident.id
    assert stored.author == "U0CAROL"
    assert stored.text == "Rolling back deploy 42"
    assert stored.slack_ts == ts
    assert stored.occurred_at == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert stored.files == []
    assert stored.deleted is False and stored.key_event is False and stored.edited_ts is None


def test_file_share_reply_keeps_file_names_and_permalinks(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    event = reply_event(incident, ts, "latency graph", files=[{"id": "F0GRAPH", "name": "p99.png"}, {"name": "x.log"}])
    send_event(bot, event)

    stored = wait_entry(bot, incident, ts)
    wanted = [{"name": f["name"], "permalink": f["permalink"]} for f in event["files"]]
    assert wanted[0] == {"name": "p99.png", "permalink": "https://incident-test.slack.com/files/U0BOB/F0GRAPH/p99.png"}
    assert stored.files == wanted
    assert stored.text == "latency graph"
    assert stored.author == "U0BOB"


def test_human_activity_updates_last_activity(bot: Bot, incident: Incident) -> None:
    # Activity feeds the update nudge, which starts with an acknowledged P0/P1.
    bot.click(Action.ACKNOWLEDGE.value, incident.id, card=incident)
    poll(lambda: reload(bot, incident).acknowledged_at is not None, message="acknowledged")
    before = reload(bot, incident).last_activity_at
    assert before is not None
    time.sleep(0.01)  # the clock must move for "later" to be visible
    bot.reply(incident, sr.new_ts(), "still looking")
    poll(lambda: (reload(bot, incident).last_activity_at or before) > before, message="last_activity_at to move")
    moved = reload(bot, incident)
    assert moved.next_check_at is not None and moved.next_check_at > moved.last_activity_at  # the nudge moved on


# ---------------------------------------------------------------------- duplicates


def test_retried_deliveries_are_stored_once(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    event = reply_event(incident, ts, "retry me")
    event_id = send_event(bot, event)
    wait_entry(bot, incident, ts)
    send_event(bot, event, event_id=event_id, retry_num=1, retry_reason="http_timeout")
    send_event(bot, event, event_id=event_id, retry_num=2, retry_reason="http_timeout")

    sentinel(bot, incident)
    assert [e.slack_ts for e in messages(bot, incident)].count(ts) == 1
    assert len(messages(bot, incident)) == 2


def test_same_message_under_another_event_id_is_stored_once(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    event = reply_event(incident, ts, "said once")
    send_event(bot, event)
    wait_entry(bot, incident, ts)
    second = send_event(bot, event)
    poll(lambda: processed(bot, second), message="the second event id to be handled")

    assert len(messages(bot, incident)) == 1
    assert len(all_entries_with_ts(bot, ts)) == 1


def test_first_delivery_with_retry_num_zero_is_stored(bot: Bot, incident: Incident) -> None:
    # Over Socket Mode, Bolt marks every first delivery X-Slack-Retry-Num: 0.
    ts = sr.new_ts()
    event = reply_event(incident, ts, "socket mode first delivery")
    event_id = send_event(bot, event, retry_num=0)
    stored = wait_entry(bot, incident, ts)
    assert stored.text == "socket mode first delivery"
    assert processed(bot, event_id)


def test_retry_of_an_event_never_seen_is_stored(bot: Bot, incident: Incident) -> None:
    # The first delivery may have been lost entirely; the retry is then the only copy.
    ts = sr.new_ts()
    send_event(bot, reply_event(incident, ts, "only the retry arrived"), retry_num=1, retry_reason="http_error")
    wait_entry(bot, incident, ts, text="only the retry arrived")


def test_concurrent_duplicate_deliveries_store_one_entry(
    bot: Bot, incident: Incident, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    ts = sr.new_ts()
    request = sr.event(reply_event(incident, ts, "raced"), secret=SECRET, event_id="EvRACE0001")
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def deliver() -> None:
        barrier.wait()
        statuses.append(bot.send(request)[0])

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert statuses == [200] * 5

    wait_entry(bot, incident, ts)
    sentinel(bot, incident)
    assert len(all_entries_with_ts(bot, ts)) == 1
    assert len(messages(bot, incident)) == 2
    # Our code's errors only: a Web API client of an earlier test, still winding down on this xdist
    # worker, may log its own connection errors into this test's capture.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("bot", "storage"))]
    assert not errors, [r.getMessage() for r in errors]


def test_concurrent_deliveries_under_different_event_ids_store_one_entry(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    event = reply_event(incident, ts, "raced twice")
    requests = [sr.event(event, secret=SECRET, event_id=f"EvRACEID{i}") for i in range(5)]
    barrier = threading.Barrier(len(requests))

    def deliver(request: sr.SignedRequest) -> None:
        barrier.wait()
        bot.send(request)

    threads = [threading.Thread(target=deliver, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    poll(lambda: all(processed(bot, f"EvRACEID{i}") for i in range(5)), message="every event id to be handled")
    assert len(all_entries_with_ts(bot, ts)) == 1


# ---------------------------------------------------------------------- edits and deletions


def test_edit_updates_the_entry(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    bot.reply(incident, ts, "db at 90% cpu")
    wait_entry(bot, incident, ts)
    edited_ts = sr.new_ts()
    send_event(bot, edit_event(incident, ts, "db at 95% cpu", edited_ts))

    stored = wait_entry(bot, incident, ts, "the edit", text="db at 95% cpu")
    assert stored.edited_ts == edited_ts
    assert stored.author == "U0BOB" and stored.deleted is False
    assert len(messages(bot, incident)) == 1


def test_older_edit_arriving_late_does_not_overwrite(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    bot.reply(incident, ts, "v1")
    wait_entry(bot, incident, ts)
    older, newer = sr.new_ts(), sr.new_ts()
    send_event(bot, edit_event(incident, ts, "v3", newer))
    wait_entry(bot, incident, ts, "the newer edit", text="v3")
    late = send_event(bot, edit_event(incident, ts, "v2", older))
    poll(lambda: processed(bot, late), message="the older edit to be handled")

    stored = entry(bot, incident, ts)
    assert stored is not None
    assert (stored.text, stored.edited_ts) == ("v3", newer)


def test_edit_before_its_message_creates_the_entry_and_the_late_original_keeps_it(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    edited_ts = sr.new_ts()
    send_event(bot, edit_event(incident, ts, "edited first", edited_ts))
    stored = wait_entry(bot, incident, ts, "the entry from the edit", text="edited first")
    assert stored.kind == EntryKind.MESSAGE.value and stored.author == "U0BOB"
    assert stored.edited_ts == edited_ts

    original = send_event(bot, reply_event(incident, ts, "original text"))
    poll(lambda: processed(bot, original), message="the late original to be handled")
    stored_after = entry(bot, incident, ts)
    assert stored_after is not None
    assert (stored_after.text, stored_after.edited_ts) == ("edited first", edited_ts)
    assert len(messages(bot, incident)) == 1


def test_delete_marks_the_entry_deleted(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    bot.reply(incident, ts, "wrong thread, sorry")
    wait_entry(bot, incident, ts)
    send_event(bot, delete_event(incident, ts, "wrong thread, sorry"))

    stored = wait_entry(bot, incident, ts, "the deletion", deleted=True)
    assert stored.kind == EntryKind.MESSAGE.value
    assert stored.author == "U0BOB"
    assert len(messages(bot, incident)) == 1  # kept, only marked


def test_delete_before_its_message_leaves_a_tombstone_the_original_does_not_resurrect(
    bot: Bot, incident: Incident
) -> None:
    ts = sr.new_ts()
    send_event(bot, delete_event(incident, ts, "secret token abc"))
    wait_entry(bot, incident, ts, "the tombstone", deleted=True)

    original = send_event(bot, reply_event(incident, ts, "secret token abc"))
    poll(lambda: processed(bot, original), message="the late original to be handled")
    stored = entry(bot, incident, ts)
    assert stored is not None
    assert stored.deleted is True
    assert stored.text != "secret token abc"
    assert len(messages(bot, incident)) == 1


# ---------------------------------------------------------------------- what is not recorded


def test_messages_outside_incident_threads_are_not_recorded(bot: Bot, incident: Incident) -> None:
    assert incident.card_ts
    top_level, other_thread, other_channel = sr.new_ts(), sr.new_ts(), sr.new_ts()
    send_event(bot, sr.top_level_message("C0INCIDENTS", top_level, "U0BOB", "anyone seeing 502s?"))
    send_event(bot, sr.thread_reply("C0INCIDENTS", sr.new_ts(), other_thread, "U0BOB", "unrelated thread"))
    send_event(bot, sr.thread_reply(OTHER_CHANNEL, incident.card_ts, other_channel, "U0BOB", "same ts, elsewhere"))
    # Edits and deletions outside the thread must not create entries either.
    send_event(bot, sr.message_changed(OTHER_CHANNEL, incident.card_ts, sr.new_ts(), "U0BOB", "x", sr.new_ts()))
    send_event(bot, sr.message_deleted(OTHER_CHANNEL, incident.card_ts, sr.new_ts(), "U0BOB", text="y"))

    last = sentinel(bot, incident)
    assert [e.slack_ts for e in messages(bot, incident)] == [last.slack_ts]
    with unit_of_work(bot.sessions) as session:
        everything = list(session.exec(select(TimelineEntry).where(TimelineEntry.kind == EntryKind.MESSAGE.value)))
    assert [e.slack_ts for e in everything] == [last.slack_ts]


def test_bot_messages_are_not_stored_as_human_entries(bot: Bot, incident: Incident) -> None:
    assert incident.channel_id and incident.card_ts
    channel, thread = incident.channel_id, incident.card_ts
    bot_events = [
        # Another app posting with its bot token (not filtered by Bolt, which only skips our own).
        sr.bot_message(channel, thread, sr.new_ts(), "B0OTHER", "deploy bot says hi", user="U0OTHERBOT"),
        # A legacy integration / incoming webhook.
        sr.bot_message(channel, thread, sr.new_ts(), "B0HOOK", "webhook", user=None, subtype="bot_message"),
        # Our own thread replies.
        sr.bot_message(channel, thread, sr.new_ts(), text=":eyes: Acknowledged by <@U0ALICE>."),
    ]
    for event in bot_events:
        send_event(bot, event)

    last = sentinel(bot, incident)
    assert [e.slack_ts for e in messages(bot, incident)] == [last.slack_ts]
    for event in bot_events:
        assert all_entries_with_ts(bot, event["ts"]) == []


def test_the_cards_own_edits_are_not_stored(bot: Bot, incident: Incident) -> None:
    assert incident.channel_id and incident.card_ts
    card_ts = incident.card_ts
    # chat.update of the card once it has replies: Slack sends message_changed with ts == thread_ts.
    own = sr.message_changed(incident.channel_id, card_ts, card_ts, "U0BOT", "card v2", sr.new_ts())
    own["message"].update(thread_ts=card_ts, bot_id="B0BOT", reply_count=1)
    # The same shape without the bot fields (which Bolt would otherwise filter before us).
    anonymous = sr.message_changed(incident.channel_id, card_ts, card_ts, "U0ALICE", "card v3", sr.new_ts())
    anonymous["message"]["thread_ts"] = card_ts
    # Before the card has replies its edits carry no thread_ts at all.
    plain = sr.message_changed(incident.channel_id, None, card_ts, "U0ALICE", "card v1", sr.new_ts())
    for event in (own, anonymous, plain):
        send_event(bot, event)

    last = sentinel(bot, incident)
    assert [e.slack_ts for e in messages(bot, incident)] == [last.slack_ts]
    assert all_entries_with_ts(bot, card_ts) == []


# ---------------------------------------------------------------------- key events


def test_pushpin_reaction_marks_and_unmarks_a_key_event(bot: Bot, incident: Incident) -> None:
    assert incident.channel_id
    channel = incident.channel_id
    first, second = sr.new_ts(), sr.new_ts()
    bot.reply(incident, first, "root cause: expired cert")
    bot.reply(incident, second, "renewing now")
    wait_entry(bot, incident, first)
    wait_entry(bot, incident, second)

    send_event(bot, sr.reaction_added(channel, first, "U0CAROL", "pushpin", "U0BOB"))
    wait_entry(bot, incident, first, "the pin", key_event=True)

    # Another reaction does nothing; the later unpin of `first` shows it has been handled.
    send_event(bot, sr.reaction_added(channel, second, "U0CAROL", "eyes", "U0BOB"))
    send_event(bot, sr.reaction_removed(channel, first, "U0CAROL", "pushpin", "U0BOB"))
    wait_entry(bot, incident, first, "the unpin", key_event=False)
    stored = entry(bot, incident, second)
    assert stored is not None and stored.key_event is False

    # Removing another reaction leaves a pin alone.
    send_event(bot, sr.reaction_added(channel, second, "U0CAROL", "pushpin", "U0BOB"))
    wait_entry(bot, incident, second, "the second pin", key_event=True)
    send_event(bot, sr.reaction_removed(channel, second, "U0CAROL", "eyes", "U0BOB"))
    send_event(bot, sr.reaction_added(channel, first, "U0CAROL", "pushpin", "U0BOB"))
    wait_entry(bot, incident, first, "the re-pin", key_event=True)
    stored = entry(bot, incident, second)
    assert stored is not None and stored.key_event is True


def test_pushpin_in_another_channel_does_not_mark_the_entry(bot: Bot, incident: Incident) -> None:
    assert incident.channel_id
    ts = sr.new_ts()
    bot.reply(incident, ts, "same ts, other channel")
    wait_entry(bot, incident, ts)
    send_event(bot, sr.reaction_added(OTHER_CHANNEL, ts, "U0CAROL", "pushpin", "U0BOB"))
    marker = sentinel(bot, incident)
    assert marker.slack_ts
    send_event(bot, sr.reaction_added(incident.channel_id, marker.slack_ts, "U0CAROL", "pushpin", "U0BOB"))
    wait_entry(bot, incident, marker.slack_ts, "the sentinel pin", key_event=True)
    stored = entry(bot, incident, ts)
    assert stored is not None and stored.key_event is False


# ---------------------------------------------------------------------- system events


def test_declare_and_acknowledge_are_system_entries_in_time_order(bot: Bot, incident: Incident) -> None:
    reply_ts = sr.new_ts()
    bot.reply(incident, reply_ts, "looking")
    wait_entry(bot, incident, reply_ts)
    time.sleep(0.01)
    bot.click(Action.ACKNOWLEDGE.value, incident.id, user="U0DAVE", card=incident)

    def acknowledged() -> list[TimelineEntry] | None:
        found = entries(bot, incident)
        return found if any(e.event == SystemEvent.ACKNOWLEDGED.value for e in found) else None

    found = poll(acknowledged, message="the acknowledged entry")
    assert [(e.kind, e.event) for e in found] == [
        (EntryKind.SYSTEM.value, SystemEvent.DECLARED.value),
        (EntryKind.MESSAGE.value, None),
        (EntryKind.SYSTEM.value, SystemEvent.ACKNOWLEDGED.value),
    ]
    declared, reply, ack = found
    assert declared.author == "U0ALICE" and ack.author == "U0DAVE"
    assert reply.slack_ts == reply_ts
    assert declared.occurred_at <= reply.occurred_at <= ack.occurred_at
    assert declared.occurred_at < ack.occurred_at
    stored = reload(bot, incident)
    assert stored.acknowledged_at == ack.occurred_at
    assert abs(stored.declared_at - declared.occurred_at) < timedelta(seconds=1)


# ---------------------------------------------------------------------- request verification


def test_unsigned_and_stale_requests_are_refused_and_store_nothing(bot: Bot, incident: Incident) -> None:
    bad = [sr.new_ts() for _ in range(3)]
    wrong_secret = sr.event(reply_event(incident, bad[0], "forged"), secret="not-the-secret", event_id="EvBAD0")
    unsigned_signed = sr.event(reply_event(incident, bad[1], "unsigned"), secret=SECRET, event_id="EvBAD1")
    unsigned = sr.SignedRequest(
        body=unsigned_signed.body,
        headers={k: v for k, v in unsigned_signed.headers.items() if not k.startswith("X-Slack-")},
    )
    stale = sr.event(
        reply_event(incident, bad[2], "replayed"), secret=SECRET, event_id="EvBAD2", timestamp=int(time.time()) - 600
    )
    for request in (wrong_secret, unsigned, stale):
        status, _, _ = bot.send(request)
        assert status == 401

    last = sentinel(bot, incident)
    assert [e.slack_ts for e in messages(bot, incident)] == [last.slack_ts]
    assert not any(processed(bot, f"EvBAD{i}") for i in range(3))


def test_pin_arriving_before_its_reply_is_applied_when_the_reply_arrives(bot: Bot, incident: Incident) -> None:
    ts = sr.new_ts()
    assert incident.channel_id
    send_event(bot, sr.reaction_added(incident.channel_id, ts, "U0CAROL"))
    poll(lambda: processed_pin(bot, incident.channel_id or "", ts), message="pin kept aside")
    send_event(bot, reply_event(incident, ts, "Error rate back to normal"))
    wait_entry(bot, incident, ts, "the pinned reply", key_event=True)


def processed_pin(bot: Bot, channel_id: str, ts: str) -> bool:
    from storage.models import PendingPin

    with unit_of_work(bot.sessions) as session:
        return session.get(PendingPin, (channel_id, ts)) is not None


def test_pending_pins_are_reconciled_by_the_sweep(sessions: Any) -> None:
    """A pin and its reply committed in separate, racing transactions still meet."""
    from bot.incidents.forms import DeclareForm
    from bot.incidents.lifecycle import card_posted, declare
    from bot.settings import Settings
    from storage.models import PendingPin, utcnow

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s")
    now = utcnow()
    with unit_of_work(sessions) as session:
        inc = declare(
            session, DeclareForm(title="t", severity="P2"), declared_by="U1", policy=settings.policy(), now=now
        )
        card_posted(session, inc.id, channel_id="C1", ts="100.000100")
    with unit_of_work(sessions) as session:
        session.add(PendingPin(channel_id="C1", ts="101.000100", key_event=True, received_at=now))
        session.add(TimelineEntry(incident_id=inc.id, kind="message", text="x", slack_ts="101.000100", occurred_at=now))
    with unit_of_work(sessions) as session:
        assert timeline.apply_pending_pins(session) == 1
    with unit_of_work(sessions) as session:
        [pinned] = session.exec(select(TimelineEntry).where(TimelineEntry.slack_ts == "101.000100")).all()
        assert pinned.key_event and session.exec(select(PendingPin)).all() == []
        session.add(PendingPin(channel_id="C1", ts="999.000100", key_event=True, received_at=now - timedelta(days=2)))
    with unit_of_work(sessions) as session:
        assert timeline.apply_pending_pins(session, older_than=now - timedelta(days=1)) == 0
        assert session.exec(select(PendingPin)).all() == []  # never matched, forgotten


def test_a_deletion_is_not_undone_by_a_later_edit_event(sessions: Any) -> None:
    """Slack may deliver a `message_changed` after the `message_deleted` (or a newer edit the
    deletion raced): the entry stays deleted and the edit's text and files are not applied."""
    from bot.incidents.forms import DeclareForm
    from bot.incidents.lifecycle import card_posted, declare
    from bot.settings import Settings
    from storage.models import utcnow

    policy = Settings(slack_bot_token="xoxb-x", slack_signing_secret="s").policy()
    now = utcnow()
    with unit_of_work(sessions) as session:
        inc = declare(session, DeclareForm(title="t", severity="P2"), declared_by="U1", policy=policy, now=now)
        card_posted(session, inc.id, channel_id="C1", ts="100.000100")

    def apply(change: timeline.Change, event_id: str, text: str, edited_ts: str | None = None) -> None:
        files = [{"name": "secret.png"}] if change is timeline.Change.EDITED else []
        message = timeline.ThreadMessage("C1", "100.000100", "101.000100", "U2", text, files, edited_ts)
        with unit_of_work(sessions) as session:
            timeline.ingest(session, change, message, event_id=event_id, policy=policy, now=now)

    apply(timeline.Change.POSTED, "Ev1", "the password is hunter2")
    apply(timeline.Change.DELETED, "Ev2", "")
    apply(timeline.Change.EDITED, "Ev3", "the password is hunter3", edited_ts="105.000100")
    with unit_of_work(sessions) as session:
        [stored] = session.exec(select(TimelineEntry).where(TimelineEntry.slack_ts == "101.000100")).all()
        assert stored.deleted is True
        assert "hunter3" not in stored.text and stored.files == [] and stored.edited_ts is None
