"""STATUS_PAGE* settings and `status_page:` in CONFIG_FILE: the env flag and the file's section are
one key once lower-cased, and both work."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

SECTION = """
status_page:
  {enabled}components:
    - {{key: api, name: API, alert_labels: {{service: api}}}}
    - {{key: web, name: Website, group: Frontend}}
"""


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: str = "") -> None:
    path = tmp_path / "config.yml"
    path.write_text(SECTION.format(enabled=enabled))
    monkeypatch.setenv("CONFIG_FILE", str(path))


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONFIG_FILE", "STATUS_PAGE", "STATUS_PAGE_URL", "STATUS_PAGE_TITLE", "STATUS_PAGE_EXPORT_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.status_page is False
    assert settings.status_page_url is None and settings.status_page_export_dir is None
    assert settings.status_page_title == "Status"
    assert settings.status_page_config.components == ()


def test_env_flag_and_file_components_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch)
    monkeypatch.setenv("STATUS_PAGE", "true")
    monkeypatch.setenv("STATUS_PAGE_TITLE", "Acme Status")
    monkeypatch.setenv("STATUS_PAGE_EXPORT_DIR", str(tmp_path / "site"))
    settings = load_settings()
    assert settings.status_page is True
    assert settings.status_page_title == "Acme Status"
    assert settings.status_page_export_dir == str(tmp_path / "site")
    assert settings.status_page_config.keys == ("api", "web")
    assert settings.status_page_config.components_for_alert({"service": "api"}) == ["api"]


def test_components_alone_do_not_turn_the_page_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch)
    settings = load_settings()
    assert settings.status_page is False and settings.status_page_config.keys == ("api", "web")


def test_enabled_in_the_file_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, enabled="enabled: true\n  ")
    assert load_settings().status_page is True
    monkeypatch.setenv("STATUS_PAGE", "false")
    settings = load_settings()
    assert settings.status_page is False and settings.status_page_config.keys == ("api", "web")


def test_a_flag_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yml"
    path.write_text("status_page: true\n")
    monkeypatch.setenv("CONFIG_FILE", str(path))
    settings = load_settings()
    assert settings.status_page is True and settings.status_page_config.components == ()


def test_a_mistake_is_one_line_naming_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yml"
    path.write_text("status_page:\n  components:\n    - {key: Bad Key, name: X}\n    - {key: db}\n")
    monkeypatch.setenv("CONFIG_FILE", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "status_page.components[0].key: must be 1-64 lower-case" in message
    assert "status_page.components[1].name: Field required" in message
