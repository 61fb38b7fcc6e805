"""Builders of signed requests shaped exactly like Slack's slash commands, interactions and events."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

if TYPE_CHECKING:
    from slack_bolt import BoltRequest

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_APP_ID",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_TEAM_ID",
    "DEFAULT_USER_ID",
    "UNSET_RESPONSE_URL_BASE",
    "SignedRequest",
    "app_home_opened",
    "block_action",
    "bot_message",
    "checkboxes",
    "conversation",
    "date",
    "event",
    "file_info",
    "global_shortcut",
    "message_changed",
    "message_deleted",
    "message_shortcut",
    "modal_view",
    "multi_select",
    "new_trigger_id",
    "new_ts",
    "number",
    "plain",
    "post",
    "radio",
    "reaction_added",
    "reaction_removed",
    "select",
    "sign",
    "slash_command",
    "thread_reply",
    "top_level_message",
    "url",
    "url_verification",
    "user",
    "view_submission",
]

DEFAULT_TEAM_ID = "T0TEAM"
DEFAULT_TEAM_DOMAIN = "incident-test"
DEFAULT_APP_ID = "A0APP"
DEFAULT_USER_ID = "U0ALICE"
DEFAULT_CHANNEL_ID = "C0GENERAL"
DEFAULT_CHANNEL_NAME = "general"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
# Slack still sends the deprecated verification token in every payload; Bolt ignores it.
VERIFICATION_TOKEN = "vErIfIcAtIoNtOkEn"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
#: Default response_url host when none is given; nothing listens there (port 9 is "discard").
UNSET_RESPONSE_URL_BASE = "http://127.0.0.1:9"

_ts_lock = threading.Lock()
_last_ts_micros = 0
_trigger_counter = itertools.count(1)
_view_counter = itertools.count(1)


# ---------------------------------------------------------------------- signing and transport


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature headers for `body`."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class SignedRequest:
    """A body plus the headers Slack would send with it, signature included."""

    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def payload(self) -> dict[str, Any]:
        """The body as the app sees it after parsing: JSON, the form's `payload` JSON, or the form fields."""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            decoded: dict[str, Any] = json.loads(self.body)
            return decoded
        form = {k: v[0] for k, v in parse_qs(self.text, keep_blank_values=True).items()}
        if "payload" in form:
            interactive: dict[str, Any] = json.loads(form["payload"])
            return interactive
        return form

    def to_bolt(self) -> BoltRequest:
        from slack_bolt import BoltRequest

        return BoltRequest(body=self.text, headers=dict(self.headers))


def post(url: str, request: SignedRequest, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
    """POST `request` to `url`; HTTP error statuses are returned, not raised. Header names are lower-cased."""
    req = urllib.request.Request(url, data=request.body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}


def _json_bytes(obj: Any) -> bytes:
    # Slack emits compact JSON with "/" escaped as "\/"; reproducing it exposes code that greps raw bodies.
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/").encode("utf-8")


def _signed(
    body: bytes, content_type: str, secret: str, timestamp: int | None, extra: Mapping[str, str] | None = None
) -> SignedRequest:
    headers = {"Content-Type": content_type, "User-Agent": SLACK_USER_AGENT, **sign(body, secret, timestamp)}
    return SignedRequest(body=body, headers={**headers, **(extra or {})})


def _form(fields: Mapping[str, str], secret: str, timestamp: int | None) -> SignedRequest:
    return _signed(urlencode(fields).encode("ascii"), "application/x-www-form-urlencoded", secret, timestamp)


def _interactive(payload: Mapping[str, Any], secret: str, timestamp: int | None) -> SignedRequest:
    # Interactivity arrives as a form with a single JSON-valued `payload` field, not as a JSON body.
    return _form({"payload": _json_bytes(payload).decode("utf-8")}, secret, timestamp)


# ---------------------------------------------------------------------- ids and shared fragments


def new_ts() -> str:
    """A fresh message ts from the wall clock, strictly increasing within this process."""
    global _last_ts_micros
    with _ts_lock:
        _last_ts_micros = max(_last_ts_micros + 1, int(time.time() * 1_000_000))
        return f"{_last_ts_micros // 1_000_000}.{_last_ts_micros % 1_000_000:06d}"


def new_trigger_id() -> str:
    """A unique trigger_id in Slack's `<number>.<number>.<hex>` shape."""
    return f"{next(_trigger_counter)}.{int(time.time())}.{uuid.uuid4().hex}"


def _username(user_id: str) -> str:
    return user_id.lower().removeprefix("u0") or user_id.lower()


def _user_obj(user_id: str, team_id: str) -> dict[str, Any]:
    name = _username(user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team_obj(team_id: str) -> dict[str, Any]:
    return {"id": team_id, "domain": DEFAULT_TEAM_DOMAIN}


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def _rich_text(text: str) -> list[dict[str, Any]]:
    elements = [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5], "elements": elements}]


def _response_url(kind: str, team_id: str) -> str:
    # Slack's path shape, but on a closed loopback port: a test that forgot to pass fake.response_url()
    # gets a fast connection error instead of reaching hooks.slack.com.
    return f"{UNSET_RESPONSE_URL_BASE}/{kind}/{team_id}/{next(_trigger_counter)}/{uuid.uuid4().hex[:24]}"


# ---------------------------------------------------------------------- slash commands and interactivity


def slash_command(
    text: str,
    *,
    secret: str,
    command: str = "/incident",
    user_id: str = DEFAULT_USER_ID,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    team_id: str = DEFAULT_TEAM_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
    timestamp: int | None = None,
) -> SignedRequest:
    """A slash command invocation; the body is a flat form, unlike every other interaction."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": DEFAULT_TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": _username(user_id),
        "command": command,
        "text": text,
        "api_app_id": DEFAULT_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url or _response_url("commands", team_id),
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return _form(fields, secret, timestamp)


def modal_view(
    callback_id: str,
    state_values: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    view_id: str | None = None,
    private_metadata: str = "",
    external_id: str = "",
    title: str = "Incident",
    blocks: Sequence[Mapping[str, Any]] | None = None,
    team_id: str = DEFAULT_TEAM_ID,
) -> dict[str, Any]:
    """The `view` object Slack embeds in view_submission and modal block_actions payloads."""
    view_id = view_id or f"V0SUB{next(_view_counter):04d}"
    return {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": [dict(b) for b in blocks or []],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": {k: dict(v) for k, v in (state_values or {}).items()}},
        "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
        "title": {"type": "plain_text", "text": title, "emoji": True},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
        "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": DEFAULT_APP_ID,
        "external_id": external_id,
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }


def block_action(
    action_id: str,
    *,
    secret: str,
    value: str | None = None,
    selected_option: str | Mapping[str, Any] | None = None,
    block_id: str = "b",
    action_type: str | None = None,
    action: Mapping[str, Any] | None = None,
    user_id: str = DEFAULT_USER_ID,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    message_ts: str | None = None,
    message: Mapping[str, Any] | None = None,
    container: Mapping[str, Any] | None = None,
    view: Mapping[str, Any] | None = None,
    state_values: Mapping[str, Mapping[str, Any]] | None = None,
    trigger_id: str | None = None,
    response_url: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    timestamp: int | None = None,
) -> SignedRequest:
    """A block_actions payload: from a message by default, or from a modal when `view` is given.

    `action` adds or overrides element fields:
    e.g. action_type="users_select", action={"selected_user": "U1"}.
    """
    element: dict[str, Any] = {"action_id": action_id, "block_id": block_id}
    if selected_option is not None:
        option = (
            {"text": {"type": "plain_text", "text": selected_option, "emoji": True}, "value": selected_option}
            if isinstance(selected_option, str)
            else dict(selected_option)
        )
        element.update(type=action_type or "static_select", selected_option=option)
    else:
        element.update(
            type=action_type or "button",
            text={"type": "plain_text", "text": value or action_id, "emoji": True},
        )
        if value is not None:
            element["value"] = value
    element["action_ts"] = new_ts()
    element.update(action or {})

    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user_obj(user_id, team_id),
        "api_app_id": DEFAULT_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": _team_obj(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        # Actions inside a modal carry the view (with its state) and no channel, message or response_url.
        full_view = dict(view)
        full_view.setdefault("state", {"values": dict(state_values or {})})
        payload["container"] = dict(container or {"type": "view", "view_id": full_view.get("id")})
        payload["view"] = full_view
    else:
        ts = message_ts or (message or {}).get("ts") or new_ts()
        payload["container"] = dict(
            container or {"type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": False}
        )
        payload["channel"] = {"id": channel_id, "name": channel_name}
        payload["message"] = dict(
            message
            or {
                "user": BOT_USER_ID,
                "type": "message",
                "ts": ts,
                "bot_id": BOT_ID,
                "app_id": DEFAULT_APP_ID,
                "text": "",
                "team": team_id,
                "blocks": [],
            }
        )
        payload["state"] = {"values": dict(state_values or {})}
        payload["response_url"] = response_url or _response_url("actions", team_id)
    payload["actions"] = [element]
    return _interactive(payload, secret, timestamp)


def view_submission(
    callback_id: str,
    state_values: Mapping[str, Mapping[str, Any]],
    *,
    secret: str,
    private_metadata: str = "",
    user_id: str = DEFAULT_USER_ID,
    team_id: str = DEFAULT_TEAM_ID,
    view_id: str | None = None,
    external_id: str = "",
    title: str = "Incident",
    blocks: Sequence[Mapping[str, Any]] | None = None,
    trigger_id: str | None = None,
    response_urls: Sequence[Mapping[str, Any]] = (),
    timestamp: int | None = None,
) -> SignedRequest:
    """A modal submission; `state_values` is `view.state.values`: {block_id: {action_id: plain(...)}}."""
    view = modal_view(
        callback_id,
        state_values,
        view_id=view_id,
        private_metadata=private_metadata,
        external_id=external_id,
        title=title,
        blocks=blocks,
        team_id=team_id,
    )
    payload = {
        "type": "view_submission",
        "team": _team_obj(team_id),
        "user": _user_obj(user_id, team_id),
        "api_app_id": DEFAULT_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": view,
        "response_urls": [dict(r) for r in response_urls],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _interactive(payload, secret, timestamp)


def message_shortcut(
    callback_id: str,
    *,
    secret: str,
    message: Mapping[str, Any],
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    user_id: str = DEFAULT_USER_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    timestamp: int | None = None,
) -> SignedRequest:
    """A message shortcut (type message_action) on `message`, e.g. an event dict from `thread_reply()`."""
    msg = dict(message)
    # The message object in a shortcut has no channel; Slack moves it to the top-level `channel`.
    msg.pop("channel", None)
    msg.pop("event_ts", None)
    msg.pop("channel_type", None)
    payload = {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": new_ts(),
        "team": _team_obj(team_id),
        "user": _user_obj(user_id, team_id),
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id or new_trigger_id(),
        "response_url": response_url or _response_url("app", team_id),
        "message_ts": msg.get("ts"),
        "message": msg,
    }
    return _interactive(payload, secret, timestamp)


def global_shortcut(
    callback_id: str,
    *,
    secret: str,
    user_id: str = DEFAULT_USER_ID,
    trigger_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    timestamp: int | None = None,
) -> SignedRequest:
    """A global shortcut (type shortcut): no channel, no message and no response_url."""
    payload = {
        "type": "shortcut",
        "token": VERIFICATION_TOKEN,
        "action_ts": new_ts(),
        "team": _team_obj(team_id),
        "user": _user_obj(user_id, team_id),
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return _interactive(payload, secret, timestamp)


# ---------------------------------------------------------------------- Events API


def event(
    event: Mapping[str, Any],
    *,
    secret: str,
    event_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    event_time: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | None = None,
) -> SignedRequest:
    """An Events API event_callback wrapping `event`; retries carry X-Slack-Retry-Num/-Reason headers."""
    if event_time is None:
        event_ts = event.get("event_ts")
        event_time = int(float(event_ts)) if event_ts else int(time.time())
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": DEFAULT_APP_ID,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }
    retry_headers: dict[str, str] = {}
    if retry_num is not None:
        retry_headers["X-Slack-Retry-Num"] = str(retry_num)
    if retry_reason is not None:
        retry_headers["X-Slack-Retry-Reason"] = retry_reason
    return _signed(_json_bytes(envelope), "application/json", secret, timestamp, retry_headers)


def url_verification(challenge: str, *, secret: str, timestamp: int | None = None) -> SignedRequest:
    """The handshake Slack sends when the Events API request URL is saved."""
    body = _json_bytes({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})
    return _signed(body, "application/json", secret, timestamp)


def file_info(
    file_id: str,
    name: str,
    *,
    user: str = DEFAULT_USER_ID,
    mimetype: str = "application/octet-stream",
    size: int = 1024,
    title: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
) -> dict[str, Any]:
    """A file object as it appears in a file_share message's `files`."""
    now = int(time.time())
    filetype = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
    return {
        "id": file_id,
        "created": now,
        "timestamp": now,
        "name": name,
        "title": title or name,
        "mimetype": mimetype,
        "filetype": filetype,
        "pretty_type": filetype.upper(),
        "user": user,
        "user_team": team_id,
        "editable": False,
        "size": size,
        "mode": "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": True,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "url_private": f"https://files.slack.com/files-pri/{team_id}-{file_id}/{name}",
        "url_private_download": f"https://files.slack.com/files-pri/{team_id}-{file_id}/download/{name}",
        "permalink": f"https://{DEFAULT_TEAM_DOMAIN}.slack.com/files/{user}/{file_id}/{name}",
        "permalink_public": f"https://slack-files.com/{team_id}-{file_id}-{uuid.uuid4().hex[:10]}",
        "has_rich_preview": False,
        "file_access": "visible",
    }


def _user_message(channel: str, ts: str, user: str, text: str, team_id: str) -> dict[str, Any]:
    return {
        "user": user,
        "type": "message",
        "ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "team": team_id,
        "blocks": _rich_text(text),
        "channel": channel,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
    }


def top_level_message(channel: str, ts: str, user: str, text: str, *, team_id: str = DEFAULT_TEAM_ID) -> dict[str, Any]:
    """A plain channel message event (no thread_ts)."""
    return _user_message(channel, ts, user, text, team_id)


def thread_reply(
    channel: str,
    thread_ts: str,
    ts: str,
    user: str,
    text: str,
    files: Sequence[Mapping[str, Any]] | None = None,
    *,
    parent_user_id: str = BOT_USER_ID,
    team_id: str = DEFAULT_TEAM_ID,
) -> dict[str, Any]:
    """A reply in a thread; with `files` (partial dicts are completed) it is a file_share message."""
    message = _user_message(channel, ts, user, text, team_id)
    message["thread_ts"] = thread_ts
    message["parent_user_id"] = parent_user_id
    if files:
        completed = []
        for f in files:
            file_id, name = str(f.get("id", f"F{uuid.uuid4().hex[:9].upper()}")), str(f.get("name", "file"))
            completed.append({**file_info(file_id, name, user=user, team_id=team_id), **f})
        message.update(subtype="file_share", files=completed, upload=False, display_as_bot=False)
        if not text:
            # A file posted without a comment has no text blocks at all.
            message.pop("blocks")
    return message


def bot_message(
    channel: str,
    thread_ts: str | None,
    ts: str,
    bot_id: str = BOT_ID,
    text: str = "",
    *,
    user: str | None = BOT_USER_ID,
    subtype: str | None = None,
    app_id: str = DEFAULT_APP_ID,
    team_id: str = DEFAULT_TEAM_ID,
) -> dict[str, Any]:
    """A message posted by an app via chat.postMessage (Bolt ignores it when bot_id/user is this app's).

    Apps using a bot token produce no subtype and carry both `bot_id` and the bot's `user`; for a legacy
    integration or incoming webhook pass subtype="bot_message", user=None.
    """
    message: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "bot_id": bot_id,
        "app_id": app_id,
        "team": team_id,
        "bot_profile": {
            "id": bot_id,
            "app_id": app_id,
            "name": "incident-bot",
            "deleted": False,
            "team_id": team_id,
        },
        "channel": channel,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
    }
    if subtype is not None:
        message["subtype"] = subtype
        message.pop("bot_profile")
        message["username"] = "incident-bot"
    if user is not None:
        message["user"] = user
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
        # Incident threads are started by the bot, so it is the usual parent.
        message["parent_user_id"] = BOT_USER_ID
    return message


def message_changed(
    channel: str,
    thread_ts: str | None,
    ts: str,
    user: str,
    new_text: str,
    edited_ts: str,
    old_text: str = "",
    *,
    event_ts: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
) -> dict[str, Any]:
    """An edit of message `ts`; thread_ts is only inside `message`/`previous_message`, not on the event."""

    def version(text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "team": team_id,
            "blocks": _rich_text(text),
        }
        if thread_ts is not None and thread_ts != ts:
            body["thread_ts"] = thread_ts
            body["parent_user_id"] = BOT_USER_ID
        return body

    new = version(new_text)
    new["edited"] = {"user": user, "ts": edited_ts}
    outer_ts = event_ts or edited_ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": new,
        "previous_message": version(old_text),
        "channel": channel,
        "hidden": True,
        "ts": outer_ts,
        "event_ts": outer_ts,
        "channel_type": _channel_type(channel),
    }


def message_deleted(
    channel: str,
    thread_ts: str | None,
    ts: str,
    user: str,
    *,
    text: str = "",
    event_ts: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
) -> dict[str, Any]:
    """A deletion of message `ts`, reported as `deleted_ts`; the event's own ts is a new one."""
    previous: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, "team": team_id}
    if thread_ts is not None and thread_ts != ts:
        previous["thread_ts"] = thread_ts
        previous["parent_user_id"] = BOT_USER_ID
    outer_ts = event_ts or new_ts()
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "deleted_ts": ts,
        "event_ts": outer_ts,
        "ts": outer_ts,
        "channel_type": _channel_type(channel),
    }


def _reaction(
    kind: str, channel: str, ts: str, user: str, reaction: str, item_user: str | None, event_ts: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": kind,
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": event_ts or new_ts(),
    }
    if item_user is not None:
        payload["item_user"] = item_user
    return payload


def reaction_added(
    channel: str,
    ts: str,
    user: str,
    reaction: str = "pushpin",
    item_user: str | None = None,
    *,
    event_ts: str | None = None,
) -> dict[str, Any]:
    """`user` reacted to message `ts`; the channel is only inside `item`."""
    return _reaction("reaction_added", channel, ts, user, reaction, item_user, event_ts)


def reaction_removed(
    channel: str,
    ts: str,
    user: str,
    reaction: str = "pushpin",
    item_user: str | None = None,
    *,
    event_ts: str | None = None,
) -> dict[str, Any]:
    return _reaction("reaction_removed", channel, ts, user, reaction, item_user, event_ts)


def app_home_opened(
    user: str, *, channel: str | None = None, tab: str = "home", view: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The user opened the app's Home tab; `view` is present only once a Home view was published."""
    payload: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel or "D" + user[1:],
        "tab": tab,
        "event_ts": new_ts(),
    }
    if view is not None:
        payload["view"] = dict(view)
    return payload


# ---------------------------------------------------------------------- view.state.values helpers


def plain(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def select(value: str | None, text: str | None = None) -> dict[str, Any]:
    """A static_select; an unselected menu has `selected_option: null`."""
    if value is None:
        return {"type": "static_select", "selected_option": None}
    label = {"type": "plain_text", "text": text or value, "emoji": True}
    return {"type": "static_select", "selected_option": {"text": label, "value": value}}


def multi_select(values: Sequence[str]) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": v, "emoji": True}, "value": v} for v in values]
    return {"type": "multi_static_select", "selected_options": options}


def user(uid: str | None) -> dict[str, Any]:
    return {"type": "users_select", "selected_user": uid}


def conversation(cid: str | None) -> dict[str, Any]:
    return {"type": "conversations_select", "selected_conversation": cid}


def number(value: float | str | None) -> dict[str, Any]:
    # number_input values arrive as strings, exactly as typed.
    return {"type": "number_input", "value": None if value is None else str(value)}


def date(value: str | None) -> dict[str, Any]:
    """A datepicker; `value` is "YYYY-MM-DD"."""
    return {"type": "datepicker", "selected_date": value}


def url(value: str | None) -> dict[str, Any]:
    return {"type": "url_text_input", "value": value}


def checkboxes(values: Sequence[str]) -> dict[str, Any]:
    options = [{"text": {"type": "mrkdwn", "text": v, "verbatim": False}, "value": v} for v in values]
    return {"type": "checkboxes", "selected_options": options}


def radio(value: str | None) -> dict[str, Any]:
    if value is None:
        return {"type": "radio_buttons", "selected_option": None}
    label = {"type": "plain_text", "text": value, "emoji": True}
    return {"type": "radio_buttons", "selected_option": {"text": label, "value": value}}
