"""manifest.yml is a valid Slack app manifest that asks for exactly what the code uses.

- It validates against Slack's own manifest JSON schema.
- Its scopes and event subscriptions are bot.ids.BOT_SCOPES / BOT_EVENTS, its slash command is
  bot.ids.COMMAND and its message shortcut's callback_id is Callback.DECLARE_SHORTCUT.
- The real app (create_app) answers every request the manifest makes Slack send (no 404, which is
  Bolt's answer to a request no listener matches), and every event the code listens for is subscribed.
- The scopes are derived from the Web API methods called in bot/ and from the subscriptions.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jsonschema
import pytest
import yaml
from slack_bolt import App, BoltRequest

from bot.ids import BOT_EVENTS, BOT_SCOPES, COMMAND, Callback

ROOT = Path(__file__).resolve().parents[2]
BOT_DIR = ROOT / "bot"
MANIFEST = ROOT / "manifest.yml"
# CI copies shared/ beside the repository; tests/data holds copies for when it does not.
SHARED_SLACK = Path(__file__).resolve().parents[2].parent / "shared/slack"
VENDORED = Path(__file__).resolve().parents[1] / "data"
SCHEMAS = ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json")
HOME_LISTENER = BOT_DIR / "listeners" / "home.py"

SECRET = "s"
TEAM = "T0TEAM"
USER = "U0ALICE"


# ---------------------------------------------------------------------- loading


def load_manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "manifest.yml must be a YAML mapping"
    return data


def schema_path(name: str) -> Path:
    shared = SHARED_SLACK / name
    return shared if shared.is_file() else VENDORED / name


def schema_for(manifest: dict[str, Any]) -> dict[str, Any]:
    # The shared README: 1.0.0 when _metadata.major_version is 1, else 2.0.0.
    major = (manifest.get("_metadata") or {}).get("major_version", 1)
    schema: dict[str, Any] = json.loads(schema_path(SCHEMAS[0] if major == 1 else SCHEMAS[1]).read_text("utf-8"))
    return schema


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    schema = schema_for(manifest)
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(manifest)]


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_manifest()


def bot_scopes(manifest: dict[str, Any]) -> list[str]:
    scopes: list[str] = manifest["oauth_config"]["scopes"]["bot"]
    return scopes


def bot_events(manifest: dict[str, Any]) -> list[str]:
    events: list[str] = manifest["settings"]["event_subscriptions"]["bot_events"]
    return events


# ---------------------------------------------------------------------- schema and fields


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"] == {"major_version": 1, "minor_version": 1}
    assert schema_errors(manifest) == []
    # The schema spells this pattern as "regex", which validators ignore: check it here.
    assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", manifest["display_information"]["background_color"])


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("features", "shortcuts", 0, "name"), "Declare an incident from here"),  # longer than 24
        (("features", "slash_commands", 0, "command"), "incident"),  # no leading slash
        (("settings", "interactivity", "request_url"), "example.com/slack/events"),  # not http(s)
        (("oauth_config", "scopes", "bots"), ["chat:write"]),  # unknown key
    ],
)
def test_schema_validation_rejects_a_broken_manifest(path: tuple[Any, ...], bad: Any) -> None:
    broken = load_manifest()
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    assert schema_errors(broken), f"a manifest with {'/'.join(map(str, path))}={bad!r} passed validation"


def test_vendored_schemas_match_the_shared_ones() -> None:
    for name in SCHEMAS:
        vendored = VENDORED / name
        assert vendored.is_file(), f"tests/data/{name} is missing"
        json.loads(vendored.read_text("utf-8"))
        shared = SHARED_SLACK / name
        if shared.is_file():
            assert vendored.read_bytes() == shared.read_bytes(), f"tests/data/{name} differs from {shared}"
    assert "MIT" in (VENDORED / "README.md").read_text("utf-8")


def test_scopes_and_events_are_the_ids_constants(manifest: dict[str, Any]) -> None:
    scopes, events = bot_scopes(manifest), bot_events(manifest)
    assert len(scopes) == len(set(scopes)), f"duplicate scopes: {scopes}"
    assert set(scopes) == set(BOT_SCOPES)
    assert len(events) == len(set(events)), f"duplicate events: {events}"
    assert set(events) == set(BOT_EVENTS)
    assert all(reason.strip() for reason in BOT_SCOPES.values())
    # Only bot-token scopes and bot events: the app acts as its bot user only.
    assert set(manifest["oauth_config"]["scopes"]) == {"bot"}
    assert "user_events" not in manifest["settings"]["event_subscriptions"]


def test_slash_command_is_the_one_the_app_registers(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [COMMAND]
    (command,) = commands
    assert command["usage_hint"] == "[help | list | status INC-… | oncall [cover] | <title>]"
    assert command["should_escape"] is False
    assert command["description"].strip()


def test_message_shortcut_is_the_one_the_app_registers(manifest: dict[str, Any]) -> None:
    shortcuts = manifest["features"]["shortcuts"]
    assert [(s["type"], s["name"], s["callback_id"]) for s in shortcuts] == [
        ("message", "Declare incident", Callback.DECLARE_SHORTCUT.value)
    ]


def test_bot_user_app_home_and_settings(manifest: dict[str, Any]) -> None:
    display = manifest["display_information"]
    assert display["name"] == "Incident Bot"
    assert display["description"].strip()
    features = manifest["features"]
    assert features["bot_user"] == {"display_name": "incident-bot", "always_online": True}
    assert features["app_home"]["home_tab_enabled"] is True  # the App Home is part of the product
    # On-call pages arrive as DMs from the bot; nobody writes to it there.
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is True
    assert "app_home_opened" in bot_events(manifest)
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    # One Request URL for commands, interactivity and events, on Bolt's default path (CONTRACT.md).
    urls = {
        features["slash_commands"][0]["url"],
        settings["interactivity"]["request_url"],
        settings["event_subscriptions"]["request_url"],
    }
    assert len(urls) == 1
    parts = urlsplit(urls.pop())
    assert (parts.scheme, parts.path) == ("https", "/slack/events")


def test_manifest_explains_every_scope_and_socket_mode() -> None:
    lines = MANIFEST.read_text("utf-8").splitlines()
    for scope in BOT_SCOPES:
        at = next(i for i, line in enumerate(lines) if line.strip() == f"- {scope}")
        assert lines[at - 1].strip().startswith("#"), f"no comment saying why {scope} is requested"
    assert any("socket_mode_enabled" in line and "#" in line for line in lines)


# ---------------------------------------------------------------------- the real app answers


def _headers(body: str, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def _form(fields: dict[str, str]) -> BoltRequest:
    body = urlencode(fields)
    return BoltRequest(body=body, headers=_headers(body, "application/x-www-form-urlencoded"))


def _ts() -> str:
    return f"{time.time():.6f}"


def slash_command(command: str, text: str = "") -> BoltRequest:
    return _form(
        {
            "team_id": TEAM,
            "team_domain": "incident-test",
            "channel_id": "C0GENERAL",
            "channel_name": "general",
            "user_id": USER,
            "user_name": "alice",
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "is_enterprise_install": "false",
            # Unreachable, like the Web API: respond() after the ack must not reach the real Slack.
            "response_url": f"http://127.0.0.1:9/commands/{TEAM}/1/x",
            "trigger_id": f"1.{int(time.time())}.{uuid.uuid4().hex}",
        }
    )


def message_shortcut(callback_id: str) -> BoltRequest:
    ts = _ts()
    payload = {
        "type": "message_action",
        "callback_id": callback_id,
        "action_ts": ts,
        "team": {"id": TEAM, "domain": "incident-test"},
        "user": {"id": USER, "username": "alice", "team_id": TEAM},
        "channel": {"id": "C0GENERAL", "name": "general"},
        "is_enterprise_install": False,
        "trigger_id": f"1.{int(time.time())}.{uuid.uuid4().hex}",
        "response_url": f"http://127.0.0.1:9/app/{TEAM}/1/x",
        "message_ts": ts,
        "message": {"type": "message", "user": USER, "text": "checkout is returning 500s", "ts": ts},
    }
    return _form({"payload": json.dumps(payload)})


def event(inner: dict[str, Any]) -> BoltRequest:
    envelope = {
        "team_id": TEAM,
        "api_app_id": "A0APP",
        "event": inner,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": "U0BOT", "is_bot": True, "is_enterprise_install": False}],
    }
    body = json.dumps(envelope)
    return BoltRequest(body=body, headers=_headers(body, "application/json"))


def _thread_reply(channel: str, channel_type: str) -> dict[str, Any]:
    parent, ts = "1700000000.000100", _ts()
    return {
        "type": "message",
        "user": USER,
        "text": "rolled back the deploy",
        "ts": ts,
        "thread_ts": parent,
        "parent_user_id": "U0BOT",
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }


def _reaction(kind: str) -> dict[str, Any]:
    item = {"type": "message", "channel": "C0INCIDENTS", "ts": "1700000000.000200"}
    return {"type": kind, "user": USER, "reaction": "pushpin", "item": item, "event_ts": _ts()}


# The event each subscription makes Slack send. A subscription missing here fails the test below.
SUBSCRIPTION_EVENTS: dict[str, Any] = {
    "message.channels": lambda: _thread_reply("C0INCIDENTS", "channel"),
    "message.groups": lambda: _thread_reply("G0PRIVATE", "group"),
    "reaction_added": lambda: _reaction("reaction_added"),
    "reaction_removed": lambda: _reaction("reaction_removed"),
    "app_home_opened": lambda: {
        "type": "app_home_opened",
        "user": USER,
        "channel": "D0ALICE",
        "tab": "home",
        "event_ts": _ts(),
    },
}

# Bot events the app must NOT handle: they are not subscribed, so a listener for one would be dead code
# (and a sign the manifest is missing a subscription).
UNSUBSCRIBED_EVENTS: dict[str, dict[str, Any]] = {
    "member_joined_channel": {
        "type": "member_joined_channel",
        "user": USER,
        "channel": "C0INCIDENTS",
        "channel_type": "C",
        "team": TEAM,
        "event_ts": "1700000000.000300",
    },
    "app_mention": {
        "type": "app_mention",
        "user": USER,
        "text": "<@U0BOT> help",
        "ts": "1700000000.000400",
        "channel": "C0INCIDENTS",
        "event_ts": "1700000000.000400",
    },
    "channel_created": {
        "type": "channel_created",
        "channel": {"id": "C0NEW", "name": "new", "created": 1, "creator": USER},
        "event_ts": "1700000000.000500",
    },
    "pin_added": {
        "type": "pin_added",
        "user": USER,
        "channel_id": "C0INCIDENTS",
        "item": {"type": "message", "channel": "C0INCIDENTS"},
        "event_ts": "1700000000.000600",
    },
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from slack_sdk import WebClient

    from bot.settings import Settings
    from bot.slack.app import create_app
    from bot.slack.context import Runtime
    from storage import db

    tmp_path = tmp_path_factory.mktemp("manifest")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("CONFIG_FILE", raising=False)  # this test's settings are the ones below
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token="xoxb-x",
            slack_signing_secret=SECRET,
            slack_app_token=None,  # HTTP mode whatever the environment says: requests are signature-checked
            database_url=f"sqlite:///{tmp_path}/m.db",
        )
    assert not settings.socket_mode
    engine = db.create_db_engine(settings.database_url)
    db.upgrade(engine)
    # An unreachable Web API: listeners that call it after the ack log an error, which is fine here.
    rt = Runtime.build(settings, engine, client=WebClient(token="xoxb-x", base_url="http://127.0.0.1:9/"))
    bolt = create_app(rt)
    yield bolt
    bolt.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
    engine.dispose()


def test_every_subscription_has_a_test_payload(manifest: dict[str, Any]) -> None:
    assert set(bot_events(manifest)) <= set(SUBSCRIPTION_EVENTS), "add a payload for the new subscription"
    assert not set(UNSUBSCRIBED_EVENTS) & set(bot_events(manifest))


@pytest.mark.parametrize("subscription", BOT_EVENTS)
def test_app_answers_every_subscribed_event(app: App, manifest: dict[str, Any], subscription: str) -> None:
    assert subscription in bot_events(manifest)
    response = app.dispatch(event(SUBSCRIPTION_EVENTS[subscription]()))
    if response.status == 404 and subscription == "app_home_opened" and not HOME_LISTENER.exists():
        pytest.xfail("App Home listener not written yet")
    assert response.status != 404, f"no listener for {subscription} (subscribed in manifest.yml)"
    assert response.status == 200, response.body


def test_app_answers_the_slash_command(app: App, manifest: dict[str, Any]) -> None:
    for text in ("help", "", "list"):
        response = app.dispatch(slash_command(manifest["features"]["slash_commands"][0]["command"], text))
        assert response.status == 200, (text, response.status, response.body)


def test_app_answers_the_message_shortcut(app: App, manifest: dict[str, Any]) -> None:
    (shortcut,) = manifest["features"]["shortcuts"]
    response = app.dispatch(message_shortcut(shortcut["callback_id"]))
    assert response.status == 200, response.body


@pytest.mark.parametrize("kind", sorted(UNSUBSCRIBED_EVENTS))
def test_app_does_not_handle_events_the_manifest_does_not_subscribe_to(app: App, kind: str) -> None:
    # Bolt answers 404 to a request no listener matches: this is what a missing subscription looks like.
    response = app.dispatch(event(UNSUBSCRIBED_EVENTS[kind]))
    assert response.status == 404, f"the app handles {kind}: subscribe to it in manifest.yml and BOT_EVENTS"


def test_dispatch_check_can_fail(app: App) -> None:
    # An unknown command, shortcut and a badly signed request are refused, so the 200s above mean something.
    assert app.dispatch(slash_command("/not-ours")).status == 404
    assert app.dispatch(message_shortcut("not_ours")).status == 404
    forged = event(SUBSCRIPTION_EVENTS["reaction_added"]())
    forged.headers["x-slack-signature"] = ["v0=" + "0" * 64]
    assert app.dispatch(forged).status == 401


# ---------------------------------------------------------------------- static: listeners and scopes


def _bot_sources() -> dict[Path, str]:
    return {path: path.read_text("utf-8") for path in sorted(BOT_DIR.rglob("*.py"))}


# Parsed once, at collection: CPython 3.11's ast.parse is not thread-safe ("AST constructor
# recursion depth mismatch"), and while the tests run, the app's listener threads format tracebacks,
# which in 3.11 parses source lines with ast too.
_TREES = {path: ast.parse(source, filename=str(path)) for path, source in _bot_sources().items()}


def _registered(decorator: str) -> set[str]:
    """Literal arguments of `app.<decorator>(...)` across bot/; a non-literal one must be an ids constant."""
    names: set[str] = set()
    for tree in _TREES.values():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == decorator
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and node.args
            ):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            elif isinstance(arg, ast.Dict):  # app.event({"type": ...})
                for key, value in zip(arg.keys, arg.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant):
                        names.add(str(value.value))
            else:
                names.add(ast.unparse(arg))
    return names


def test_every_event_listener_is_subscribed(manifest: dict[str, Any]) -> None:
    subscribed = set(bot_events(manifest))
    # `message` events come from the message.* subscriptions; every other type is subscribed by name.
    delivered = {e.split(".", 1)[0] for e in subscribed}
    listened = _registered("event") | ({"message"} if _registered("message") else set())
    assert listened, "found no app.event(...) listeners: the scan is broken"
    assert listened <= delivered, f"listeners for unsubscribed events: {sorted(listened - delivered)}"
    # And every subscription has a listener (the App Home one may not be written yet).
    missing = delivered - listened
    if not HOME_LISTENER.exists():
        missing.discard("app_home_opened")
    assert not missing, f"subscribed but no listener: {sorted(missing)}"


def test_registered_commands_and_shortcuts_are_in_the_manifest(manifest: dict[str, Any]) -> None:
    assert _registered("command") == {"COMMAND"}  # the constant compared with the manifest above
    assert _registered("shortcut") == {"Callback.DECLARE_SHORTCUT.value"}
    assert _registered("global_shortcut") == set()
    assert {s["type"] for s in manifest["features"]["shortcuts"]} == {"message"}


# Web API method (as a slack_sdk WebClient method name) -> bot scopes it needs. A method the code calls
# that is not in this table fails the test: look its scopes up on docs.slack.dev and add it.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "chat_postMessage": frozenset({"chat:write"}),
    "chat_update": frozenset({"chat:write"}),
    "chat_postEphemeral": frozenset({"chat:write"}),
    "chat_delete": frozenset({"chat:write"}),
    "chat_scheduleMessage": frozenset({"chat:write"}),
    "chat_getPermalink": frozenset(),
    "views_open": frozenset(),
    "views_publish": frozenset(),
    "views_update": frozenset(),
    "views_push": frozenset(),
    "auth_test": frozenset(),
    # files_upload_v2 = files.getUploadURLExternal + upload + files.completeUploadExternal; since
    # slack_sdk 3.23 it no longer calls files.info, so files:read is not needed.
    "files_upload_v2": frozenset({"files:write"}),
    "files_getUploadURLExternal": frozenset({"files:write"}),
    "files_completeUploadExternal": frozenset({"files:write"}),
    "files_info": frozenset({"files:read"}),
    "reactions_add": frozenset({"reactions:write"}),
    "reactions_get": frozenset({"reactions:read"}),
    "pins_add": frozenset({"pins:write"}),
    "conversations_join": frozenset({"channels:join"}),
    "conversations_info": frozenset({"channels:read", "groups:read"}),
    "conversations_list": frozenset({"channels:read", "groups:read"}),
    "conversations_members": frozenset({"channels:read", "groups:read"}),
    "conversations_history": frozenset({"channels:history", "groups:history"}),
    "conversations_replies": frozenset({"channels:history", "groups:history"}),
    "users_info": frozenset({"users:read"}),
    "usergroups_list": frozenset({"usergroups:read"}),
    "usergroups_users_update": frozenset({"usergroups:write"}),
    # A page's DM: opened (im:write), then looked for in the DM before it is sent again (im:history).
    "conversations_open": frozenset({"im:write", "im:history"}),
    # Socket Mode opens its connection with the app-level token (connections:write), not a bot scope.
    "apps_connections_open": frozenset(),
}

# Bot event subscription -> scope it needs (no scope for app_home_opened).
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "message.channels": frozenset({"channels:history"}),
    "message.groups": frozenset({"groups:history"}),
    "message.im": frozenset({"im:history"}),
    "message.mpim": frozenset({"mpim:history"}),
    "reaction_added": frozenset({"reactions:read"}),
    "reaction_removed": frozenset({"reactions:read"}),
    "app_mention": frozenset({"app_mentions:read"}),
    "app_home_opened": frozenset(),
}

# Scopes of features still being written, accepted only while their module does not exist yet:
# the weekly digest (bot/digest.py) uploads its chart with files_upload_v2, hence files:write.
# Once bot/digest.py exists, files:write must come from a real call found in bot/.
PLANNED: dict[str, Path] = {"files:write": BOT_DIR / "digest.py"}

_PREFIXES = "chat|views|files|auth|conversations|users|usergroups|reactions|pins|bookmarks|team|bots|apps|dnd|reminders"
_METHOD_CALL = re.compile(rf"\.(?P<method>(?:{_PREFIXES})_[A-Za-z0-9_]+)\s*\(")
_API_CALL = re.compile(r"\.api_call\(\s*(?:api_method\s*=\s*)?[\"'](?P<method>[a-zA-Z]+\.[a-zA-Z0-9_.]+)[\"']")


def called_methods() -> set[str]:
    found: set[str] = set()
    for source in _bot_sources().values():
        found |= {m["method"] for m in _METHOD_CALL.finditer(source)}
        found |= {m["method"].replace(".", "_") for m in _API_CALL.finditer(source)}
    return found


def test_method_scan_finds_the_calls_it_must() -> None:
    methods = called_methods()
    # The incident card and thread replies (bot/delivery.py) and the declare modal (listeners/commands.py).
    assert {"chat_postMessage", "chat_update", "chat_postEphemeral", "views_open"} <= methods


def test_scopes_are_exactly_what_the_code_uses(manifest: dict[str, Any]) -> None:
    methods = called_methods()
    unknown = sorted(methods - set(METHOD_SCOPES))
    assert not unknown, f"Web API methods with no scope entry in METHOD_SCOPES: {unknown}"
    required: set[str] = set().union(*(METHOD_SCOPES[m] for m in methods))

    events = bot_events(manifest)
    unmapped = sorted(set(events) - set(EVENT_SCOPES))
    assert not unmapped, f"subscriptions with no entry in EVENT_SCOPES: {unmapped}"
    required |= set().union(*(EVENT_SCOPES[e] for e in events))

    features = manifest["features"]
    if features.get("slash_commands") or features.get("shortcuts"):
        required.add("commands")

    # The card and escalations go to INCIDENT_CHANNEL / ALERT_CHANNEL, configured by name
    # (#ops-incidents, #ops-alerts) and not necessarily joined: chat:write.public lets the post land.
    from bot.settings import Settings

    defaults = Settings.model_fields
    names = [defaults[f].default for f in ("incident_channel", "alert_channel")]
    posts_by_name = any(not re.fullmatch(r"[CG][A-Z0-9]{2,}", str(n)) for n in names)
    sources = "\n".join(_bot_sources().values())
    # A page's e-mail address from the Slack profile (bot/slack/page_delivery.py SlackEmails).
    if "users_info" in methods and re.search(r"profile.*\bemail\b", sources):
        required.add("users:read.email")
    if "chat_postMessage" in methods and posts_by_name and re.search(r"settings\.(incident|alert)_channel", sources):
        required.add("chat:write.public")

    planned = {scope for scope, module in PLANNED.items() if scope not in required and not module.exists()}
    for scope, module in PLANNED.items():
        if scope not in required and module.exists():
            pytest.fail(f"{module.relative_to(ROOT)} exists but no call in bot/ needs {scope}: drop it or use it")

    declared = set(bot_scopes(manifest))
    assert declared == required | planned, (
        f"missing: {sorted((required | planned) - declared)}, unused: {sorted(declared - required - planned)}"
    )
    assert "files:read" not in declared  # file metadata arrives in the message event itself


def test_the_app_is_named_so_bolt_never_walks_the_stack(app: App) -> None:
    # Without a name Bolt calls inspect.stack(), which reads the source of every frame: tens of
    # milliseconds for each app, and the bot makes two (the front's and the worker's).
    assert app.name == "slack_bolt.app"
