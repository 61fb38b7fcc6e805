"""bot/settings.py: CONTRACT.md's defaults, environment parsing, .env and CONFIG_FILE, and run's requirements."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.settings import Settings, SettingsError, load_settings

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
ENV_NAMES = {name.upper() for name in Settings.model_fields} | {"CONFIG_FILE"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the machine running the tests, and no stray .env: a tmp dir as cwd."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# -- defaults -----------------------------------------------------------------------------------


def test_defaults_are_the_contract_table() -> None:
    s = load_settings()
    assert s.slack_bot_token is None
    assert s.slack_signing_secret is None
    assert s.slack_app_token is None
    assert s.socket_mode is False
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.database_url == "sqlite:///incidents.db"
    assert s.port == 3000
    assert s.incident_channel == "ops-incidents"
    assert s.alert_channel == "ops-alerts"
    assert s.response_targets == {"P0": 5 * MINUTE, "P1": 15 * MINUTE, "P2": HOUR, "P3": 4 * HOUR}
    assert s.resolution_targets == {"P0": 10 * MINUTE, "P1": 30 * MINUTE, "P2": 2 * HOUR, "P3": 8 * HOUR}
    assert s.escalation_contacts == []
    assert s.escalation_check_interval == 15
    assert s.escalation_repeat is None
    assert s.escalation_max_repeats == 2
    assert s.escalation_levels is None
    assert s.update_reminder == {"P0": 30 * MINUTE, "P1": HOUR}
    assert s.digest_cron == "0 10 * * mon"
    assert s.digest_timezone == "UTC"
    assert s.monthly_digest_cron == "0 10 * * mon#1"
    assert s.quarterly_digest_cron == "0 10 * 1,4,7,10 mon#1"
    assert s.alertmanager_token is None
    assert s.alert_auto_mitigate is True


def test_default_runbooks_and_policy() -> None:
    s = load_settings()
    assert "Rollback Procedures" in s.runbooks
    assert all(s.runbook_url(name).startswith("https://") for name in s.runbooks)
    policy = s.policy()
    # ESCALATION_REPEAT unset: repeat after the severity's own response target.
    assert {sev: policy.repeat_for(sev) for sev in ("P0", "P1", "P2", "P3")} == s.response_targets
    assert policy.max_repeats == 2


# -- environment --------------------------------------------------------------------------------


def test_durations_as_seconds_or_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONSE_TARGETS", '{"P0": "300", "P1": "PT5M", "P2": 90, "P3": "PT1H30M"}')
    monkeypatch.setenv("RESOLUTION_TARGETS", '{"P0": "1200"}')
    monkeypatch.setenv("UPDATE_REMINDER", '{"P0": "PT10M", "P2": "3600"}')
    monkeypatch.setenv("ESCALATION_REPEAT", "600")
    s = load_settings()
    assert s.response_targets == {
        "P0": 5 * MINUTE,
        "P1": 5 * MINUTE,
        "P2": timedelta(seconds=90),
        "P3": timedelta(hours=1, minutes=30),
    }
    assert s.resolution_targets["P0"] == 20 * MINUTE
    assert s.update_reminder == {"P0": 10 * MINUTE, "P2": HOUR}
    assert s.escalation_repeat == 10 * MINUTE
    assert s.policy().repeat_for("P3") == 10 * MINUTE


def test_escalation_repeat_as_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_REPEAT", "PT2M")
    assert load_settings().escalation_repeat == 2 * MINUTE


def test_a_partial_target_map_only_overrides_what_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONSE_TARGETS", '{"P1": "PT2M"}')
    monkeypatch.setenv("RESOLUTION_TARGETS", '{"P3": 60}')
    s = load_settings()
    assert s.response_targets == {"P0": 5 * MINUTE, "P1": 2 * MINUTE, "P2": HOUR, "P3": 4 * HOUR}
    assert s.resolution_targets == {"P0": 10 * MINUTE, "P1": 30 * MINUTE, "P2": 2 * HOUR, "P3": MINUTE}


def test_scalars_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_CHECK_INTERVAL", "1")
    monkeypatch.setenv("ESCALATION_MAX_REPEATS", "0")
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("INCIDENT_CHANNEL", "C0123INC")
    monkeypatch.setenv("ALERT_AUTO_MITIGATE", "false")
    monkeypatch.setenv("DIGEST_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("MONTHLY_DIGEST_CRON", "")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    s = load_settings()
    assert s.escalation_check_interval == 1
    assert s.escalation_max_repeats == 0
    assert s.port == 8080
    assert s.incident_channel == "C0123INC"
    assert s.alert_auto_mitigate is False
    assert s.digest_timezone == "Europe/Berlin"
    assert s.monthly_digest_cron == ""
    assert s.slack_api_url == "http://127.0.0.1:9/api/"


def test_escalation_contacts_take_users_and_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_CONTACTS", '["U012AB3CD", "W0ENTERPRISE", "S0ONCALL"]')
    monkeypatch.setenv("ESCALATION_LEVELS", '[["U0LEAD"], ["S0MANAGERS"]]')
    s = load_settings()
    assert s.escalation_contacts == ["U012AB3CD", "W0ENTERPRISE", "S0ONCALL"]
    assert s.escalation_levels == [["U0LEAD"], ["S0MANAGERS"]]


@pytest.mark.parametrize("contact", ["alice", "C0CHANNEL", "<@U012AB3CD>", "U", "@oncall"])
def test_bad_contact_ids_are_refused(monkeypatch: pytest.MonkeyPatch, contact: str) -> None:
    message = _error(monkeypatch, ESCALATION_CONTACTS=f'["U0GOOD", "{contact}"]')
    assert "ESCALATION_CONTACTS" in message
    assert contact in message


def test_bad_level_ids_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "ESCALATION_LEVELS" in _error(monkeypatch, ESCALATION_LEVELS='[["U0LEAD"], ["#managers"]]')


@pytest.mark.parametrize("variable", ["RESPONSE_TARGETS", "RESOLUTION_TARGETS", "UPDATE_REMINDER"])
def test_unknown_severities_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    message = _error(monkeypatch, **{variable: '{"P1": 60, "P5": 60}'})
    assert variable in message
    assert "P5" in message


@pytest.mark.parametrize("value", ['{"P1": "five minutes"}', '{"P1": "PT5X"}', '{"P1": "-"}'])
def test_bad_durations_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert "RESPONSE_TARGETS" in _error(monkeypatch, RESPONSE_TARGETS=value)


def test_malformed_json_is_refused_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, RESPONSE_TARGETS='{"P0": ')
    assert "RESPONSE_TARGETS" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_CRON", "every monday at ten"),
        ("DIGEST_CRON", "0 10 * *"),
        ("DIGEST_CRON", "61 10 * * mon"),
        ("DIGEST_CRON", "0 10 * * funday"),
        ("MONTHLY_DIGEST_CRON", "0 25 1-7 * mon"),
        ("QUARTERLY_DIGEST_CRON", "0 10 1-7 13 mon"),
        # APScheduler's from_crontab refused 7 and took 1 for Tuesday; crontab does neither.
        ("DIGEST_CRON", "0 10 * * 8"),
        ("DIGEST_CRON", "0 10 * * mon#6"),
        ("DIGEST_CRON", "0 10 1#1 * *"),
        # croniter's extensions beyond crontab and `#n`, a seconds field, a date that never comes.
        ("DIGEST_CRON", "0 10 L * *"),
        ("DIGEST_CRON", "0 10 * * 5L"),
        ("DIGEST_CRON", "0 10 15W * *"),
        ("DIGEST_CRON", "H 10 * * mon"),
        ("DIGEST_CRON", "0 0 10 * * mon"),
        ("MONTHLY_DIGEST_CRON", "0 10 31 2 *"),
    ],
)
def test_bad_crontabs_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    message = _error(monkeypatch, **{variable: value})
    assert variable in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value", ["0 10 * * 7", "0 10 * * 0", "0 10 * * MON#1", "0 10 1 * mon", "*/15 0-20/10 * jan mon-fri"]
)
def test_crontab_forms_are_taken(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DIGEST_CRON", f"  {value} ")
    assert Settings(_env_file=None).digest_cron == value  # type: ignore[call-arg]


def test_unknown_time_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, DIGEST_TIMEZONE="Mars/Olympus_Mons")
    assert "DIGEST_TIMEZONE" in message
    assert "Mars/Olympus_Mons" in message


@pytest.mark.parametrize(("variable", "value"), [("ESCALATION_CHECK_INTERVAL", "0"), ("PORT", "http")])
def test_bad_numbers_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    assert variable in _error(monkeypatch, **{variable: value})


def test_secrets_never_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-111-222-abcdefSECRET",
        "SLACK_SIGNING_SECRET": "signing-SECRET-value",
        "SLACK_APP_TOKEN": "xapp-1-A0-333-appSECRET",
        "ALERTMANAGER_TOKEN": "alertmanager-SECRET",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    for field in ("slack_bot_token", "slack_signing_secret", "slack_app_token", "alertmanager_token"):
        assert isinstance(getattr(s, field), SecretStr)
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == secrets["SLACK_BOT_TOKEN"]
    for text in (repr(s), str(s)):
        assert "SECRET" not in text
        for value in secrets.values():
            assert value not in text


# -- .env and CONFIG_FILE -----------------------------------------------------------------------


def test_dotenv_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "INCIDENT_CHANNEL=from-dotenv\nALERT_CHANNEL=alerts-from-dotenv\nSLACK_BOT_TOKEN=xoxb-dotenv\n"
    )
    monkeypatch.setenv("ALERT_CHANNEL", "alerts-from-env")
    s = load_settings()
    assert s.incident_channel == "from-dotenv"
    assert s.alert_channel == "alerts-from-env"
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-dotenv"


def test_config_file_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    config = clean_env / "bot.yaml"
    config.write_text(
        "incident_channel: incidents-from-yaml\n"
        "alert_channel: alerts-from-yaml\n"
        "escalation_max_repeats: 5\n"
        "escalation_contacts: [U0YAML, S0YAMLGROUP]\n"
        "response_targets:\n"
        "  P0: PT1M\n"
        "  P3: 60\n"
    )
    monkeypatch.setenv("CONFIG_FILE", str(config))
    monkeypatch.setenv("ALERT_CHANNEL", "alerts-from-env")
    s = load_settings()
    assert s.incident_channel == "incidents-from-yaml"
    assert s.alert_channel == "alerts-from-env"
    assert s.escalation_max_repeats == 5
    assert s.escalation_contacts == ["U0YAML", "S0YAMLGROUP"]
    assert s.response_targets == {"P0": MINUTE, "P1": 15 * MINUTE, "P2": HOUR, "P3": MINUTE}


def test_config_file_values_are_validated(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    config = clean_env / "bot.yaml"
    config.write_text("escalation_contacts: [alice]\n")
    assert "ESCALATION_CONTACTS" in _error(monkeypatch, CONFIG_FILE=str(config))


def test_a_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    missing = clean_env / "nowhere" / "bot.yaml"
    message = _error(monkeypatch, CONFIG_FILE=str(missing))
    assert "CONFIG_FILE" in message
    assert str(missing) in message


def test_a_malformed_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    config = clean_env / "bot.yaml"
    config.write_text("incident_channel: [unclosed\n")
    message = _error(monkeypatch, CONFIG_FILE=str(config))
    assert "CONFIG_FILE" in message


# -- what `run` needs ---------------------------------------------------------------------------


def test_run_needs_the_bot_token() -> None:
    s = load_settings(slack_signing_secret="s")
    with pytest.raises(SettingsError) as caught:
        s.require_for_run()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("SLACK_BOT_TOKEN")
    assert "OAuth & Permissions" in message
    assert "manifest.yml" in message


def test_an_empty_bot_token_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    with pytest.raises(SettingsError, match=r"^SLACK_BOT_TOKEN"):
        load_settings().require_for_run()


def test_http_mode_needs_the_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    s = load_settings()
    assert s.socket_mode is False
    with pytest.raises(SettingsError) as caught:
        s.require_for_run()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("SLACK_SIGNING_SECRET")
    assert "Basic Information" in message
    assert "xoxb-1" not in message


def test_socket_mode_does_not_need_the_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    s = load_settings()
    assert s.socket_mode is True
    assert s.require_for_run() is None


def test_http_mode_with_both_secrets_is_ready_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "8f14e45fceea167a5a36dedd4bea2543")
    s = load_settings()
    assert s.socket_mode is False
    assert s.require_for_run() is None


def test_retention_defaults_to_90_days_and_takes_iso_8601_or_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().retention == timedelta(days=90)
    monkeypatch.setenv("RETENTION", "P30D")
    assert load_settings().retention == timedelta(days=30)
    monkeypatch.setenv("RETENTION", "86400")
    assert load_settings().retention == timedelta(days=1)


@pytest.mark.parametrize("value", ["0", "PT0S", "-60", "-P1D", "ninety days"])
def test_a_zero_negative_or_unreadable_retention_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    message = _error(monkeypatch, RETENTION=value)
    assert message.startswith("invalid settings: RETENTION:"), message
