"""Property tests: whatever Slack (or anyone holding the signing secret) sends, the bot answers sanely.

The parsers return a value or a typed, user-facing error, never another exception; the real server
answers every fuzzed submission with 200 and either field errors, an empty ack or an ephemeral
text, and writes all or nothing; user text is rendered so it can never ping a channel.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import date
from typing import Any
from urllib.parse import urlencode

import pytest
import slack_requests as sr
from bot_harness import SECRET, Bot, poll
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot import mrkdwn

# No example database: the run leaves nothing behind in the working tree.
from bot.alerts import payload as alert_payload
from bot.ids import Action, Block, Callback
from bot.incidents import timeline
from bot.incidents.forms import (
    INCIDENT_ID,
    TEXT_MAX,
    TITLE_MAX,
    CommandText,
    DeclareForm,
    FollowUpForm,
    FormErrors,
    ResolveForm,
)
from bot.slack.forms import parse_command_text, parse_declare, parse_follow_up, parse_resolve
from bot.slack.message_events import to_change
from storage.db import unit_of_work
from storage.models import CATEGORIES, ROOT_CAUSE_CLASSES, SEVERITIES, FollowUp, Incident, TimelineEntry

# The full counts under CI=true (.ci/run); a third of them (half for the server's) on a developer's
# `pytest`, which these tests would otherwise slow down most among the unit tests.
FULL = os.environ.get("CI") == "true"
PURE = settings(max_examples=300 if FULL else 100, deadline=None, database=None)
SERVER = settings(
    max_examples=40 if FULL else 20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

DECLARE_BLOCKS = {
    Block.TITLE,
    Block.SEVERITY,
    Block.AFFECTED,
    Block.AFFECTED_USERS,
    Block.DETECTION,
    Block.CATEGORY,
    Block.COMMANDER,
}
RESOLVE_BLOCKS = {
    Block.ROOT_CAUSE,
    Block.RESOLUTION,
    Block.ROOT_CAUSE_CLASS,
    Block.CATEGORY,
    Block.IMPACT,
    Block.REVENUE,
    Block.LESSONS_WORKED,
    Block.LESSONS_DIDNT,
    Block.RCA_URL,
}
FOLLOW_UP_BLOCKS = {Block.FOLLOW_UP_TEXT, Block.FOLLOW_UP_OWNER, Block.FOLLOW_UP_DUE}
SLACK_TS = re.compile(r"^\d+\.\d+$")
# What must never reach Slack unescaped from user input: mentions, broadcasts and disguised links.
UNSAFE = ["<!channel>", "<!here", "<!everyone>", "<!subteam^S1>", "<@U123>", "<https://evil"]

# -- strategies --------------------------------------------------------------------------------------

PINGS = ["<!channel>", "<!here>", "<!everyone>", "<!subteam^S1>", "<@U123>", "<!here|here>", "<https://evil|x>"]
SPECIAL = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "lone \udfff surrogate",
    "\n\t",
    "1e400",
    "nan",
    "-0",
    "1,000",
    "1_000",
    "１２",
    "$12.50",
    "2026-02-30",
    "2026-12-24",
    "https://example.com/rca",
    "javascript:alert(1)",
    "INC-2026-01-04-001",
    "U0ALICE",
    "U" + "A" * 40,
    "W0X",
    "P0",
    "P9",
    *SEVERITIES,
    *CATEGORIES,
    *ROOT_CAUSE_CLASSES,
    *PINGS,
    "🔥" * 3,
    "é" * 151,
]


def _repeat(pair: tuple[str, int]) -> str:
    return pair[0] * pair[1]


def values_strategies(longest: int) -> tuple[st.SearchStrategy[str], st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(text, JSON leaf, any JSON value), with repeated-text strings up to `longest` characters."""
    huge = st.tuples(st.text(min_size=1, max_size=3), st.integers(1000, longest)).map(_repeat)
    text = st.one_of(st.text(max_size=60), st.sampled_from(SPECIAL), huge)
    scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), text)
    keys = st.one_of(st.text(max_size=8), st.sampled_from(list(map(str, Block))))
    value = st.recursive(
        scalar,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
        max_leaves=16,
    )
    return text, scalar, value


# Parsers see anything up to 40,000 characters; through the server, bodies stay under its 1 MiB limit.
some_text, leaf, json_value = values_strategies(40_000)
small_text, small_leaf, small_json = values_strategies(2_000)


def state_values(
    blocks: set[Block], scalar: st.SearchStrategy[Any] = leaf, value: st.SearchStrategy[Any] = json_value
) -> st.SearchStrategy[Any]:
    """Anything at all, or `view.state.values` shaped like Slack's with arbitrary contents."""
    option = st.one_of(scalar, st.fixed_dictionaries({"value": scalar}), st.fixed_dictionaries({"text": scalar}))
    element = st.fixed_dictionaries(
        {},
        optional={
            "type": scalar,
            "value": scalar,
            "selected_option": option,
            "selected_user": scalar,
            "selected_date": scalar,
        },
    )
    names = [b.value for b in sorted(blocks)]
    action_ids = [*(n + "_input" for n in names), "other_action"]
    shaped = st.dictionaries(
        st.sampled_from(names),
        st.one_of(value, st.dictionaries(st.sampled_from(action_ids), st.one_of(element, value), max_size=2)),
        max_size=len(names),
    )
    return st.one_of(value, shaped, shaped)


# -- the parsers -----------------------------------------------------------------------------------


words = st.sampled_from(["help", "list", "status", "STATUS", "INC-2026-01-04-001", "inc-2026-01-04-1234", "--force"])


def command_texts(text: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        text,
        st.lists(st.one_of(words, st.text(max_size=12), st.sampled_from(PINGS)), max_size=4).map(" ".join),
    )


command_text = command_texts(some_text)


@PURE
@given(command_text)
def test_any_command_text_parses_to_a_known_kind(text: str | None) -> None:
    parsed = parse_command_text(text)
    assert isinstance(parsed, CommandText)
    assert parsed.kind in {"declare", "help", "list", "status", "usage"}
    if parsed.kind == "usage":
        assert isinstance(parsed.problem, str) and parsed.problem
    if parsed.kind == "status":
        assert parsed.incident_id is not None and INCIDENT_ID.match(parsed.incident_id)
    if parsed.kind == "declare" and parsed.title is not None:
        assert _storable(parsed.title, TITLE_MAX) and parsed.title == " ".join(parsed.title.split())


def _check_errors(exc: FormErrors, blocks: set[Block]) -> None:
    assert exc.errors, "FormErrors without errors"
    assert set(exc.errors) <= {b.value for b in blocks}, exc.errors
    assert all(isinstance(v, str) and v for v in exc.errors.values())
    json.dumps({"response_action": "errors", "errors": exc.errors})  # what the ack sends


def _storable(text: str | None, limit: int) -> bool:
    """Within the limit, trimmed, and something both databases take (no NUL, valid UTF-8)."""
    if text is None:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return 0 < len(text) <= limit and "\x00" not in text and text == text.strip()


@PURE
@given(state_values(DECLARE_BLOCKS))
@example(
    {
        Block.TITLE.value: {"title_input": sr.plain("a\x00b \udfff")},
        Block.SEVERITY.value: {"severity_input": sr.select("P1")},
        Block.COMMANDER.value: {"commander_input": sr.user("U" + "A" * 40)},
    }
)
def test_declare_form_parses_or_names_the_bad_fields(values: Any) -> None:
    try:
        form = parse_declare(values)
    except FormErrors as exc:
        _check_errors(exc, DECLARE_BLOCKS)
        return
    assert isinstance(form, DeclareForm)
    assert _storable(form.title, TITLE_MAX) and form.severity in SEVERITIES
    assert form.category is None or form.category in CATEGORIES
    assert form.affected_users is None or 0 <= form.affected_users <= 10**12
    assert _storable(form.affected, TEXT_MAX) and _storable(form.detection, TEXT_MAX)
    assert form.commander is None or re.match(r"^[UW][A-Z0-9]{2,31}$", form.commander)


@PURE
@given(state_values(RESOLVE_BLOCKS))
def test_resolve_form_parses_or_names_the_bad_fields(values: Any) -> None:
    try:
        form = parse_resolve(values)
    except FormErrors as exc:
        _check_errors(exc, RESOLVE_BLOCKS)
        return
    assert isinstance(form, ResolveForm)
    assert _storable(form.root_cause, TEXT_MAX) and form.root_cause
    assert _storable(form.resolution, TEXT_MAX) and form.resolution
    assert form.root_cause_class in ROOT_CAUSE_CLASSES
    assert form.category is None or form.category in CATEGORIES
    assert form.revenue_impact is None or 0 <= form.revenue_impact < float("inf")
    assert form.rca_url is None or re.match(r"^https?://\S+$", form.rca_url)
    for text in (form.impact, form.lessons_worked, form.lessons_didnt):
        assert _storable(text, TEXT_MAX)


@PURE
@given(state_values(FOLLOW_UP_BLOCKS))
def test_follow_up_form_parses_or_names_the_bad_fields(values: Any) -> None:
    try:
        form = parse_follow_up(values)
    except FormErrors as exc:
        _check_errors(exc, FOLLOW_UP_BLOCKS)
        return
    assert isinstance(form, FollowUpForm)
    assert _storable(form.description, TEXT_MAX) and form.description
    assert form.owner is None or re.match(r"^[UW][A-Z0-9]{2,31}$", form.owner)
    assert form.due_date is None or isinstance(form.due_date, date)


ts_value = st.one_of(
    st.sampled_from(["1764168000.000100", "1764168000.000200", "1764168001.5", "abc", "", "nan", "1e30", "-1.0"]),
    leaf,
)
message_dict = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("message"),
        "subtype": st.one_of(leaf, st.sampled_from(["file_share", "thread_broadcast", "me_message", "bot_message"])),
        "ts": ts_value,
        "thread_ts": ts_value,
        "user": leaf,
        "text": leaf,
        "bot_id": leaf,
        "edited": st.one_of(leaf, st.fixed_dictionaries({"ts": ts_value})),
        "files": json_value,
    },
)
event_dict = st.one_of(
    json_value.filter(lambda v: isinstance(v, dict)),
    st.builds(
        lambda base, extra: {**base, **extra},
        message_dict,
        st.fixed_dictionaries(
            {"channel": st.one_of(st.just("C0INCIDENTS"), leaf)},
            optional={
                "subtype": st.one_of(st.sampled_from(["message_changed", "message_deleted", "file_share"]), leaf),
                "message": st.one_of(message_dict, leaf),
                "previous_message": st.one_of(message_dict, leaf),
                "deleted_ts": ts_value,
            },
        ),
    ),
)


@PURE
@given(event_dict)
@example({"channel": "C0INCIDENTS", "ts": "1764168000.000100", "thread_ts": "abc"})
@example({"channel": "C0INCIDENTS", "ts": "1e30", "thread_ts": "1764168000.000100", "text": "\x00\ud800"})
def test_any_message_event_is_ignored_or_a_storable_change(event: dict[str, Any]) -> None:
    found = to_change(event)
    if found is None:
        return
    change, message = found
    assert isinstance(change, timeline.Change)
    assert isinstance(message.channel_id, str)
    assert isinstance(message.text, str)
    assert message.user is None or isinstance(message.user, str)
    assert all(isinstance(f, dict) and all(isinstance(v, str) for v in f.values()) for f in message.files)
    assert message.ts != message.thread_ts
    # What the timeline will do with it must work: its time comes from the ts, edits compare by ts.
    for ts in (message.ts, message.thread_ts, message.edited_ts):
        assert ts is None or SLACK_TS.match(ts), ts
    mrkdwn.ts_to_datetime(message.ts)
    if message.edited_ts is not None:
        mrkdwn.ts_to_datetime(message.edited_ts)


def webhook(**overrides: Any) -> dict[str, Any]:
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighLatency", "severity": "critical"},
        "annotations": {"summary": "p99 over 2s"},
        "startsAt": "2026-01-04T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "abc123",
    }
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "status": "firing",
        "receiver": "incident-bot",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [alert],
    }
    return {**body, **overrides}


def _mutate(body: dict[str, Any], path: list[str], value: Any) -> bytes:
    target: Any = body
    for key in path[:-1]:
        target = target[key] if not isinstance(target, list) else target[0]
    if isinstance(target, dict):
        target[path[-1]] = value
    return json.dumps(body, default=str).encode("utf-8", "surrogatepass")


webhook_paths = st.sampled_from(
    [
        ["version"],
        ["groupKey"],
        ["status"],
        ["alerts"],
        ["truncatedAlerts"],
        ["commonLabels"],
        ["alerts", "status"],
        ["alerts", "labels"],
        ["alerts", "startsAt"],
        ["alerts", "endsAt"],
        ["alerts", "annotations"],
        ["alerts", "fingerprint"],
        ["alerts", "generatorURL"],
    ]
)
webhook_bodies = st.one_of(
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda path, value: _mutate(webhook(), path, value), webhook_paths, json_value),
    st.just(b"[" * 100_000),
    st.just(json.dumps(webhook()).encode()),
)


@PURE
@given(webhook_bodies)
def test_alertmanager_bodies_parse_or_give_a_clean_reason(body: bytes) -> None:
    try:
        parsed = alert_payload.parse_webhook(body)
    except alert_payload.WebhookError as exc:
        reason = str(exc)
        assert reason and len(reason) <= 600 and "Traceback" not in reason
        return
    assert isinstance(parsed, alert_payload.Webhook)
    assert parsed.version == "4" and parsed.alerts and parsed.group_key


# -- through the real server -------------------------------------------------------------------------


def _count(bot: Bot, model: type[Any]) -> int:
    with unit_of_work(bot.sessions) as session:
        return len(session.exec(select(model)).all())


def _assert_sane(status: int, body: bytes, blocks: set[Block]) -> dict[str, Any]:
    assert status == 200, (status, body[:300])
    assert b"Traceback" not in body, body[:300]
    answer: dict[str, Any] = json.loads(body) if body.strip() else {}
    if answer:
        assert answer["response_action"] == "errors", answer
        assert answer["errors"] and set(answer["errors"]) <= {b.value for b in blocks}, answer
    return answer


# Values Slack could put in the declare modal: anything typed, including Unicode, NUL and pings.
typed = st.one_of(st.text(max_size=200), st.sampled_from(SPECIAL), st.text(min_size=140, max_size=160))
declare_state = st.fixed_dictionaries(
    {
        Block.TITLE.value: st.fixed_dictionaries({"title_input": st.builds(sr.plain, st.one_of(st.none(), typed))}),
        Block.SEVERITY.value: st.fixed_dictionaries(
            {"severity_input": st.builds(sr.select, st.one_of(st.none(), st.sampled_from([*SEVERITIES, "P9"])))}
        ),
    },
    optional={
        Block.AFFECTED_USERS.value: st.fixed_dictionaries(
            {"affected_users_input": st.builds(sr.number, st.one_of(st.none(), typed))}
        ),
        Block.AFFECTED.value: st.fixed_dictionaries({"affected_input": st.builds(sr.plain, typed)}),
        Block.COMMANDER.value: st.fixed_dictionaries(
            {"commander_input": st.builds(sr.user, st.one_of(st.none(), st.sampled_from(SPECIAL)))}
        ),
        Block.CATEGORY.value: st.fixed_dictionaries({"category_input": st.builds(sr.select, typed)}),
    },
)


def submission(callback: Callback, values: Any, private_metadata: str = "") -> sr.SignedRequest:
    """A view_submission whose `view.state.values` is `values`, whatever its shape."""
    payload = sr.view_submission(callback.value, {}, secret=SECRET, private_metadata=private_metadata).payload
    payload["view"]["state"]["values"] = values
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return sr.SignedRequest(body, {"Content-Type": "application/x-www-form-urlencoded", **sr.sign(body, SECRET)})


@pytest.fixture
def open_incident(bot: Bot) -> Incident:
    return bot.declare("Fuzz target", "P2")


def _declare_values(title: str, users: str | None = None) -> dict[str, Any]:
    values = {
        Block.TITLE.value: {"title_input": sr.plain(title)},
        Block.SEVERITY.value: {"severity_input": sr.select("P2")},
    }
    if users is not None:
        values[Block.AFFECTED_USERS.value] = {"affected_users_input": sr.number(users)}
    return values


def test_fuzzed_declare_submissions_are_all_or_nothing(bot: Bot) -> None:
    outcomes: Counter[str] = Counter()

    @SERVER
    @given(values=st.one_of(declare_state, state_values(DECLARE_BLOCKS, small_leaf, small_json)))
    @example(values=_declare_values("NUL \x00 in the title"))
    @example(values=_declare_values("lone \ud800 surrogate"))
    @example(values=_declare_values("fine", users="１２"))
    @example(values=_declare_values("é" * 150))
    def submit(values: Any) -> None:
        before = _count(bot, Incident)
        status, body, _ = bot.send(submission(Callback.DECLARE, values))
        answer = _assert_sane(status, body, DECLARE_BLOCKS)
        assert _count(bot, Incident) == before + (0 if answer else 1), answer
        outcomes["refused" if answer else "saved"] += 1

    submit()
    assert outcomes["saved"] >= 4 and outcomes["refused"] >= 4, outcomes  # both paths were exercised
    with unit_of_work(bot.sessions) as session:
        titles = set(session.exec(select(Incident.title)))
    assert {"NUL in the title", "lone \ufffd surrogate", "é" * 150} <= titles


def _resolve_values(root_cause: Any, resolution: Any, cls: Any, rca: Any = None) -> dict[str, Any]:
    return {
        Block.ROOT_CAUSE.value: {"root_cause_input": sr.plain(root_cause)},
        Block.RESOLUTION.value: {"resolution_input": sr.plain(resolution)},
        Block.ROOT_CAUSE_CLASS.value: {"root_cause_class_input": sr.select(cls)},
        Block.RCA_URL.value: {"rca_url_input": sr.url(rca)},
    }


def _follow_up_values(description: Any, owner: Any, due: Any) -> dict[str, Any]:
    return {
        Block.FOLLOW_UP_TEXT.value: {"follow_up_text_input": sr.plain(description)},
        Block.FOLLOW_UP_OWNER.value: {"follow_up_owner_input": sr.user(owner)},
        Block.FOLLOW_UP_DUE.value: {"follow_up_due_input": sr.date(due)},
    }


# Mostly well-formed, so that both saved and refused submissions are common.
filled = st.one_of(st.text(min_size=1, max_size=200).filter(str.strip), typed, st.none())
resolve_state = st.builds(
    _resolve_values,
    filled,
    filled,
    st.sampled_from([*ROOT_CAUSE_CLASSES, "Gremlins"]),
    st.one_of(st.none(), st.just("https://docs.example.com/rca/1"), typed),
)
follow_up_state = st.builds(
    _follow_up_values,
    filled,
    st.one_of(st.none(), st.just("U0ERIN"), st.sampled_from(SPECIAL)),
    st.one_of(st.none(), st.just("2026-12-24"), typed),
)


def test_fuzzed_resolve_and_follow_up_submissions_are_all_or_nothing(bot: Bot, open_incident: Incident) -> None:
    outcomes: Counter[str] = Counter()

    def state() -> tuple[str, int]:
        with unit_of_work(bot.sessions) as session:
            incident = session.get(Incident, open_incident.id)
            assert incident is not None
            return incident.status, len(session.exec(select(FollowUp)).all())

    @SERVER
    @given(
        values=st.one_of(
            resolve_state,
            follow_up_state,
            resolve_state,
            follow_up_state,
            state_values(RESOLVE_BLOCKS, small_leaf, small_json),
            state_values(FOLLOW_UP_BLOCKS, small_leaf, small_json),
        )
    )
    @example(values=_follow_up_values("Add an expiry alert \x00 <!channel>", "U0ERIN", "2026-12-24"))
    @example(values=_resolve_values("Expired \ud800 cert", "Rotated it", "Code Bug", "https://docs.example.com/r"))
    @example(values=_resolve_values("Expired cert", "Rotated it", "Gremlins"))
    def submit(values: Any) -> None:
        for callback, blocks, changed in (
            (Callback.FOLLOW_UP, FOLLOW_UP_BLOCKS, lambda a, b: b[1] == a[1] + 1),
            (Callback.RESOLVE, RESOLVE_BLOCKS, lambda a, b: b[0] == "Resolved"),
        ):
            before = state()
            status, body, _ = bot.send(submission(callback, values, open_incident.id))
            answer = _assert_sane(status, body, blocks)
            after = state()
            outcomes[f"{callback.value} {'refused' if answer else 'saved'}"] += 1
            if answer:
                assert after == before, (callback, answer)
                continue
            assert changed(before, after), (callback, before, after)
            if callback is Callback.RESOLVE:  # reopen, so the next example starts from an open incident
                bot.click(Action.REOPEN.value, open_incident.id)
                poll(lambda: state()[0] == "Investigating", message="reopened")

    submit()
    assert all(
        outcomes[f"{c.value} {o}"] for c in (Callback.FOLLOW_UP, Callback.RESOLVE) for o in ("saved", "refused")
    ), outcomes


@SERVER
@given(text=command_texts(small_text).map(lambda t: t and t.encode("utf-8", "replace").decode()))
def test_fuzzed_slash_commands_get_an_ack_or_an_ephemeral_text(bot: Bot, text: str | None) -> None:
    request = sr.slash_command(text or "", secret=SECRET, response_url=bot.fake.response_url())
    status, body, _ = bot.send(request)
    assert status == 200, (status, body[:300])
    assert b"Traceback" not in body
    if body.strip():
        answer = json.loads(body)
        assert answer["response_type"] == "ephemeral" and isinstance(answer["text"], str) and answer["text"]
        assert "/incident" in answer["text"]


# -- rendering user text -------------------------------------------------------------------------------


def mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str) else []
        return found + [t for value in node.values() for t in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    return []


def rendered_texts(bot: Bot) -> list[str]:
    """Every string Slack would parse for mentions, in everything the bot sent."""
    texts: list[str] = []
    for call in bot.fake.calls():
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"):
            if isinstance(call.params.get("text"), str):
                texts.append(call.params["text"])
            texts += mrkdwn_texts(call.params.get("blocks") or [])
        if call.method == "views.open":
            texts += mrkdwn_texts(call.params.get("view") or {})
    return texts


PING_TITLES = [
    "<!channel> checkout down <!here>",
    "<@U123> and <!subteam^S1> please look",
    "Ünïcödé 数据库 🔥 <!everyone> ready",
    "click <https://evil|here> now",
    "already &lt;!channel&gt; escaped <!here|here>",
]


def test_user_text_can_never_ping_anyone(bot: Bot) -> None:
    url = bot.fake.response_url("answers")
    made = [bot.declare(title, "P1", commander="U0CAROL", affected="<!channel>") for title in PING_TITLES]
    first = made[0]
    bot.click(Action.ACKNOWLEDGE.value, first.id, card=first)
    bot.click(Action.ACKNOWLEDGE.value, first.id, user="U0DAVE", card=first)  # refused, quoting nothing unsafe
    follow_up = {
        Block.FOLLOW_UP_TEXT.value: {"follow_up_text_input": sr.plain("<!channel> rotate <!here> keys")},
    }
    bot.send_ok(sr.view_submission(Callback.FOLLOW_UP.value, follow_up, secret=SECRET, private_metadata=first.id))
    resolve = {
        Block.ROOT_CAUSE.value: {"root_cause_input": sr.plain("<!channel> expired cert")},
        Block.RESOLUTION.value: {"resolution_input": sr.plain("<!here> rotated")},
        Block.ROOT_CAUSE_CLASS.value: {"root_cause_class_input": sr.select("Configuration Error")},
        Block.LESSONS_WORKED.value: {"lessons_worked_input": sr.plain("<!everyone>")},
    }
    assert (
        bot.send_ok(sr.view_submission(Callback.RESOLVE.value, resolve, secret=SECRET, private_metadata=made[1].id))
        == {}
    )
    bot.send_ok(sr.slash_command("list", secret=SECRET, response_url=url))
    for incident in made:
        bot.send_ok(sr.slash_command(f"status {incident.id}", secret=SECRET, response_url=url))
    bot.send_ok(sr.slash_command(PING_TITLES[0], secret=SECRET))  # the prefilled modal
    bot.fake.wait_for("response_url", count=1 + len(made))
    bot.fake.wait_for("views.open")
    poll(lambda: any("FU-" in t for t in rendered_texts(bot)), message="the follow-up announced")
    poll(lambda: any("Resolved by" in t for t in rendered_texts(bot)), message="the resolution announced")

    texts = rendered_texts(bot)
    assert len(texts) > 20
    for text in texts:
        for ping in UNSAFE:
            assert ping not in text, (ping, text[:300])
    # The titles are still there, escaped, not dropped.
    joined = "\n".join(texts)
    assert "&lt;!channel&gt; checkout down &lt;!here&gt;" in joined
    assert "Ünïcödé 数据库 🔥" in joined
    assert "&amp;lt;!channel&amp;gt; escaped" in joined  # escaped text is shown as typed, not unescaped


def test_a_40000_character_reply_is_stored_intact(bot: Bot) -> None:
    incident = bot.declare("Long replies", "P3")
    text = ("log line <!channel> ünïcödé 🔥 " * 2000)[:40_000]
    assert len(text) == 40_000
    ts = sr.new_ts()
    bot.reply(incident, ts, text)

    def stored() -> TimelineEntry | None:
        with unit_of_work(bot.sessions) as session:
            return session.exec(select(TimelineEntry).where(TimelineEntry.slack_ts == ts)).first()

    entry = poll(stored, message="the long reply stored")
    assert entry.text == text
    assert entry.author == "U0BOB" and not entry.deleted
