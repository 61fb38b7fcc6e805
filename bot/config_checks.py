"""Checks of settings beyond their types: the shape of each secret, and CONFIG_FILE's top level.

Pure functions of plain values, so bot/settings.py stays one class; each problem is one line that
names the setting and never quotes a secret's value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from storage.models import SEVERITIES

# What Slack's secrets look like (https://api.slack.com/authentication/token-types): a value of
# another shape is a paste into the wrong variable, and the log masker must not mask "s" or "x".
SIGNING_SECRET = re.compile(r"[0-9a-f]{32}")
MIN_SHARED_SECRET = 16
SHARED_SECRETS = ("ALERTMANAGER_TOKEN", "PAGE_WEBHOOK_SECRET")


class SettingsError(ValueError):
    """An operator mistake in the configuration: shown as one line, never a traceback.

    `problems` has one entry per setting at fault (`incident-bot check` prints them a line each).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    @property
    def lines(self) -> list[str]:
        """One per mistake, for the CLI to print (the message joins them with "; ")."""
        if self.problems == [str(self)]:
            return self.problems
        return [f"invalid settings: {problem}" for problem in self.problems]


class ConfigFileError(ValueError):
    """CONFIG_FILE cannot be used; the message names it and says why."""


def secret_problems(secrets: Mapping[str, str]) -> list[str]:
    """`secrets`: setting name (upper case) → value ("" when unset). One line per bad value."""
    problems = []
    bot_token = secrets.get("SLACK_BOT_TOKEN", "")
    if bot_token and not bot_token.startswith("xoxb-"):
        problems.append(
            "SLACK_BOT_TOKEN is not a bot token (xoxb-…): copy the Bot User OAuth Token from the app's "
            "OAuth & Permissions page."
        )
    signing_secret = secrets.get("SLACK_SIGNING_SECRET", "")
    if signing_secret and not SIGNING_SECRET.fullmatch(signing_secret):
        problems.append(
            "SLACK_SIGNING_SECRET is not a Slack signing secret (32 lowercase hex characters): copy the "
            "Signing Secret from the app's Basic Information page."
        )
    app_token = secrets.get("SLACK_APP_TOKEN", "")
    if app_token and not app_token.startswith("xapp-"):
        problems.append(
            "SLACK_APP_TOKEN is not an app-level token (xapp-…): generate one with the connections:write "
            "scope on the app's Basic Information page."
        )
    for name in SHARED_SECRETS:
        shared = secrets.get(name, "")
        if shared and len(shared) < MIN_SHARED_SECRET:
            problems.append(
                f"{name} is too short to be a secret: use at least {MIN_SHARED_SECRET} random characters "
                "(e.g. `openssl rand -hex 32`)."
            )
    return problems


def config_mapping(config_file: str) -> dict[Any, Any]:
    """CONFIG_FILE's top level: a mapping (an empty file is an empty one), or a ConfigFileError."""
    import yaml

    try:
        with open(config_file, encoding="utf-8") as file:
            loaded = yaml.safe_load(file)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigFileError(f"CONFIG_FILE {config_file!r} is not valid YAML: {reason}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"CONFIG_FILE {config_file!r} cannot be read ({type(exc).__name__})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        kind = "a list" if isinstance(loaded, list) else f"a single {type(loaded).__name__} value"
        raise ConfigFileError(
            f"CONFIG_FILE {config_file!r} must be a mapping of settings (lines of `key: value`), not {kind}"
        )
    return loaded


def unknown_keys(config_file: str, known: Iterable[str]) -> list[str]:
    """One line per top-level key of CONFIG_FILE that nothing reads, with the nearest known key."""
    names = sorted(known)
    warnings = []
    for key in config_mapping(config_file):
        if str(key).lower() in names:
            continue
        nearest = difflib.get_close_matches(str(key).lower(), names, n=1)
        hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
        warnings.append(f"CONFIG_FILE {config_file!r}: unknown key {str(key)!r} is ignored{hint}")
    return warnings


def check_severity_keys(value: dict[str, Any], field: str) -> None:
    unknown = sorted(set(value) - set(SEVERITIES))
    if unknown:
        raise ValueError(f"unknown severities {unknown}: use {', '.join(SEVERITIES)}")


def plain_seconds(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_contact(contact: str) -> None:
    if not contact or contact[0] not in "UWS" or not contact[1:].isalnum():
        raise ValueError(f"{contact!r} is not a Slack user (U…/W…) or user-group (S…) id")


URL_SETTINGS = {
    "smtp_url": (("smtp", "smtps"), "smtp://[user:pass@]host[:port] or smtps://…"),
    "page_webhook_url": (("https", "http"), "an https:// URL (http:// only inside your network)"),
    "status_page_url": (("http", "https"), "an http:// or https:// URL"),
}


def url_host(url: str, schemes: tuple[str, ...]) -> str | None:
    """The host of a URL with one of these schemes, else None: what may be shown of a secret URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError:
        return None
    return host if parts.scheme.lower() in schemes and host else None
