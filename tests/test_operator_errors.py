"""An operator's mistakes (issue 12): each gives one line naming the setting, no traceback, the
documented exit code, and leaves nothing behind on disk.

The commands run as an operator runs them: `python -m bot ...` in a subprocess, in an empty folder.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from bot_harness import SECRET, TOKEN, settings_for
from bot_process import bot_env, free_port
from cli_process import run_cli
from fake_slack import FakeSlack
from slack_sdk import WebClient

from bot.runtime import logs
from bot.runtime.service import Service
from bot.settings import Settings, SettingsError
from bot.slack.context import Identity, TokenRejected
from storage import db, urls

ROOT = Path(__file__).resolve().parents[1]
SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CONFIG_FILE"}
SAMPLE_ID = "INC-2026-01-04-001"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder to run in (no .env), whose contents the test compares before and after."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def env(workdir: Path) -> dict[str, str]:
    """The machine's environment without any bot setting; a database URL in `workdir`, not created."""
    clean = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    clean["PYTHONPATH"] = str(ROOT)
    clean["DATABASE_URL"] = f"sqlite:///{workdir / 'incidents.db'}"
    return clean


def with_slack(env: dict[str, str], **extra: str) -> dict[str, str]:
    """What `run` needs to get past its own checks (nothing listens at SLACK_API_URL)."""
    return {
        **env,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        **extra,
    }


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env=env, cwd=cwd, timeout=60)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"/" for p in folder.rglob("*")}


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def run_and_compare(env: dict[str, str], workdir: Path, args: tuple[str, ...], code: int, *names: str) -> str:
    before = snapshot(workdir)
    line = one_line_error(cli(env, workdir, *args), code, *names)
    assert snapshot(workdir) == before, "the command left something on disk"
    return line


# -- 1. DATABASE_URL: its form and backend (settings, exit 2), a file that is not a database (exit 1)


COMMANDS = [("run",), ("tracker",), ("db", "upgrade")]


@pytest.mark.slow
@pytest.mark.parametrize("url", ["garbage", "garbage://x", "mysql://bot:hunter2-pw@127.0.0.1/x"])
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unusable_database_url_is_one_line(
    env: dict[str, str], workdir: Path, url: str, args: tuple[str, ...]
) -> None:
    line = run_and_compare(with_slack(env, DATABASE_URL=url), workdir, args, 2, "DATABASE_URL")
    assert "hunter2-pw" not in line
    assert ("unsupported" in line) == ("://" in url)


@pytest.mark.slow
@pytest.mark.parametrize("args", [*COMMANDS, ("postmortem", SAMPLE_ID), ("seed", "--incidents", "1")], ids=" ".join)
def test_a_file_that_is_not_a_database_is_one_line(env: dict[str, str], workdir: Path, args: tuple[str, ...]) -> None:
    (workdir / "notadb.txt").write_text("shopping list\n- milk\n")
    run_and_compare(
        with_slack(env, DATABASE_URL="sqlite:///notadb.txt"), workdir, args, 1, "DATABASE_URL", "not a SQLite database"
    )


def test_a_file_that_is_not_a_database_is_explained_where_it_is_first_opened(tmp_path: Path) -> None:
    # The check of the file's first bytes comes first; this is the net behind it (a file replaced
    # after the check, or a SQLite error the check does not foresee).
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, but long enough to have a header\n" * 10)
    url = f"sqlite:///{text}"
    engine = db.create_db_engine(url)
    try:
        not_a_database = r"^DATABASE_URL: .*notes.db is not a SQLite database$"
        with pytest.raises(urls.DatabaseUrlError, match=not_a_database), urls.explained(url):
            db.upgrade(engine)
        # Other errors pass through unchanged.
        with pytest.raises(sa.exc.OperationalError), urls.explained(url):
            raise sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))
    finally:
        engine.dispose()


def test_the_supported_urls_pass() -> None:
    for url in (
        "sqlite:///incidents.db",
        "sqlite:////var/lib/bot/incidents.db",
        "sqlite://",
        "postgresql://bot:pw@db/incidents",
        "postgresql+psycopg://bot@db:5433/incidents",
        "postgres://bot@db/incidents",
    ):
        assert urls.url_problem(url) is None, url
    assert "psycopg 3" in (urls.url_problem("postgresql+psycopg2://bot@db/x") or "")


# -- 2. CONFIG_FILE that is not a mapping --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("text", "kind"), [("- P0\n- P1\n", "a list"), ("just some words\n", "a single str value")])
def test_a_config_file_that_is_not_a_mapping_is_one_line(
    env: dict[str, str], workdir: Path, text: str, kind: str
) -> None:
    (workdir / "bot.yaml").write_text(text)
    line = run_and_compare({**env, "CONFIG_FILE": "bot.yaml"}, workdir, ("tracker",), 2, "CONFIG_FILE")
    assert line.endswith(f"must be a mapping of settings (lines of `key: value`), not {kind}")


def test_an_empty_config_file_is_an_empty_mapping(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing set yet\n")
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "empty.yaml"))
    assert Settings(_env_file=None).incident_channel == "ops-incidents"  # type: ignore[call-arg]


# -- 3. PORT already in use ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_port_in_use_is_one_line(env: dict[str, str], workdir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = run_and_compare(with_slack(env, PORT=str(port)), workdir, ("run",), 2, "PORT", str(port))
    assert "already in use" in line


def test_a_port_taken_after_the_check_is_the_same_line(tmp_path: Path, fake_slack: FakeSlack) -> None:
    # Between run's check and the server's bind another process can take the port: Service says
    # the same, and stops what it started.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        service = Service(settings_for(f"sqlite:///{tmp_path / 'x.db'}", fake_slack, port=port))
        with pytest.raises(SettingsError, match=rf"^PORT {port} is already in use on 127.0.0.1"):
            service.start()
    assert service.stopping.is_set()


# -- 4. durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESPONSE_TARGETS", '{"P0": "-PT5M"}'),
        ("RESPONSE_TARGETS", '{"P3": 0}'),
        ("RESOLUTION_TARGETS", '{"P1": "-60"}'),
        ("UPDATE_REMINDER", '{"P0": "PT0S"}'),
        ("ESCALATION_REPEAT", "-5"),
        ("ESCALATION_REPEAT", "0"),
        ("ESCALATION_CHECK_INTERVAL", "0"),
        ("ESCALATION_CHECK_INTERVAL", "-1"),
        ("ESCALATION_MAX_REPEATS", "-1"),
        ("TIMELINE_BACKFILL_INTERVAL", "-300"),
        ("RETENTION", "-P1D"),
    ],
)
def test_a_zero_or_negative_duration_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.delenv("CONFIG_FILE", raising=False)
    monkeypatch.setenv(name, value)
    from bot.settings import load_settings

    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value).startswith(f"invalid settings: {name}:"), caught.value
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_negative_target_stops_run_in_one_line(env: dict[str, str], workdir: Path) -> None:
    run_and_compare(
        with_slack(env, RESPONSE_TARGETS='{"P0": "-PT5M"}'), workdir, ("run",), 2, "RESPONSE_TARGETS", "positive"
    )


# -- 5. read-only commands never create a database or a folder -----------------------------------


READ_ONLY = [("postmortem", SAMPLE_ID), ("report", "weekly"), ("tracker",), ("outbox",)]


@pytest.mark.slow
@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_missing_folder_is_one_line(
    env: dict[str, str], workdir: Path, args: tuple[str, ...]
) -> None:
    env["DATABASE_URL"] = f"sqlite:///{workdir}/no/such/dir/x.db"
    run_and_compare(env, workdir, args, 1, "DATABASE_URL", "no folder")
    assert not (workdir / "no").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args", READ_ONLY[:3], ids=" ".join)
def test_a_read_only_command_on_a_missing_file_is_one_line(
    env: dict[str, str], workdir: Path, args: tuple[str, ...]
) -> None:
    run_and_compare(env, workdir, args, 1, "DATABASE_URL", "no database at")


@pytest.mark.slow
@pytest.mark.parametrize("args", [("run",), ("seed", "--incidents", "1"), ("db", "upgrade")], ids=" ".join)
def test_a_creating_command_makes_the_file_but_not_a_missing_folder(
    env: dict[str, str], workdir: Path, args: tuple[str, ...]
) -> None:
    env["DATABASE_URL"] = f"sqlite:///{workdir}/no/such/dir/x.db"
    run_and_compare(with_slack(env), workdir, args, 1, "DATABASE_URL", "create the folder first")


@pytest.mark.slow
@pytest.mark.parametrize(("token", "named"), [(None, "is not set"), ("xoxp-user-token-1234", "is not a bot token")])
def test_report_post_without_a_bot_token_creates_nothing(
    env: dict[str, str], workdir: Path, token: str | None, named: str
) -> None:
    if token:
        env["SLACK_BOT_TOKEN"] = token
    run_and_compare(env, workdir, ("report", "weekly", "--post"), 2, "SLACK_BOT_TOKEN", named)


@pytest.mark.slow
def test_seed_creates_a_new_file_in_an_existing_folder(env: dict[str, str], workdir: Path) -> None:
    result = cli(env, workdir, "seed", "--incidents", "1", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert (workdir / "incidents.db").is_file()


# -- 6. a token Slack rejects for good ---------------------------------------------------------------


@pytest.mark.slow
def test_a_rejected_token_stops_both_processes_in_one_line(tmp_path: Path, fake_slack: FakeSlack) -> None:
    fake_slack.fail("auth.test", status=200, error="invalid_auth", times=None)
    config = tmp_path / "bot.yaml"
    config.write_text("incident_channel: ops-incidents\nescalaton_repeat: 60\noncall: {}\nstatus_page: {}\n")
    port = free_port()
    env = {**bot_env(f"sqlite:///{tmp_path / 'bot.db'}", fake_slack, port), "CONFIG_FILE": str(config)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("incident-bot: SLACK_BOT_TOKEN was rejected by Slack (invalid_auth)"), lines
    assert [line for line in lines if "SLACK_BOT_TOKEN" in line] == lines[-1:]
    assert TOKEN not in result.stderr
    # Both processes end: the worker was told to stop, not left behind.
    (forked,) = [line for line in lines if "worker process" in line and ("forked" in line or "spawned" in line)]
    worker = int(forked.split("worker process ")[1].split()[0])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{worker}").exists() and "zombie" not in _state(worker):
        assert time.monotonic() < deadline, f"worker process {worker} still runs"
        time.sleep(0.05)
    # 8: the typo in CONFIG_FILE is one WARNING at start, with the key it was meant to be; the
    # sections other parts of the bot read are known keys.
    warnings = [line for line in lines if "CONFIG_FILE" in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0], lines
    assert "'escalaton_repeat' is ignored (did you mean 'escalation_repeat'?)" in warnings[0]
    # And Alembic's INFO lines stay out of an INFO log.
    assert not [line for line in lines if "alembic" in line or "Context impl" in line], lines


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return "zombie"


@pytest.mark.parametrize(
    ("status", "error", "logged"),
    [
        (500, None, "fatal_error, HTTP 500"),
        (429, None, "ratelimited, HTTP 429"),
        (503, None, "service_unavailable, HTTP 503"),
    ],
)
def test_a_slack_that_does_not_answer_is_retried_with_its_reason(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, status: int, error: str | None, logged: str
) -> None:
    fake_slack.fail("auth.test", status=status, times=None, error=error)
    client = WebClient(token=TOKEN, base_url=fake_slack.url)  # no retry handlers: one call, one answer
    identity = Identity()
    with caplog.at_level(logging.WARNING):
        assert identity.learn(client) is False
    assert f"auth.test failed ({logged}" in caplog.text
    fake_slack.heal()
    assert identity.learn(client) is True


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "account_inactive", "not_authed"])
def test_a_token_rejected_for_good_is_not_retried(fake_slack: FakeSlack, error: str) -> None:
    fake_slack.fail("auth.test", status=200, error=error, times=None)
    with pytest.raises(TokenRejected, match=rf"^SLACK_BOT_TOKEN was rejected by Slack \({error}\)"):
        Identity().learn(WebClient(token=TOKEN, base_url=fake_slack.url))


def test_a_connection_error_is_retried_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    client = WebClient(token=TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/", timeout=2)
    with caplog.at_level(logging.WARNING):
        assert Identity().learn(client) is False
    assert "auth.test failed (URLError: [Errno 111] Connection refused)" in caplog.text


# -- 7. secrets that cannot be Slack's, and a masker that masks only secrets -----------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLACK_SIGNING_SECRET", "x"),
        ("SLACK_SIGNING_SECRET", "8F14E45FCEEA167A5A36DEDD4BEA2543"),
        ("SLACK_BOT_TOKEN", "xoxp-1234-user-token"),
        ("SLACK_APP_TOKEN", "xoxb-wrong-kind-of-token"),
        ("ALERTMANAGER_TOKEN", "letmein"),
    ],
)
def test_a_secret_that_cannot_be_slacks_is_one_line(env: dict[str, str], workdir: Path, name: str, value: str) -> None:
    line = run_and_compare(with_slack(env, **{name: value}), workdir, ("run",), 2, name)
    assert line.startswith(f"incident-bot: {name} ")
    if len(value) > 1:
        assert value not in line


def test_valid_looking_secrets_pass() -> None:
    values: dict[str, Any] = {
        "slack_bot_token": "xoxb-1234-5678-abcdef",
        "slack_signing_secret": "8f14e45fceea167a5a36dedd4bea2543",
        "slack_app_token": "xapp-1-A0-1234-abcdef",
        "alertmanager_token": "0123456789abcdef",
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert settings.secret_problems() == []
    settings.require_for_run()


def test_the_log_masker_masks_whole_secrets_and_never_a_short_substring() -> None:
    record = logging.LogRecord("alembic", logging.INFO, __file__, 1, "Context impl SQLiteImpl.", None, None)
    assert logs.RedactingFilter(("x", "")).filter(record)
    assert record.getMessage() == "Context impl SQLiteImpl."
    assert logs.redact("signing 8f14e45fceea167a5a36dedd4bea2543 here", ("8f14e45fceea167a5a36dedd4bea2543",)) == (
        "signing [redacted] here"
    )
    assert logs.redact("Content-Type: x", ("x",)) == "Content-Type: x"


# -- 8. unknown CONFIG_FILE keys ------------------------------------------------------------------


def test_unknown_config_keys_are_named_with_the_nearest_known_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("INCIDENT_CHANNEL: x\nresponse_target: {}\noncall: {}\nstatus_page: {}\nfrobnicate: 1\n")
    monkeypatch.setenv("CONFIG_FILE", str(config))
    warnings = Settings(_env_file=None).config_file_warnings()  # type: ignore[call-arg]
    assert warnings == [
        f"CONFIG_FILE {str(config)!r}: unknown key 'response_target' is ignored (did you mean 'response_targets'?)",
        f"CONFIG_FILE {str(config)!r}: unknown key 'frobnicate' is ignored",
    ]
    monkeypatch.delenv("CONFIG_FILE")
    assert Settings(_env_file=None).config_file_warnings() == []  # type: ignore[call-arg]


# -- 9. incident ids --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["bogus", "INC-2026-1-4-1", "42"])
def test_a_malformed_incident_id_says_what_one_looks_like(env: dict[str, str], workdir: Path, bad: str) -> None:
    # Said before the database is opened: here there is none.
    line = run_and_compare(env, workdir, ("postmortem", bad), 1, "expected an incident id like INC-2026-01-04-001")
    assert bad.upper() in line


@pytest.mark.slow
def test_a_lower_case_incident_id_is_the_same_incident(env: dict[str, str], workdir: Path) -> None:
    seeded = cli(env, workdir, "seed", "--incidents", "3", "--seed", "7")
    assert seeded.returncode == 0, seeded.stderr
    with sqlite3.connect(workdir / "incidents.db") as connection:
        (incident_id,) = connection.execute("SELECT id FROM incident ORDER BY id LIMIT 1").fetchone()
    result = cli(env, workdir, "postmortem", incident_id.lower())
    assert result.returncode == 0, result.stderr
    assert incident_id in result.stdout


# -- Alembic's start-up lines ------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "alembic"), [("INFO", logging.WARNING), ("DEBUG", logging.DEBUG)])
def test_alembic_logs_below_warning_only_when_debugging(level: str, alembic: int) -> None:
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    try:
        logs.configure(level)
        assert logging.getLogger("alembic").getEffectiveLevel() == alembic
    finally:
        root.handlers[:], root.level = handlers, root_level
        logging.getLogger("alembic").setLevel(logging.NOTSET)
