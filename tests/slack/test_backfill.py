"""Timeline backfill: replies, edits and pins that events missed are read back from the thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import slack_requests as sr
from bot_harness import SECRET, Bot, poll

from bot.incidents import timeline
from bot.slack.backfill import CALL_TIMEOUT, backfill, backfill_client
from storage.db import unit_of_work


def test_backfill_stores_what_events_missed_once(bot: Bot) -> None:
    incident = bot.declare("Checkout down", "P1")
    channel, thread = incident.channel_id or "", incident.card_ts or ""
    seen, missed, pinned = sr.new_ts(), sr.new_ts(), sr.new_ts()
    bot.reply(incident, seen, "first draft")  # arrives as an event, then is edited while the bot is down

    def stored() -> dict[str, Any]:
        with unit_of_work(bot.sessions) as session:
            return {e.slack_ts: e for e in timeline.timeline(session, incident.id) if e.slack_ts}

    poll(lambda: seen in stored(), message="live reply stored")
    replies = {
        "ok": True,
        "has_more": False,
        "messages": [
            {"type": "message", "user": "U0ALICE", "ts": thread, "thread_ts": thread, "text": "the card"},
            {
                "type": "message",
                "user": "U0BOB",
                "ts": seen,
                "thread_ts": thread,
                "text": "final text",
                "edited": {"user": "U0BOB", "ts": sr.new_ts()},
            },
            {"type": "message", "user": "U0CAROL", "ts": missed, "thread_ts": thread, "text": "posted while down"},
            {
                "type": "message",
                "user": "U0DAVE",
                "ts": pinned,
                "thread_ts": thread,
                "text": "root cause found",
                "reactions": [{"name": "pushpin", "users": ["U0BOB"], "count": 1}],
            },
            {
                "type": "message",
                "subtype": "bot_message",
                "bot_id": "B0OTHER",
                "ts": sr.new_ts(),
                "thread_ts": thread,
                "text": "a bot",
            },
        ],
    }
    bot.fake.respond_with("conversations.replies", replies)
    assert backfill(bot.service.rt) == 2
    entries = stored()
    assert set(entries) == {seen, missed, pinned}
    assert entries[seen].text == "final text"
    assert entries[missed].author == "U0CAROL" and entries[missed].text == "posted while down"
    assert entries[pinned].key_event
    call = bot.fake.calls("conversations.replies")[-1]
    assert (call.params["channel"], call.params["ts"]) == (channel, thread)
    # A second pass finds nothing new, and live events for the same messages add nothing either.
    assert backfill(bot.service.rt) == 0
    bot.send_ok(sr.event(sr.thread_reply(channel, thread, missed, "U0CAROL", "posted while down"), secret=SECRET))
    bot.reply(incident, sr.new_ts(), "sentinel")
    poll(lambda: len(stored()) == 4, message="sentinel stored")
    assert len(stored()) == 4


def test_backfill_survives_a_failing_web_api(bot: Bot) -> None:
    incident = bot.declare()
    bot.fake.fail("conversations.replies", status=200, error="channel_not_found", times=None)
    assert backfill(bot.service.rt) == 0
    assert incident.card_ts


def test_backfill_runs_at_start_up(make_bot: Any) -> None:
    bot = make_bot(timeline_backfill_interval=60)
    job = bot.service.background.scheduler.get_job("timeline-backfill")
    assert job is not None and job.trigger.interval.total_seconds() == 60
    assert make_bot(timeline_backfill_interval=0).service.background.scheduler.get_job("timeline-backfill") is None


def test_a_stopping_bot_reads_no_further_thread(bot: Bot) -> None:
    first, second = bot.declare("One"), bot.declare("Two")
    assert first.card_ts and second.card_ts
    stopping = threading.Event()
    replies = {"ok": True, "has_more": False, "messages": []}

    def answer(_params: Any) -> dict[str, Any]:
        stopping.set()  # SIGTERM arrives while the first thread is read
        return replies

    bot.fake.clear()
    bot.fake.respond_with("conversations.replies", answer)
    assert backfill(bot.service.rt, stopping) == 0
    assert len(bot.fake.calls("conversations.replies")) == 1


def test_a_rate_limited_read_is_waited_out_unless_the_bot_stops(bot: Bot) -> None:
    bot.declare()
    bot.fake.clear()
    bot.fake.fail("conversations.replies", 429, times=1, retry_after=1)
    assert backfill(bot.service.rt) == 0
    assert [c.status for c in bot.fake.calls("conversations.replies")] == [429, 200]
    # A long Retry-After: the stop event ends the wait, not the clock.
    bot.fake.clear()
    bot.fake.fail("conversations.replies", 429, times=None, retry_after=600)
    stopping = threading.Event()
    threading.Timer(0.3, stopping.set).start()
    started = time.monotonic()
    backfill(bot.service.rt, stopping)
    assert time.monotonic() - started < 10
    assert len(bot.fake.calls("conversations.replies")) == 1


def test_backfill_calls_are_bounded_and_not_retried_by_the_client(bot: Bot) -> None:
    client = backfill_client(bot.service.rt.client)
    assert client.timeout == CALL_TIMEOUT <= 3
    assert client.retry_handlers == []
    assert (client.token, client.base_url) == (bot.service.rt.client.token, bot.service.rt.client.base_url)
