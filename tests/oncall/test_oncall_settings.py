"""The `oncall:` section and the paging settings, read through Settings from CONFIG_FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

CONFIG = """
oncall:
  schedules:
    primary:
      timezone: Europe/Berlin
      rotation: weekly
      handoff: "mon 09:00"
      start: 2026-01-05
      members: [U01ALICE, U02BOB, U03CAROL]
      usergroup: S0PRIMARY
  policies:
    default:
      steps:
        - {after: PT0M,  notify: ["schedule:primary"]}
        - {after: PT10M, notify: ["U0LEAD"]}
      repeat: 1
  routes:
    - {match: {severity: [P0, P1]}, policy: default}
"""


def test_config_file_oncall_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG)
    monkeypatch.setenv("CONFIG_FILE", str(path))
    settings = load_settings()
    assert settings.oncall.schedules["primary"].members == ["U01ALICE", "U02BOB", "U03CAROL"]
    assert settings.oncall.routes[0].policy == "default"


def test_no_section_means_no_oncall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIG_FILE", raising=False)
    settings = load_settings()
    assert settings.oncall.schedules == {} and settings.smtp_url is None


def test_a_mistake_names_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG.replace("PT10M", "-PT10M").replace("Europe/Berlin", "Europe/Berlim"))
    monkeypatch.setenv("CONFIG_FILE", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "oncall.schedules.primary.timezone: 'Europe/Berlim' is not a time zone" in message
    assert "oncall.policies.default.steps[1].after: '-PT10M' is a negative duration" in message


def test_paging_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIG_FILE", raising=False)
    monkeypatch.setenv("SMTP_URL", "smtp://bot:pw@mail.example.com:587")
    settings = load_settings()
    assert settings.smtp_url is not None and "pw" not in repr(settings)
    monkeypatch.setenv("SMTP_URL", "mail.example.com")
    with pytest.raises(SettingsError, match="SMTP_URL: Value error, must start with smtp:// or smtps://"):
        load_settings()
    monkeypatch.delenv("SMTP_URL")
    monkeypatch.setenv("PAGE_WEBHOOK_URL", "https://relay.example.com/page")
    with pytest.raises(SettingsError, match="PAGE_WEBHOOK_SECRET is not"):
        load_settings()
    monkeypatch.setenv("PAGE_WEBHOOK_SECRET", "s")
    assert load_settings().page_webhook_url == "https://relay.example.com/page"
