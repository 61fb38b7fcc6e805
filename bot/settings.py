"""The bot's settings: one pydantic-settings class, the only reader of the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from storage.models import CATEGORIES, SEVERITIES

DEFAULT_RESPONSE_TARGETS = {
    "P0": timedelta(minutes=5),
    "P1": timedelta(minutes=15),
    "P2": timedelta(hours=1),
    "P3": timedelta(hours=4),
}
DEFAULT_RESOLUTION_TARGETS = {
    "P0": timedelta(minutes=10),
    "P1": timedelta(minutes=30),
    "P2": timedelta(hours=2),
    "P3": timedelta(hours=8),
}
DEFAULT_UPDATE_REMINDER = {"P0": timedelta(minutes=30), "P1": timedelta(hours=1)}


@dataclass(frozen=True)
class Policy:
    """The escalation settings, severity-keyed."""

    response_targets: dict[str, timedelta]
    resolution_targets: dict[str, timedelta]
    update_reminder: dict[str, timedelta] = field(default_factory=dict)
    repeat: timedelta | None = None  # None: the severity's response target
    max_repeats: int = 2

    def repeat_for(self, severity: str) -> timedelta:
        return self.repeat or self.response_targets[severity]


class Runbook(BaseModel):
    """A runbook and what it applies to; empty lists mean "any"."""

    url: str
    severities: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)


# The runbooks the hand-kept tracker links to ("Related Documentation"). Relative
# paths are resolved against RUNBOOK_BASE_URL so a team only sets one value.
DEFAULT_RUNBOOKS: dict[str, Runbook] = {
    "P0: Service Down": Runbook(url="runbooks/p0-service-down.md", severities=["P0"], categories=["Infrastructure"]),
    "P0: Database Failure": Runbook(url="runbooks/p0-database-failure.md", severities=["P0"], categories=["Database"]),
    "P0: Memory Leak": Runbook(url="runbooks/p0-memory-leak.md", severities=["P0"], categories=["Performance"]),
    "P1: Login Failure": Runbook(url="runbooks/p1-login-failure.md", severities=["P1"], categories=["Authentication"]),
    "P1: Payment Failure": Runbook(
        url="runbooks/p1-payment-failure.md", severities=["P1"], categories=["Payment Gateway"]
    ),
    "P1: Slow Queries": Runbook(
        url="runbooks/p1-slow-queries.md", severities=["P1"], categories=["Performance", "Database"]
    ),
    "Rollback Procedures": Runbook(url="ROLLBACK_PROCEDURES.md"),
    "Deployment Runbook": Runbook(url="DEPLOYMENT_RUNBOOK.md"),
}


class SettingsError(ValueError):
    """An operator mistake in the configuration: shown as one line, never a traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    database_url: str = "sqlite:///incidents.db"
    port: int = Field(default=3000, ge=0, le=65535)
    host: str = "0.0.0.0"

    incident_channel: str = "ops-incidents"
    alert_channel: str = "ops-alerts"

    response_targets: dict[str, timedelta] = Field(default_factory=lambda: dict(DEFAULT_RESPONSE_TARGETS))
    resolution_targets: dict[str, timedelta] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION_TARGETS))
    escalation_contacts: list[str] = Field(default_factory=list)
    escalation_check_interval: float = Field(default=15, gt=0)
    escalation_repeat: timedelta | None = None
    escalation_max_repeats: int = Field(default=2, ge=0)
    escalation_levels: list[list[str]] | None = None
    update_reminder: dict[str, timedelta] = Field(default_factory=lambda: dict(DEFAULT_UPDATE_REMINDER))

    runbooks: dict[str, Runbook] = Field(default_factory=lambda: dict(DEFAULT_RUNBOOKS))
    runbook_base_url: str = "https://github.com/your-org/ops/blob/main/"

    digest_cron: str = "0 10 * * mon"
    digest_timezone: str = "UTC"
    monthly_digest_cron: str = "0 10 1-7 * mon"
    quarterly_digest_cron: str = "0 10 1-7 1,4,7,10 mon"

    # Notification channels beyond Slack (CONTRACT.md, Settings). SMTP_URL may hold a password and
    # the webhook URL a token: neither is ever printed whole (the tracker names their hosts only).
    smtp_url: SecretStr | None = None
    email_from: str | None = None  # None: incident-bot@<host>
    page_webhook_url: SecretStr | None = None
    page_webhook_secret: SecretStr | None = None
    status_page: bool = False
    status_page_url: str | None = None
    status_page_title: str = "Status"

    alertmanager_token: SecretStr | None = None
    alert_auto_mitigate: bool = True
    alert_default_severity: str = "P2"

    timeline_backfill_interval: float = Field(default=300, ge=0)  # seconds; 0 turns the backfill off
    # How long delivered outbox rows, processed-event keys, alert notifications and done inbox
    # requests are kept (bot/retention.py): long enough to recognise any redelivery, and to debug.
    retention: timedelta = timedelta(days=90)

    log_level: str = "INFO"
    # The work after each ack runs in a second process, so it never holds the acks' interpreter
    # lock (bot/worker.py). False runs everything in one process: simpler to debug, slower acks.
    worker_process: bool = True

    @field_validator(
        "response_targets", "resolution_targets", "update_reminder", "escalation_repeat", "retention", mode="before"
    )
    @classmethod
    def _plain_seconds(cls, value: Any) -> Any:
        # pydantic reads "PT5M" and 300 but not "300"; a plain number, quoted or not, means seconds.
        if isinstance(value, dict):
            return {key: _seconds(duration) for key, duration in value.items()}
        return _seconds(value)

    @field_validator("response_targets", "resolution_targets")
    @classmethod
    def _all_severities(cls, value: dict[str, timedelta], info: Any) -> dict[str, timedelta]:
        defaults = DEFAULT_RESPONSE_TARGETS if info.field_name == "response_targets" else DEFAULT_RESOLUTION_TARGETS
        _check_severity_keys(value, info.field_name)
        # A partial map only overrides what it names: every severity always has a target.
        return {**defaults, **value}

    @field_validator("update_reminder")
    @classmethod
    def _reminder_keys(cls, value: dict[str, timedelta], info: Any) -> dict[str, timedelta]:
        _check_severity_keys(value, info.field_name)
        return value

    @field_validator("retention")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. P90D or 7776000 (seconds)")
        return value

    @field_validator("escalation_contacts")
    @classmethod
    def _contact_ids(cls, value: list[str]) -> list[str]:
        for contact in value:
            _check_contact(contact)
        return value

    @field_validator("escalation_levels")
    @classmethod
    def _level_ids(cls, value: list[list[str]] | None) -> list[list[str]] | None:
        for level in value or []:
            for contact in level:
                _check_contact(contact)
        return value

    @field_validator("runbooks", mode="before")
    @classmethod
    def _runbook_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"url": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
        return value

    @field_validator("runbooks")
    @classmethod
    def _runbook_values(cls, value: dict[str, Runbook]) -> dict[str, Runbook]:
        for name, runbook in value.items():
            for severity in runbook.severities:
                if severity not in SEVERITIES:
                    raise ValueError(f"runbook {name!r}: unknown severity {severity!r}")
            for category in runbook.categories:
                if category not in CATEGORIES:
                    raise ValueError(f"runbook {name!r}: unknown category {category!r}")
        return value

    @field_validator("alert_default_severity")
    @classmethod
    def _default_severity(cls, value: str) -> str:
        if value not in SEVERITIES:
            raise ValueError(f"must be one of {', '.join(SEVERITIES)}")
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("digest_cron", "monthly_digest_cron", "quarterly_digest_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        if value.strip() and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field crontab")
        if value.strip():
            from apscheduler.triggers.cron import CronTrigger

            # Check it here as the scheduler will read it, or a typo only shows when the bot starts.
            try:
                CronTrigger.from_crontab(value.strip(), timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid crontab: {exc}") from None
        return value.strip()

    @field_validator("smtp_url", "page_webhook_url", "status_page_url")
    @classmethod
    def _url_scheme(cls, value: Any, info: Any) -> Any:
        schemes, shape = URL_SETTINGS[info.field_name]
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text and not url_host(text, schemes):
            raise ValueError(f"must be {shape}")  # never the value: it may hold a password
        return value if text else None

    @model_validator(mode="after")
    def _api_url_slash(self) -> Settings:
        # slack_sdk joins method names onto the base URL: without the slash they'd run together.
        if not self.slack_api_url.endswith("/"):
            self.slack_api_url += "/"
        return self

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None and bool(self.slack_app_token.get_secret_value())

    def runbook_url(self, name: str) -> str:
        url = self.runbooks[name].url
        if "://" in url:
            return url
        return self.runbook_base_url.rstrip("/") + "/" + url.lstrip("./")

    def policy(self) -> Policy:
        return Policy(
            response_targets=self.response_targets,
            resolution_targets=self.resolution_targets,
            update_reminder=self.update_reminder,
            repeat=self.escalation_repeat,
            max_repeats=self.escalation_max_repeats,
        )

    def matching_runbook(self, severity: str, category: str | None) -> str | None:
        """The runbook to suggest: one made for both severity and category beats one for either."""
        best: tuple[int, str] | None = None
        for name, runbook in self.runbooks.items():
            if runbook.severities and severity not in runbook.severities:
                continue
            if runbook.categories and category not in runbook.categories:
                continue
            score = 2 * bool(runbook.categories) + bool(runbook.severities)
            if best is None or score > best[0]:
                best = (score, name)
        return best[1] if best else None

    def require_for_run(self) -> None:
        """Fail fast, with one line each, on what `run` cannot work without."""
        if self.slack_bot_token is None or not self.slack_bot_token.get_secret_value():
            raise SettingsError(
                "SLACK_BOT_TOKEN is not set: install the app (created from manifest.yml) to your "
                "workspace and copy the Bot User OAuth Token (xoxb-…) from its OAuth & Permissions page."
            )
        if not self.socket_mode and (
            self.slack_signing_secret is None or not self.slack_signing_secret.get_secret_value()
        ):
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from your app's Basic "
                "Information page (or set SLACK_APP_TOKEN, an xapp-… token, for Socket Mode)."
            )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("CONFIG_FILE")
        if config_file:
            if not os.path.isfile(config_file):
                raise SettingsError(f"CONFIG_FILE {config_file!r} does not exist or is not a file.")
            # Lowest precedence: the environment always wins over the file.
            import yaml

            try:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
            except yaml.YAMLError as exc:
                reason = " ".join(str(exc).split())
                raise SettingsError(f"CONFIG_FILE {config_file!r} is not valid YAML: {reason}") from None
        sources.append(file_secret_settings)
        return tuple(sources)


URL_SETTINGS = {
    "smtp_url": (("smtp", "smtps"), "smtp://[user:pass@]host[:port] or smtps://…"),
    "page_webhook_url": (("https",), "an https:// URL"),
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


def _check_severity_keys(value: dict[str, Any], field: str) -> None:
    unknown = sorted(set(value) - set(SEVERITIES))
    if unknown:
        raise ValueError(f"unknown severities {unknown}: use {', '.join(SEVERITIES)}")


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_contact(contact: str) -> None:
    if not contact or contact[0] not in "UWS" or not contact[1:].isalnum():
        raise ValueError(f"{contact!r} is not a Slack user (U…/W…) or user-group (S…) id")


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into one readable SettingsError."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError as SourceError

    try:
        return Settings(**overrides)
    except SourceError as exc:
        # A value that could not even be decoded (malformed JSON in a map or list setting).
        field = str(exc).split('"')[1].upper() if str(exc).count('"') >= 2 else "settings"
        reason = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise SettingsError(f"invalid settings: {field}: not valid JSON{reason}") from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
