"""`incident-bot statuspage export DIR`: the static site from the bot's database, read-only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import sp_data
import sqlalchemy as sa
from cli_process import run_cli

from bot.settings import Settings
from storage import db

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CONFIG_FILE"}

CONFIG = "status_page:\n  components:\n" + "".join(
    f"    - {{key: {c.key}, name: {c.name}}}\n" for c in sp_data.CONFIG.components
)


def export(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["statuspage", "export", *args], env=env, cwd=cwd, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *, code: int) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _env(tmp_path: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    env |= {"PYTHONPATH": str(ROOT), "DATABASE_URL": db_url, "CONFIG_FILE": str(config)}
    env["STATUS_PAGE_TITLE"] = "Acme Status"
    return env


def test_export_writes_the_published_site(db_url: str, sessions: db.SessionFactory, tmp_path: Path) -> None:
    ids = sp_data.populate(sessions)
    target = tmp_path / "site"
    result = export(_env(tmp_path, db_url), tmp_path, str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ") and str(target) in result.stdout
    page = (target / "status" / "index.html").read_text()
    assert "Acme Status" in page and "API errors" in page
    assert (target / "status" / "incidents" / str(ids["active"]) / "index.html").is_file()
    summary = json.loads((target / "api" / "v2" / "summary.json").read_text())
    assert {c["name"] for c in summary["components"]} >= {"API", "Database"}


def test_export_writes_nothing_to_the_database(db_url: str, sessions: db.SessionFactory, tmp_path: Path) -> None:
    sp_data.populate(sessions)
    engine = db.create_db_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        before = connection.execute(sa.text("SELECT version FROM status_page_version")).scalar_one()
    assert export(_env(tmp_path, db_url), tmp_path, str(tmp_path / "site")).returncode == 0
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version FROM status_page_version")).scalar_one() == before
    engine.dispose()


def test_a_missing_database_is_one_line_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    result = export(_env(tmp_path, f"sqlite:///{missing}"), tmp_path, str(tmp_path / "site"))
    assert "DATABASE_URL" in assert_one_line_error(result, code=1)
    assert not missing.exists() and not (tmp_path / "site").exists()


def test_a_file_in_the_way_is_one_line(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "site").write_text("not a folder")
    line = assert_one_line_error(export(_env(tmp_path, db_url), tmp_path, str(tmp_path / "site")), code=1)
    assert "status page" in line


def test_a_bad_component_is_one_line_exit_2(db_url: str, tmp_path: Path) -> None:
    env = _env(tmp_path, db_url)
    Path(env["CONFIG_FILE"]).write_text("status_page:\n  components:\n    - {key: Bad Key, name: X}\n")
    line = assert_one_line_error(export(env, tmp_path, str(tmp_path / "site")), code=2)
    assert "status_page.components[0].key" in line
