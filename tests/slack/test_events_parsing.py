"""Unit tests of bot.listeners.events.to_change: which `message` events are timeline changes."""

from __future__ import annotations

from typing import Any

import pytest
import slack_requests as sr

from bot.incidents.timeline import Change, ThreadMessage
from bot.slack.listeners.events import to_change

CHANNEL = "C0INCIDENTS"
CARD_TS = "1764168000.000100"
REPLY_TS = "1764168100.000200"
EDIT_TS = "1764168200.000300"


def reply(text: str = "db failover started", **kwargs: Any) -> dict[str, Any]:
    return sr.thread_reply(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", text, **kwargs)


def expected(change: Change, **fields: Any) -> tuple[Change, ThreadMessage]:
    values: dict[str, Any] = {
        "channel_id": CHANNEL,
        "thread_ts": CARD_TS,
        "ts": REPLY_TS,
        "user": "U0BOB",
        "text": "db failover started",
        "files": [],
        "edited_ts": None,
    }
    values.update(fields)
    return change, ThreadMessage(**values)


# ---------------------------------------------------------------------- human thread replies


def test_plain_thread_reply_is_posted() -> None:
    assert to_change(reply()) == expected(Change.POSTED)


def test_file_share_reply_keeps_file_names_and_permalinks() -> None:
    event = reply("see graph", files=[{"id": "F0GRAPH", "name": "graph.png"}, {"id": "F0LOG", "name": "app.log"}])
    assert event["subtype"] == "file_share"
    files = [
        {"name": "graph.png", "permalink": "https://incident-test.slack.com/files/U0BOB/F0GRAPH/graph.png"},
        {"name": "app.log", "permalink": "https://incident-test.slack.com/files/U0BOB/F0LOG/app.log"},
    ]
    assert to_change(event) == expected(Change.POSTED, text="see graph", files=files)


def test_file_share_without_comment_has_empty_text() -> None:
    event = reply("", files=[{"id": "F0X", "name": "dump.txt"}])
    found = to_change(event)
    assert found is not None
    change, message = found
    assert change is Change.POSTED
    assert message.text == ""
    assert [f["name"] for f in message.files] == ["dump.txt"]


def test_file_without_name_or_permalink_falls_back() -> None:
    event = reply("x")
    event.update(
        subtype="file_share",
        files=[
            {"id": "F1", "title": "Titled", "url_private": "https://files.slack.com/private/F1"},
            {"id": "F2"},
            "not-a-file",
        ],
    )
    found = to_change(event)
    assert found is not None
    assert found[1].files == [
        {"name": "Titled", "permalink": "https://files.slack.com/private/F1"},
        {"name": "file", "permalink": ""},
    ]


def test_thread_broadcast_is_posted() -> None:
    event = reply()
    event["subtype"] = "thread_broadcast"
    assert to_change(event) == expected(Change.POSTED)


def test_me_message_is_posted() -> None:
    event = reply("is looking at the db")
    event["subtype"] = "me_message"
    assert to_change(event) == expected(Change.POSTED, text="is looking at the db")


def test_reply_without_user_has_no_author() -> None:
    event = reply()
    del event["user"]
    assert to_change(event) == expected(Change.POSTED, user=None)


def test_reply_with_non_string_user_has_no_author() -> None:
    event = reply()
    event["user"] = {"id": "U0BOB"}
    assert to_change(event) == expected(Change.POSTED, user=None)


# ---------------------------------------------------------------------- edits and deletions


def test_message_changed_is_an_edit_with_edited_ts() -> None:
    event = sr.message_changed(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", "failover done", EDIT_TS, "failover started")
    assert to_change(event) == expected(Change.EDITED, text="failover done", edited_ts=EDIT_TS)


def test_message_changed_of_a_file_share_keeps_the_files() -> None:
    event = sr.message_changed(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", "new caption", EDIT_TS)
    event["message"].update(subtype="file_share", files=[sr.file_info("F0A", "a.png", user="U0BOB")])
    found = to_change(event)
    assert found is not None
    assert found[0] is Change.EDITED
    assert found[1].files == [{"name": "a.png", "permalink": "https://incident-test.slack.com/files/U0BOB/F0A/a.png"}]


def test_message_changed_without_edited_has_no_edited_ts() -> None:
    event = sr.message_changed(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", "unfurled", EDIT_TS)
    del event["message"]["edited"]
    assert to_change(event) == expected(Change.EDITED, text="unfurled", edited_ts=None)


def test_message_deleted_uses_deleted_ts_and_previous_message() -> None:
    event = sr.message_deleted(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", text="oops")
    assert event["ts"] != REPLY_TS  # the event's own ts is not the message's
    assert to_change(event) == expected(Change.DELETED, text="oops")


def test_message_deleted_without_previous_ts_takes_deleted_ts() -> None:
    event = sr.message_deleted(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", text="oops")
    del event["previous_message"]["ts"]
    assert to_change(event) == expected(Change.DELETED, text="oops")


def test_message_deleted_of_a_top_level_message_is_ignored() -> None:
    assert to_change(sr.message_deleted(CHANNEL, None, REPLY_TS, "U0BOB", text="bye")) is None


# ---------------------------------------------------------------------- not human thread replies


def test_top_level_message_is_ignored() -> None:
    assert to_change(sr.top_level_message(CHANNEL, REPLY_TS, "U0BOB", "hello channel")) is None


@pytest.mark.parametrize(
    "event",
    [
        sr.bot_message(CHANNEL, CARD_TS, REPLY_TS, text="from our app"),
        sr.bot_message(CHANNEL, CARD_TS, REPLY_TS, "B0OTHER", "another app", user="U0OTHERBOT"),
        sr.bot_message(CHANNEL, CARD_TS, REPLY_TS, "B0HOOK", "webhook", user=None, subtype="bot_message"),
    ],
    ids=["own-app", "other-app", "bot_message-subtype"],
)
def test_bot_messages_are_ignored(event: dict[str, Any]) -> None:
    assert to_change(event) is None


def test_bot_message_subtype_without_bot_id_is_ignored() -> None:
    event = reply("legacy integration")
    event["subtype"] = "bot_message"
    assert to_change(event) is None


def test_edit_of_a_bot_message_is_ignored() -> None:
    event = sr.message_changed(CHANNEL, CARD_TS, REPLY_TS, "U0BOT", "bot text edited", EDIT_TS)
    event["message"]["bot_id"] = "B0BOT"
    assert to_change(event) is None


def test_deletion_of_a_bot_message_is_ignored() -> None:
    event = sr.message_deleted(CHANNEL, CARD_TS, REPLY_TS, "U0BOT", text="bot text")
    event["previous_message"]["bot_id"] = "B0BOT"
    assert to_change(event) is None


@pytest.mark.parametrize("subtype", ["channel_join", "channel_leave", "channel_topic", "pinned_item", "tombstone"])
def test_channel_housekeeping_subtypes_are_ignored(subtype: str) -> None:
    event = reply("<@U0BOB> has joined the channel")
    event["subtype"] = subtype
    assert to_change(event) is None


def test_card_edit_is_ignored() -> None:
    # The card is the thread's parent: its own edits have ts == thread_ts once it has replies...
    event = sr.message_changed(CHANNEL, CARD_TS, CARD_TS, "U0BOT", "card v2", EDIT_TS)
    event["message"]["thread_ts"] = CARD_TS
    event["message"]["reply_count"] = 3
    assert to_change(event) is None
    # ... even if Slack omits the bot fields, and no thread_ts at all before it has any.
    del event["message"]["user"]
    assert to_change(event) is None
    assert to_change(sr.message_changed(CHANNEL, None, CARD_TS, "U0BOT", "card v1", EDIT_TS)) is None


def test_thread_parent_posted_with_its_own_thread_ts_is_ignored() -> None:
    event = sr.thread_reply(CHANNEL, CARD_TS, CARD_TS, "U0BOB", "parent")
    assert to_change(event) is None


# ---------------------------------------------------------------------- malformed shapes


def _without(event: dict[str, Any], key: str) -> dict[str, Any]:
    event = dict(event)
    event.pop(key)
    return event


def _with(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**event, **fields}


def _with_message(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**event, "message": {**event["message"], **fields}}


_EDIT = sr.message_changed(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", "new", EDIT_TS)
_DELETE = sr.message_deleted(CHANNEL, CARD_TS, REPLY_TS, "U0BOB", text="old")


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="empty"),
        pytest.param(_without(reply(), "channel"), id="reply-missing-channel"),
        pytest.param(_with(reply(), channel=None), id="reply-channel-none"),
        pytest.param(_with(reply(), channel=["C0INCIDENTS"]), id="reply-channel-list"),
        pytest.param(_without(_EDIT, "channel"), id="edit-missing-channel"),
        pytest.param(_without(_DELETE, "channel"), id="delete-missing-channel"),
        pytest.param(_with(reply(), ts=1764168100.0002), id="reply-ts-float"),
        pytest.param(_with(reply(), ts=None), id="reply-ts-none"),
        pytest.param(_without(reply(), "ts"), id="reply-missing-ts"),
        pytest.param(_with(reply(), thread_ts=1764168000.0001), id="reply-thread_ts-float"),
        pytest.param(_with(reply(), thread_ts=None), id="reply-thread_ts-none"),
        pytest.param(_with(_EDIT, message="edited text"), id="edit-message-string"),
        pytest.param(_with(_EDIT, message=["a", "b"]), id="edit-message-list"),
        pytest.param(_with(_EDIT, message=None), id="edit-message-none"),
        pytest.param(_without(_EDIT, "message"), id="edit-missing-message"),
        pytest.param(_with_message(_EDIT, ts=12), id="edit-ts-int"),
        pytest.param(_with_message(_EDIT, thread_ts={"ts": CARD_TS}), id="edit-thread_ts-dict"),
        pytest.param(_with(_DELETE, previous_message="old text"), id="delete-previous-string"),
        pytest.param(_with(_DELETE, previous_message=["old"]), id="delete-previous-list"),
        pytest.param(_with(_DELETE, previous_message=None, deleted_ts=REPLY_TS), id="delete-previous-none"),
        pytest.param(_with(_DELETE, deleted_ts=17.5, previous_message={"thread_ts": CARD_TS}), id="delete-ts-float"),
        pytest.param(_with(reply(), subtype=["file_share"]), id="subtype-list"),
    ],
)
def test_malformed_events_are_ignored_without_raising(event: dict[str, Any]) -> None:
    assert to_change(event) is None


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"files": 5}, id="files-int"),
        pytest.param({"files": {"name": "x"}}, id="files-dict"),
        pytest.param({"files": "abc"}, id="files-string"),
        pytest.param({"text": None}, id="text-none"),
        pytest.param({"text": 42}, id="text-int"),
    ],
)
def test_odd_optional_fields_do_not_raise(fields: dict[str, Any]) -> None:
    event = {**reply(), "subtype": "file_share", **fields}
    found = to_change(event)
    assert found is not None
    change, message = found
    assert change is Change.POSTED
    assert message.ts == REPLY_TS
    assert isinstance(message.text, str)
    assert all(isinstance(f, dict) for f in message.files)


@pytest.mark.parametrize("edited", ["1764168200.000300", ["x"], {"user": "U0BOB"}, {"ts": 5}])
def test_odd_edited_field_does_not_raise(edited: Any) -> None:
    event = _with_message(_EDIT, edited=edited)
    found = to_change(event)
    assert found is not None
    assert found[0] is Change.EDITED
    assert found[1].edited_ts is None or isinstance(found[1].edited_ts, str)
