"""The bot's settings: one pydantic-settings class, the only reader of the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from bot import config_checks, crontab
from bot.config_checks import URL_SETTINGS, SettingsError, url_host
from bot.escalation_policy import (
    DEFAULT_RESOLUTION_TARGETS,
    DEFAULT_RESPONSE_TARGETS,
    DEFAULT_RUNBOOKS,
    DEFAULT_UPDATE_REMINDER,
    Policy,
    Runbook,
)
from bot.oncall.config import OnCallConfig, OnCallConfigError, parse_oncall
from bot.statuspage.config import StatusPageConfig, parse_status_page, split_config_file
from storage.models import CATEGORIES, SEVERITIES
from storage.urls import url_problem

# The settings that hold a timedelta (or a severity-keyed map of them): all must be positive.
DURATIONS = ("response_targets", "resolution_targets", "update_reminder", "escalation_repeat", "retention")
# Sections of CONFIG_FILE that are read elsewhere, or not yet: known, so not warned about.
OTHER_SECTIONS = ("oncall", "status_page")
# The secrets whose shape is checked before `run` (PAGE_WEBHOOK_SECRET once it is a setting).
SECRETS = ("slack_bot_token", "slack_signing_secret", "slack_app_token", "alertmanager_token", "page_webhook_secret")


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
    # The first Monday of the month (of a quarter's month): `#1`, since crontab's day fields OR.
    monthly_digest_cron: str = "0 10 * * mon#1"
    quarterly_digest_cron: str = "0 10 * 1,4,7,10 mon#1"

    alertmanager_token: SecretStr | None = None
    alert_auto_mitigate: bool = True
    alert_default_severity: str = "P2"

    timeline_backfill_interval: float = Field(default=300, ge=0)  # seconds; 0 turns the backfill off
    # How long delivered outbox rows, processed-event keys, alert notifications and done inbox
    # requests are kept (bot/retention.py): long enough to recognise any redelivery, and to debug.
    retention: timedelta = timedelta(days=90)

    # On-call (CONTRACT.md "On-call"): the `oncall:` section of CONFIG_FILE, and where pages go.
    oncall: OnCallConfig = Field(default_factory=OnCallConfig)
    smtp_url: SecretStr | None = None  # smtp://[user:pass@]host[:port] or smtps://…: holds a password
    email_from: str | None = None  # default incident-bot@<host>, filled in where e-mail is sent
    page_webhook_url: str | None = None
    page_webhook_secret: SecretStr | None = None
    # The key of the on-call calendar feeds' tokens (GET /oncall/NAME.ics?token=…); unset: the
    # signing secret is the key. Changing it (or the signing secret) revokes every feed URL.
    oncall_feed_secret: SecretStr | None = None
    public_url: str | None = None  # the bot's public base URL, for the feed URLs the CLI prints

    # Status page (CONTRACT.md "Status page"); its components are `status_page:` in CONFIG_FILE.
    status_page: bool = False
    status_page_url: str | None = None
    status_page_title: str = "Status"
    status_page_export_dir: str | None = None
    status_page_config: StatusPageConfig = Field(default_factory=StatusPageConfig)

    log_level: str = "INFO"
    # The work after each ack runs in a second process, so it never holds the acks' interpreter
    # lock (bot/worker.py). False runs everything in one process: simpler to debug, slower acks.
    worker_process: bool = True

    _config_file: str | None = PrivateAttr(default=None)

    @field_validator(*DURATIONS, mode="before")
    @classmethod
    def _plain_seconds(cls, value: Any) -> Any:
        # pydantic reads "PT5M" and 300 but not "300"; a plain number, quoted or not, means seconds.
        if isinstance(value, dict):
            return {key: config_checks.plain_seconds(duration) for key, duration in value.items()}
        return config_checks.plain_seconds(value)

    @field_validator("response_targets", "resolution_targets")
    @classmethod
    def _all_severities(cls, value: dict[str, timedelta], info: Any) -> dict[str, timedelta]:
        defaults = DEFAULT_RESPONSE_TARGETS if info.field_name == "response_targets" else DEFAULT_RESOLUTION_TARGETS
        config_checks.check_severity_keys(value, info.field_name)
        # A partial map only overrides what it names: every severity always has a target.
        return {**defaults, **value}

    @field_validator("update_reminder")
    @classmethod
    def _reminder_keys(cls, value: dict[str, timedelta], info: Any) -> dict[str, timedelta]:
        config_checks.check_severity_keys(value, info.field_name)
        return value

    @field_validator(*DURATIONS)
    @classmethod
    def _positive(cls, value: Any) -> Any:
        # A zero or negative target, reminder or repeat would fire at once and on every sweep.
        durations = value.items() if isinstance(value, dict) else [(None, value)]
        for key, duration in durations:
            if duration is not None and duration <= timedelta(0):
                where = f"{key}: " if key else ""
                raise ValueError(f"{where}must be a positive duration, e.g. PT5M or 300 (seconds)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("escalation_contacts")
    @classmethod
    def _contact_ids(cls, value: list[str]) -> list[str]:
        for contact in value:
            config_checks.check_contact(contact)
        return value

    @field_validator("escalation_levels")
    @classmethod
    def _level_ids(cls, value: list[list[str]] | None) -> list[list[str]] | None:
        for level in value or []:
            for contact in level:
                config_checks.check_contact(contact)
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
        # Checked here as the scheduler will read it (bot/crontab.py), or a typo only shows when it fires.
        return crontab.validate(value) if value.strip() else ""

    @field_validator("oncall", mode="before")
    @classmethod
    def _oncall(cls, value: Any) -> Any:
        # One line per mistake, each naming its path (oncall.policies.default.steps[1].after: …).
        return value if isinstance(value, OnCallConfig) else parse_oncall(value)

    @field_validator("status_page_config", mode="before")
    @classmethod
    def _status_page(cls, value: Any) -> Any:
        return value if isinstance(value, StatusPageConfig) else parse_status_page(value)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if (
            value is not None
            and value.get_secret_value()
            and not value.get_secret_value().startswith(("smtp://", "smtps://"))
        ):
            raise ValueError("must start with smtp:// or smtps://")
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _webhook_secret(self) -> Settings:
        if self.page_webhook_url and not self.page_webhook_url.startswith(("https://", "http://")):
            raise ValueError("PAGE_WEBHOOK_URL must be an https:// URL")
        secret = self.page_webhook_secret.get_secret_value() if self.page_webhook_secret else ""
        if self.page_webhook_url and not secret:
            raise ValueError("PAGE_WEBHOOK_URL is set but PAGE_WEBHOOK_SECRET is not: receivers need it to check pages")
        return self

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
        self._config_file = os.environ.get("CONFIG_FILE") or None
        return self

    def config_file_warnings(self) -> list[str]:
        """One line per top-level key of CONFIG_FILE that no setting reads (logged at start)."""
        if not self._config_file:
            return []
        return config_checks.unknown_keys(self._config_file, {*type(self).model_fields, *OTHER_SECTIONS})

    def secret_problems(self) -> list[str]:
        """One line per secret whose shape cannot be Slack's (or is too short to be a secret)."""
        values = {name.upper(): getattr(self, name, None) for name in SECRETS}
        return config_checks.secret_problems(
            {name: value.get_secret_value() for name, value in values.items() if value is not None}
        )

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
            oncall=self.oncall if self.oncall.routes else None,
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
        problems = self.secret_problems()
        if problems:
            raise SettingsError(problems[0])

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
            try:
                config_checks.config_mapping(config_file)  # valid YAML, and a mapping
            except config_checks.ConfigFileError as exc:
                raise SettingsError(str(exc)) from None
            sources.append(_ConfigFile(settings_cls, yaml_file=config_file))
        sources.append(file_secret_settings)
        return tuple(sources)


class _ConfigFile(YamlConfigSettingsSource):
    def __call__(self) -> dict[str, Any]:
        return split_config_file(super().__call__())  # `status_page:` is a section, STATUS_PAGE a flag


def config_file() -> str | None:
    """The CONFIG_FILE the settings are read from, if any."""
    return os.environ.get("CONFIG_FILE") or None


def config_file_problems() -> list[str]:
    """What `load_settings` lets pass in CONFIG_FILE, for `check`: keys no setting has (a typo would
    leave the default in force). A file that is not a mapping is refused by load_settings itself."""
    path = config_file()
    if not path or not os.path.isfile(path):
        return []  # unset, or missing: load_settings says so
    try:
        return config_checks.unknown_keys(path, {*Settings.model_fields, *OTHER_SECTIONS})
    except config_checks.ConfigFileError as exc:
        return [str(exc)]


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
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, OnCallConfigError):  # one per mistake, each naming its path
                problems.extend(cause.problems)
                continue
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems), problems) from None
