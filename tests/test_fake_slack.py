"""Proves FakeSlack and the slack_requests builders match what slack_sdk, Bolt and Slack put on the wire."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import slack_requests as sr
from fake_slack import RESPONSE_URL_METHOD, UPLOAD_METHOD, Call, FakeSlack
from fake_slack import fake_slack as fake_slack  # explicit re-export registers the fixture for this module
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

SECRET = "s3cr3t"
TOKEN = "xoxb-test"
TS_RE = re.compile(r"^\d{10}\.\d{6}$")


def client_for(fake: FakeSlack, **kwargs: Any) -> WebClient:
    return WebClient(token=TOKEN, base_url=fake.url, **kwargs)


# ---------------------------------------------------------------------- the fake Web API


def test_fixture_serves_on_loopback(fake_slack: FakeSlack) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", fake_slack.url)
    assert client_for(fake_slack).api_test()["ok"] is True


def test_auth_test_identity_is_the_default_and_configurable() -> None:
    with FakeSlack() as fake:
        resp = client_for(fake).auth_test()
        assert (resp["team_id"], resp["user_id"], resp["bot_id"]) == ("T0TEAM", "U0BOT", "B0BOT")
        assert resp["url"].startswith("https://") and resp["team"] and resp["user"]
        assert fake.last("auth.test").token == TOKEN
    with FakeSlack(auth={"team_id": "T9", "bot_id": "B9"}) as fake:
        resp = client_for(fake).auth_test()
        assert (resp["team_id"], resp["user_id"], resp["bot_id"]) == ("T9", "U0BOT", "B9")


def test_post_message_resolves_channel_and_mints_increasing_ts(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* declared"}}]
    first = client.chat_postMessage(channel="#ops-incidents", text="SEV1", blocks=blocks)
    second = client.chat_postMessage(channel="ops-alerts", text="reply", thread_ts=first["ts"])
    third = client.chat_postMessage(channel="C0FIXED", text="by id")

    assert first["ts"] == "1764168000.000100"
    assert all(TS_RE.match(r["ts"]) for r in (first, second, third))
    assert float(first["ts"]) < float(second["ts"]) < float(third["ts"])
    assert [r["channel"] for r in (first, second, third)] == ["C0INCIDENTS", "C0ALERTS", "C0FIXED"]
    assert first["message"]["blocks"] == blocks and first["message"]["text"] == "SEV1"
    assert second["message"]["thread_ts"] == first["ts"]
    assert "thread_ts" not in first["message"]

    recorded = fake_slack.calls("chat.postMessage")
    assert [c.status for c in recorded] == [200, 200, 200]
    # slack_sdk sends chat.postMessage as a JSON body, so blocks arrive as a list, not a string.
    assert recorded[0].headers["content-type"].startswith("application/json")
    assert recorded[0].params["blocks"] == blocks
    assert recorded[0].params["channel"] == "#ops-incidents"
    assert recorded[1].params["thread_ts"] == first["ts"]


def test_form_encoded_json_fields_are_decoded(fake_slack: FakeSlack) -> None:
    blocks = [{"type": "divider"}]
    attachments = [{"color": "#ff0000", "text": "red"}]
    client_for(fake_slack).api_call(
        "chat.postMessage",
        params={
            "channel": "ops-alerts",
            "text": "x",
            "blocks": json.dumps(blocks),
            "attachments": json.dumps(attachments),
        },
    )
    call = fake_slack.last("chat.postMessage")
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.params == {"channel": "ops-alerts", "text": "x", "blocks": blocks, "attachments": attachments}


def test_multipart_fields_are_decoded_and_unknown_methods_recorded(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        client_for(fake_slack).api_call(
            "files.upload", files={"file": b"\x00binary\xff"}, data={"channels": "C1", "filename": "x.bin"}
        )
    assert err.value.response["error"] == "unknown_method"
    call = fake_slack.last("files.upload")
    assert call.status == 200
    assert call.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert call.params == {"channels": "C1", "filename": "x.bin", "file": b"\x00binary\xff"}


def test_channel_names_resolve_deterministically() -> None:
    with FakeSlack(channels={"war-room": "C0WAR"}) as fake:
        client = client_for(fake)
        assert client.chat_postMessage(channel="#war-room", text="x")["channel"] == "C0WAR"
        assert client.chat_postMessage(channel="ops-incidents", text="x")["channel"] == "COPSINCIDENTS"
        assert client.chat_postMessage(channel="#Sev-1_Bridge", text="x")["channel"] == "CSEV1BRIDGE"
        for channel_id in ("G0PRIVATE", "D0DM", "U0ALICE"):
            assert client.chat_postMessage(channel=channel_id, text="x")["channel"] == channel_id
        assert fake.resolve_channel("sev-1-bridge") == fake.resolve_channel("#sev-1-bridge")
        assert client.conversations_info(channel="C0WAR")["channel"]["name"] == "war-room"


def test_chat_update_ephemeral_and_permalink(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    posted = client.chat_postMessage(channel="ops-incidents", text="v1")
    updated = client.chat_update(channel=posted["channel"], ts=posted["ts"], text="v2", blocks=[{"type": "divider"}])
    assert (updated["channel"], updated["ts"], updated["text"]) == ("C0INCIDENTS", posted["ts"], "v2")
    assert fake_slack.last("chat.update").params["blocks"] == [{"type": "divider"}]

    ephemeral = client.chat_postEphemeral(channel="C0INCIDENTS", user="U0ALICE", text="only you")
    assert TS_RE.match(ephemeral["message_ts"])

    link = client.chat_getPermalink(channel="C0INCIDENTS", message_ts=posted["ts"])
    assert link["permalink"] == f"https://incident-test.slack.com/archives/C0INCIDENTS/p{posted['ts'].replace('.', '')}"


def test_post_message_reports_slack_validation_errors(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        client_for(fake_slack).api_call("chat.postMessage", json={"channel": "C1"})
    assert err.value.response["error"] == "no_text"


def test_views_are_recorded_decoded_and_answered(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    view = {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": "Declare"},
        "blocks": [{"type": "input", "block_id": "title", "element": {"type": "plain_text_input"}}],
        "private_metadata": "C0INCIDENTS",
        "external_id": "declare-1",
    }
    opened = client.views_open(trigger_id="123.456.abc", view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "declare"
    call = fake_slack.last("views.open")
    assert call.headers["content-type"].startswith("application/json")
    assert call.params == {"trigger_id": "123.456.abc", "view": view}

    by_id = client.views_update(view_id=opened["view"]["id"], view={**view, "external_id": ""})
    by_external = client.views_update(external_id="declare-1", view=view)
    assert by_id["view"]["id"] == by_external["view"]["id"] == opened["view"]["id"]
    pushed = client.views_push(trigger_id="123.456.def", view=view)
    assert pushed["view"]["id"] != opened["view"]["id"]

    home = {"type": "home", "blocks": []}
    first = client.views_publish(user_id="U0ALICE", view=home)
    again = client.views_publish(user_id="U0ALICE", view=home)
    other = client.views_publish(user_id="U0BOB", view=home)
    assert first["view"]["type"] == "home" and first["view"]["id"] == again["view"]["id"] != other["view"]["id"]
    assert fake_slack.last("views.publish").params == {"user_id": "U0BOB", "view": home}


def test_files_upload_v2_round_trip(fake_slack: FakeSlack) -> None:
    content = b"incident timeline\n" * 100
    resp = client_for(fake_slack).files_upload_v2(
        content=content,
        filename="timeline.txt",
        title="Timeline",
        channel="C0INCIDENTS",
        thread_ts="1.000200",
    )
    file_id = resp["file"]["id"]
    assert resp["file"]["name"] == "timeline.txt" and resp["file"]["title"] == "Timeline"
    assert resp["file"]["size"] == len(content)

    get_url = fake_slack.last("files.getUploadURLExternal")
    assert get_url.params == {"filename": "timeline.txt", "length": str(len(content))}
    upload = fake_slack.last(UPLOAD_METHOD)
    assert upload.params == {"file_id": file_id, "data": content}
    assert fake_slack.uploaded(file_id) == content
    complete = fake_slack.last("files.completeUploadExternal")
    # `files` is a JSON string inside a form body on the wire; the fake records it decoded.
    assert complete.params["files"] == [{"id": file_id, "title": "Timeline"}]
    assert complete.params["channel_id"] == "C0INCIDENTS" and complete.params["thread_ts"] == "1.000200"


def test_complete_upload_rejects_unknown_files(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        client_for(fake_slack).files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}])
    assert err.value.response["error"] == "file_not_found"


def test_conversations_users_and_socket_mode(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    channel = client.conversations_info(channel="C0INCIDENTS")["channel"]
    assert (channel["id"], channel["name"], channel["is_channel"]) == ("C0INCIDENTS", "ops-incidents", True)
    person = client.users_info(user="U0ALICE")["user"]
    assert person["id"] == "U0ALICE" and person["profile"]["real_name"] and person["tz"]
    assert fake_slack.last("users.info").params == {"user": "U0ALICE"}
    opened = client.apps_connections_open(app_token="xapp-1-test")
    assert opened["url"] == "ws://127.0.0.1:1/invalid"
    assert fake_slack.last("apps.connections.open").token == "xapp-1-test"


def test_history_and_replies_return_metadata_only_when_asked(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    tag = {"event_type": "incident_bot_outbox", "event_payload": {"outbox_id": 7}}
    parent = client.chat_postMessage(channel="ops-incidents", text="card", metadata=tag)
    assert parent["message"]["metadata"] == tag  # chat.postMessage echoes it, as Slack does
    reply = client.chat_postMessage(channel="C0INCIDENTS", thread_ts=parent["ts"], text="reply", metadata=tag)
    client.chat_postMessage(channel="C0INCIDENTS", text="later")
    fake_slack.fail("chat.postMessage", 500)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0INCIDENTS", text="refused")  # not stored: Slack did not take it

    history = client.conversations_history(channel="C0INCIDENTS")
    assert [m["text"] for m in history["messages"]] == ["later", "card"]  # top level, newest first
    assert all("metadata" not in m for m in history["messages"])
    tagged = client.conversations_history(channel="C0INCIDENTS", include_all_metadata=True, limit=1)
    assert tagged["has_more"] and [m["text"] for m in tagged["messages"]] == ["later"]
    rest = client.conversations_history(
        channel="C0INCIDENTS", include_all_metadata=True, cursor=tagged["response_metadata"]["next_cursor"]
    )
    assert rest["messages"][0]["metadata"] == tag and not rest["has_more"]
    assert client.conversations_history(channel="C0INCIDENTS", oldest=parent["ts"])["messages"][0]["text"] == "later"

    thread = client.conversations_replies(channel="C0INCIDENTS", ts=parent["ts"], include_all_metadata=True)
    assert [m["ts"] for m in thread["messages"]] == [parent["ts"], reply["ts"]]
    assert thread["messages"][1]["metadata"] == tag and thread["messages"][0]["reply_count"] == 1
    assert "metadata" not in client.conversations_replies(channel="C0INCIDENTS", ts=parent["ts"])["messages"][1]
    with pytest.raises(SlackApiError) as err:
        client.conversations_replies(channel="C0INCIDENTS", ts="1.000000")
    assert err.value.response["error"] == "thread_not_found"

    client.chat_update(channel="C0INCIDENTS", ts=parent["ts"], text="card, updated")
    assert fake_slack.messages("ops-incidents")[0]["text"] == "card, updated"


def test_users_info_can_be_configured() -> None:
    with FakeSlack(users={"U0ALICE": {"tz": "America/New_York", "profile": {"real_name": "Alice Ops"}}}) as fake:
        person = client_for(fake).users_info(user="U0ALICE")["user"]
        assert person["tz"] == "America/New_York" and person["profile"]["real_name"] == "Alice Ops"
        assert person["profile"]["email"] == "alice@example.com"


def test_requests_without_a_token_are_not_authed(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=fake_slack.url).chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_authed"
    assert fake_slack.last("chat.postMessage").token is None


def test_respond_with_overrides_and_adds_methods(fake_slack: FakeSlack) -> None:
    fake_slack.respond_with("conversations.replies", {"ok": True, "messages": [{"ts": "1.1", "text": "root"}]})
    fake_slack.respond_with("reactions.add", lambda params: {"ok": params["name"] == "eyes"})
    client = client_for(fake_slack)
    assert client.conversations_replies(channel="C1", ts="1.1")["messages"][0]["text"] == "root"
    assert client.reactions_add(channel="C1", timestamp="1.1", name="eyes")["ok"] is True


def test_malformed_bodies_broken_responders_and_stray_paths_are_recorded(fake_slack: FakeSlack) -> None:
    bad = sr.SignedRequest(body=b"{not json", headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    status, body, _ = sr.post(fake_slack.url + "chat.postMessage", bad)
    assert (status, json.loads(body)["error"]) == (200, "invalid_json")
    assert fake_slack.last("chat.postMessage").params == {"_raw": "{not json"}

    fake_slack.respond_with("reactions.add", lambda params: {"ok": True, "x": params["missing"]})
    with pytest.raises(SlackApiError) as err:
        client_for(fake_slack).reactions_add(channel="C1", timestamp="1.1", name="eyes")
    assert err.value.response.status_code == 500 and "KeyError" in err.value.response["detail"]
    assert fake_slack.last("reactions.add").status == 500

    status, _, _ = sr.post(fake_slack.root_url + "/elsewhere", bad)
    assert status == 404 and fake_slack.last("/elsewhere").status == 404


def test_response_url_posts_are_recorded(fake_slack: FakeSlack) -> None:
    resp = WebhookClient(fake_slack.response_url("cmd-1")).send(text="working on it", response_type="ephemeral")
    assert resp.status_code == 200
    call = fake_slack.last(RESPONSE_URL_METHOD)
    assert call.path == "/response_url/cmd-1"
    assert call.params == {"text": "working on it", "response_type": "ephemeral"}


# ---------------------------------------------------------------------- fault injection


def test_rate_limit_is_retried_by_the_sdk_handler(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    fake_slack.fail("chat.postMessage", status=429, times=1, retry_after=1)
    resp = client.chat_postMessage(channel="ops-incidents", text="x")
    assert resp["ok"] is True
    calls = fake_slack.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 0.9  # the SDK honoured Retry-After


def test_rate_limit_without_handler_surfaces_retry_after(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client_for(fake_slack).chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"


def test_server_error_raises_without_retry_handler_then_heals(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    fake_slack.fail("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 500
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [500, 200]


def test_slack_error_with_http_200_is_consumed_in_order(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    fake_slack.fail("chat.postMessage", status=200, error="channel_not_found", times=2)
    fake_slack.fail("chat.postMessage", status=200, error="is_archived")
    errors = []
    for _ in range(3):
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C1", text="x")
        assert err.value.response.status_code == 200
        errors.append(err.value.response["error"])
    assert errors == ["channel_not_found", "channel_not_found", "is_archived"]
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    with pytest.raises(ValueError):
        fake_slack.fail("chat.postMessage", status=200)


def test_fail_until_heal_and_wildcard(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    fake_slack.fail("views.open", status=503, times=None)
    for _ in range(3):
        with pytest.raises(SlackApiError):
            client.views_open(trigger_id="t", view={"type": "modal"})
    fake_slack.heal("views.open")
    assert client.views_open(trigger_id="t", view={"type": "modal"})["ok"] is True

    fake_slack.fail("*", status=200, error="invalid_auth", times=None)
    with pytest.raises(SlackApiError):
        client.auth_test()
    with pytest.raises(SlackApiError):
        client.users_info(user="U1")
    fake_slack.heal()
    assert client.auth_test()["ok"] is True


def test_delay_holds_responses_and_trips_client_timeouts(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    fake_slack.delay("chat.postMessage", 0.4)
    started = time.monotonic()
    client.chat_postMessage(channel="C1", text="x")
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 0.4

    fake_slack.delay("*", 3)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        client_for(fake_slack, timeout=1).auth_test()
    # The call is recorded on arrival, so tests can see a request the client then gave up on.
    assert fake_slack.calls("auth.test")[-1].status == 200
    fake_slack.delay("*", 0)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 1


def test_refuse_and_accept_keep_the_url(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack, retry_handlers=[])
    url = fake_slack.url
    fake_slack.refuse()
    with pytest.raises(urllib.error.URLError) as err:
        client.auth_test()
    assert isinstance(err.value.reason, ConnectionRefusedError)
    fake_slack.accept()
    assert fake_slack.url == url
    assert client.auth_test()["ok"] is True


# ---------------------------------------------------------------------- waiting helpers


def _post_later(fake: FakeSlack, delay: float, *texts: str) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        for text in texts:
            client_for(fake).chat_postMessage(channel="C1", text=text)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_for_sees_background_calls(fake_slack: FakeSlack) -> None:
    thread = _post_later(fake_slack, 0.2, "first", "second")
    found = fake_slack.wait_for("chat.postMessage", where=lambda c: c.params["text"] == "second", timeout=5)
    assert [c.params["text"] for c in found] == ["second"]
    assert len(fake_slack.wait_for("chat.postMessage", count=2, timeout=1)) == 2
    thread.join()


def test_wait_for_times_out_with_a_dump(fake_slack: FakeSlack) -> None:
    client_for(fake_slack).auth_test()
    started = time.monotonic()
    with pytest.raises(AssertionError) as err:
        fake_slack.wait_for("chat.postMessage", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert "chat.postMessage" in str(err.value) and "auth.test[200]" in str(err.value)


def test_assert_no_more(fake_slack: FakeSlack) -> None:
    client_for(fake_slack).chat_postMessage(channel="C1", text="once")
    fake_slack.assert_no_more("chat.postMessage", 1, settle=0.2)
    with pytest.raises(AssertionError):
        fake_slack.assert_no_more("chat.postMessage", 2, settle=0.1)

    thread = _post_later(fake_slack, 0.1, "late duplicate")
    started = time.monotonic()
    with pytest.raises(AssertionError, match="exactly 1"):
        fake_slack.assert_no_more("chat.postMessage", 1, settle=3)
    assert time.monotonic() - started < 2  # fails as soon as the extra call lands
    thread.join()
    fake_slack.clear()
    assert fake_slack.calls() == []


# ---------------------------------------------------------------------- signed requests through Bolt


def test_sign_matches_slacks_documented_example() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = sr.sign(body, "8f742231b10e8888abcd99yyyzzz85a5", timestamp=1531420618)
    assert headers == {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    req = sr.slash_command("hi", secret=SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(req.text, req.headers["X-Slack-Request-Timestamp"], req.headers["X-Slack-Signature"])


class Seen:
    """Collects what Bolt listeners were handed, keyed by listener."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {}

    def add(self, key: str, **values: Any) -> None:
        self.items.setdefault(key, []).append(values)

    def one(self, key: str) -> dict[str, Any]:
        got = self.items.get(key, [])
        assert len(got) == 1, f"{key}: expected one listener call, got {len(got)}: {self.items}"
        return got[0]


@pytest.fixture
def bolt(fake_slack: FakeSlack) -> tuple[App, Seen]:
    # Given a client, Bolt ignores token= and uses the client's token, so the client must carry it.
    app = App(
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=fake_slack.url),
        process_before_response=True,
    )
    seen = Seen()

    @app.command("/incident")
    def on_command(ack: Callable[..., None], command: dict[str, Any], say: Any, respond: Any) -> None:
        ack("on it")
        seen.add("command", **command)
        respond("declared")
        say("SEV declared")

    @app.event("message")
    def on_message(event: dict[str, Any], context: Any, request: BoltRequest) -> None:
        retry = request.headers.get("x-slack-retry-num")
        seen.add(event.get("subtype") or "message", event=event, channel_id=context.channel_id, retry=retry)

    @app.event("reaction_added")
    def on_reaction(event: dict[str, Any], context: Any) -> None:
        seen.add("reaction_added", event=event, channel_id=context.channel_id)

    @app.event("app_home_opened")
    def on_home(event: dict[str, Any]) -> None:
        seen.add("app_home_opened", event=event)

    @app.view("cb")
    def on_view(ack: Callable[..., None], view: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        seen.add("view", view=view, user=body["user"]["id"])

    @app.action("a")
    def on_action(ack: Callable[..., None], action: dict[str, Any], body: dict[str, Any], respond: Any) -> None:
        ack()
        seen.add("action", action=action, body=body)
        if "response_url" in body:
            respond("clicked")

    @app.shortcut("sc")
    def on_shortcut(ack: Callable[..., None], shortcut: dict[str, Any], context: Any) -> None:
        ack()
        seen.add(shortcut["type"], shortcut=shortcut, channel_id=context.channel_id)

    return app, seen


def dispatch(app: App, req: sr.SignedRequest) -> BoltResponse:
    return app.dispatch(BoltRequest(body=req.body.decode(), headers=req.headers))


def test_slash_command(bolt: tuple[App, Seen], fake_slack: FakeSlack) -> None:
    app, seen = bolt
    req = sr.slash_command(
        "declare sev1 db down",
        secret=SECRET,
        channel_id="C0INCIDENTS",
        response_url=fake_slack.response_url("c"),
    )
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    resp = dispatch(app, req)
    assert (resp.status, resp.body) == (200, "on it")
    got = seen.one("command")
    assert got["text"] == "declare sev1 db down" and got["command"] == "/incident"
    assert (got["user_id"], got["channel_id"], got["team_id"]) == ("U0ALICE", "C0INCIDENTS", "T0TEAM")
    assert re.fullmatch(r"\d+\.\d+\.[0-9a-f]{32}", got["trigger_id"])
    assert fake_slack.last(RESPONSE_URL_METHOD).params["text"] == "declared"
    posted = fake_slack.last("chat.postMessage")
    assert posted.params["channel"] == "C0INCIDENTS" and posted.params["text"] == "SEV declared"


def test_wrong_secret_or_stale_timestamp_is_rejected(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    assert dispatch(app, sr.slash_command("x", secret="not-the-secret")).status == 401
    stale = int(time.time()) - 10 * 60
    assert dispatch(app, sr.slash_command("x", secret=SECRET, timestamp=stale)).status == 401
    assert seen.items == {}


def test_thread_reply_event_with_retry_headers(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    event = sr.thread_reply("C0INCIDENTS", "1764168000.000100", "1764168100.000200", "U0ALICE", "db is back")
    req = sr.event(event, secret=SECRET, retry_num=1, retry_reason="http_timeout")
    assert req.headers["Content-Type"] == "application/json"
    assert (req.headers["X-Slack-Retry-Num"], req.headers["X-Slack-Retry-Reason"]) == ("1", "http_timeout")
    envelope = req.payload
    assert envelope["type"] == "event_callback" and envelope["event_id"].startswith("Ev")
    assert envelope["event_time"] == 1764168100 and envelope["authorizations"][0]["user_id"] == "U0BOT"

    assert dispatch(app, req).status == 200
    got = seen.one("message")
    assert got["event"]["thread_ts"] == "1764168000.000100" and got["event"]["text"] == "db is back"
    assert got["channel_id"] == "C0INCIDENTS" and got["retry"] == ["1"]
    assert "X-Slack-Retry-Num" not in sr.event(event, secret=SECRET).headers
    assert sr.event(event, secret=SECRET).payload["event_id"] != envelope["event_id"]


def test_message_subtypes_reach_the_listener(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    thread, reply = "1764168000.000100", "1764168100.000200"
    files = [{"id": "F0GRAPH", "name": "latency.png", "mimetype": "image/png"}]
    for event in (
        sr.top_level_message("C0INCIDENTS", "1764168200.000300", "U0BOB", "anyone?"),
        sr.thread_reply("C0INCIDENTS", thread, "1764168150.000250", "U0BOB", "graph", files=files),
        sr.message_changed("C0INCIDENTS", thread, reply, "U0ALICE", "db is back!", "1764168300.000000", "db is back"),
        sr.message_deleted("C0INCIDENTS", thread, reply, "U0ALICE", text="db is back!"),
    ):
        assert dispatch(app, sr.event(event, secret=SECRET)).status == 200

    assert "thread_ts" not in seen.one("message")["event"]
    shared = seen.one("file_share")["event"]
    assert shared["thread_ts"] == thread and shared["files"][0]["id"] == "F0GRAPH"
    assert shared["files"][0]["mimetype"] == "image/png" and shared["files"][0]["permalink"].startswith("https://")
    changed = seen.one("message_changed")
    assert changed["channel_id"] == "C0INCIDENTS" and "thread_ts" not in changed["event"]
    assert changed["event"]["message"]["thread_ts"] == thread and changed["event"]["message"]["ts"] == reply
    assert changed["event"]["message"]["edited"]["ts"] == "1764168300.000000"
    assert changed["event"]["previous_message"]["text"] == "db is back"
    deleted = seen.one("message_deleted")["event"]
    assert deleted["deleted_ts"] == reply and deleted["previous_message"]["thread_ts"] == thread
    assert deleted["ts"] != reply


def test_bolt_ignores_the_bots_own_messages(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    own = sr.bot_message("C0INCIDENTS", "1764168000.000100", "1764168000.000900", text="timeline updated")
    other = sr.bot_message(
        "C0INCIDENTS",
        None,
        "1764168000.000950",
        bot_id="B0PAGER",
        text="alert",
        user=None,
        subtype="bot_message",
    )
    assert dispatch(app, sr.event(own, secret=SECRET)).status == 200
    assert dispatch(app, sr.event(other, secret=SECRET)).status == 200
    # Bolt matched bot_id/user against auth.test's answer, which proves that answer is the right shape.
    assert "message" not in seen.items
    assert seen.one("bot_message")["event"]["bot_id"] == "B0PAGER"


def test_reaction_and_home_events(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    reaction = sr.reaction_added("C0INCIDENTS", "1764168100.000200", "U0ALICE", item_user="U0BOB")
    assert dispatch(app, sr.event(reaction, secret=SECRET)).status == 200
    assert dispatch(app, sr.event(sr.app_home_opened("U0ALICE"), secret=SECRET)).status == 200
    got = seen.one("reaction_added")
    assert got["channel_id"] == "C0INCIDENTS"
    assert got["event"]["item"] == {"type": "message", "channel": "C0INCIDENTS", "ts": "1764168100.000200"}
    assert (got["event"]["reaction"], got["event"]["item_user"]) == ("pushpin", "U0BOB")
    assert "item_user" not in sr.reaction_removed("C1", "1.2", "U1")
    home = seen.one("app_home_opened")["event"]
    assert (home["user"], home["tab"], home["channel"]) == ("U0ALICE", "home", "D0ALICE")


def test_view_submission(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    values = {
        "title": {"title_input": sr.plain("DB down")},
        "sev": {"sev_select": sr.select("sev1", "SEV 1")},
        "lead": {"lead_select": sr.user("U0BOB")},
        "impact": {"customers": sr.number(1200)},
        "started": {"date": sr.date("2025-11-26")},
        "link": {"url": sr.url("https://status.example.com")},
        "where": {"channel": sr.conversation("C0INCIDENTS")},
        "tags": {"tags": sr.multi_select(["db", "eu"])},
        "notify": {"boxes": sr.checkboxes(["exec"])},
        "comms": {"radio": sr.radio("public")},
    }
    req = sr.view_submission("cb", values, secret=SECRET, private_metadata='{"channel":"C0INCIDENTS"}', view_id="V0V1")
    assert dispatch(app, req).status == 200
    got = seen.one("view")
    state = got["view"]["state"]["values"]
    assert state["title"]["title_input"] == {"type": "plain_text_input", "value": "DB down"}
    assert state["sev"]["sev_select"]["selected_option"]["value"] == "sev1"
    assert state["lead"]["lead_select"]["selected_user"] == "U0BOB"
    assert state["impact"]["customers"]["value"] == "1200"
    assert state["started"]["date"]["selected_date"] == "2025-11-26"
    assert state["link"]["url"]["value"] == "https://status.example.com"
    assert state["where"]["channel"]["selected_conversation"] == "C0INCIDENTS"
    assert [o["value"] for o in state["tags"]["tags"]["selected_options"]] == ["db", "eu"]
    assert got["view"]["private_metadata"] == '{"channel":"C0INCIDENTS"}' and got["view"]["id"] == "V0V1"
    assert got["user"] == "U0ALICE"
    assert sr.select(None)["selected_option"] is None
    # A different callback_id does not match; Bolt answers 404 for an unhandled request.
    assert dispatch(app, sr.view_submission("other", {}, secret=SECRET)).status == 404


def test_block_action_from_message_and_from_modal(bolt: tuple[App, Seen], fake_slack: FakeSlack) -> None:
    app, seen = bolt
    req = sr.block_action(
        "a",
        secret=SECRET,
        value="ack",
        channel_id="C0INCIDENTS",
        message_ts="1764168000.000100",
        response_url=fake_slack.response_url("btn"),
    )
    assert dispatch(app, req).status == 200
    assert fake_slack.last(RESPONSE_URL_METHOD).params["text"] == "clicked"

    modal = sr.modal_view("declare", {"title": {"t": sr.plain("draft")}}, view_id="V0MODAL")
    req = sr.block_action("a", secret=SECRET, selected_option="sev2", view=modal)
    assert dispatch(app, req).status == 200

    from_message, from_modal = seen.items["action"]
    action, body = from_message["action"], from_message["body"]
    assert (action["type"], action["value"], action["block_id"]) == ("button", "ack", "b")
    assert body["container"] == {
        "type": "message",
        "message_ts": "1764168000.000100",
        "channel_id": "C0INCIDENTS",
        "is_ephemeral": False,
    }
    assert body["channel"]["id"] == "C0INCIDENTS" and body["message"]["ts"] == "1764168000.000100"
    action, body = from_modal["action"], from_modal["body"]
    assert action["type"] == "static_select" and action["selected_option"]["value"] == "sev2"
    assert body["container"] == {"type": "view", "view_id": "V0MODAL"}
    assert body["view"]["state"]["values"]["title"]["t"]["value"] == "draft"
    assert "channel" not in body and "response_url" not in body


def test_shortcuts(bolt: tuple[App, Seen]) -> None:
    app, seen = bolt
    message = sr.thread_reply("C0INCIDENTS", "1764168000.000100", "1764168100.000200", "U0BOB", "root cause?")
    req = sr.message_shortcut("sc", secret=SECRET, message=message, channel_id="C0INCIDENTS", user_id="U0ALICE")
    assert dispatch(app, req).status == 200
    assert dispatch(app, sr.global_shortcut("sc", secret=SECRET)).status == 200

    got = seen.one("message_action")
    shortcut = got["shortcut"]
    assert got["channel_id"] == "C0INCIDENTS"
    assert shortcut["message_ts"] == "1764168100.000200" and shortcut["message"]["text"] == "root cause?"
    assert shortcut["message"]["thread_ts"] == "1764168000.000100" and "channel" not in shortcut["message"]
    assert shortcut["user"]["id"] == "U0ALICE" and shortcut["response_url"].startswith("http://127.0.0.1:9/app/")
    # Slack escapes "/" in interactive payload JSON; Bolt must still decode it.
    assert "http%3A%5C%2F%5C%2F127.0.0.1" in req.text
    glob = seen.one("shortcut")
    assert glob["channel_id"] is None and "response_url" not in glob["shortcut"]


def test_url_verification(bolt: tuple[App, Seen]) -> None:
    app, _ = bolt
    resp = dispatch(app, sr.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", secret=SECRET))
    assert resp.status == 200
    assert json.loads(resp.body) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@contextmanager
def serve_bolt(app: App) -> Iterator[str]:
    """Bolt behind a real HTTP listener, the way Slack reaches a deployed bot."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            resp = app.dispatch(BoltRequest(body=body, headers=dict(self.headers.items())))
            payload = resp.body.encode("utf-8")
            self.send_response(resp.status)
            for name, values in resp.headers.items():
                for value in values:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    finally:
        server.shutdown()
        server.server_close()


def test_post_over_http_returns_statuses_without_raising(bolt: tuple[App, Seen], fake_slack: FakeSlack) -> None:
    app, seen = bolt
    with serve_bolt(app) as url:
        command = sr.slash_command("status", secret=SECRET, response_url=fake_slack.response_url("http"))
        status, body, headers = sr.post(url, command)
        assert (status, body) == (200, b"on it")
        assert headers["content-type"].startswith("text/plain")
        status, _, _ = sr.post(url, sr.slash_command("status", secret="wrong"))
        assert status == 401
    assert seen.one("command")["text"] == "status"

    fake_slack.fail(RESPONSE_URL_METHOD, status=404, error="expired_url")
    status, body, _ = sr.post(fake_slack.response_url("old"), sr.slash_command("x", secret=SECRET))
    assert status == 404 and json.loads(body)["error"] == "expired_url"


def test_calls_are_recorded_thread_safely(fake_slack: FakeSlack) -> None:
    minted: list[str] = []

    def burst(n: int) -> None:
        client = client_for(fake_slack)
        for i in range(10):
            minted.append(client.chat_postMessage(channel="C1", text=f"{n}-{i}")["ts"])

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls: list[Call] = fake_slack.wait_for("chat.postMessage", count=50, timeout=5)
    assert len({c.params["text"] for c in calls}) == 50
    assert len({json.loads(c.raw)["text"] for c in calls}) == 50
    assert len(set(minted)) == 50
