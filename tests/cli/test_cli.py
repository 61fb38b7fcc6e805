"""The incident-bot CLI as an operator runs it: `python -m bot ...` in a subprocess, with a controlled env."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from bot_harness import Bot
from bot_process import free_port
from cli_process import run_cli
from fake_slack import FakeSlack

from bot.settings import Settings
from storage import db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-test"
# A realistic one: the log filter masks every occurrence of a secret, and "s" would mask every letter s.
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CONFIG_FILE"}


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The machine's environment without any bot setting, plus a fresh SQLite database."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'incidents.db'}"
    return env


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env=env, cwd=cwd, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *, code: int | None = None) -> str:
    assert result.returncode != 0, result
    if code is not None:
        assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def http_status(url: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None  # not listening (yet, or any more)


# -- operator mistakes --------------------------------------------------------------------------


@pytest.mark.slow
def test_run_without_a_bot_token_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    cli_env["SLACK_SIGNING_SECRET"] = "s"
    result = cli(cli_env, tmp_path, "run")
    line = assert_one_line_error(result)
    assert "SLACK_BOT_TOKEN" in line
    assert "OAuth & Permissions" in line
    assert result.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": TOKEN}, "SLACK_SIGNING_SECRET"),
        (
            {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "s", "ESCALATION_CONTACTS": '["alice"]'},
            "ESCALATION_CONTACTS",
        ),
        ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "s", "RESPONSE_TARGETS": '{"P0": '}, "RESPONSE_TARGETS"),
        ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "s", "DIGEST_CRON": "0 10 * * funday"}, "DIGEST_CRON"),
        ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "s", "CONFIG_FILE": "missing.yaml"}, "CONFIG_FILE"),
    ],
)
def test_run_with_bad_settings_is_one_line(
    cli_env: dict[str, str], tmp_path: Path, env: dict[str, str], named: str
) -> None:
    cli_env.update(env)
    line = assert_one_line_error(cli(cli_env, tmp_path, "run"), code=2)
    assert named in line
    assert TOKEN not in line


@pytest.mark.slow
def test_unreachable_database_is_one_line_without_the_password(cli_env: dict[str, str], tmp_path: Path) -> None:
    cli_env["DATABASE_URL"] = f"postgresql://bot:hunter2-secret@127.0.0.1:{free_port()}/incidents"
    line = assert_one_line_error(cli(cli_env, tmp_path, "db", "upgrade"), code=1)
    assert "database" in line
    assert "hunter2-secret" not in line


# -- offline commands ---------------------------------------------------------------------------


@pytest.mark.slow
def test_db_upgrade_creates_the_schema_and_can_run_again(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    assert not path.exists()
    first = cli(cli_env, tmp_path, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    created = tables(path)
    assert {"incident", "timeline_entry", "follow_up", "escalation", "outbox", "alembic_version"} <= created
    engine = db.create_db_engine(cli_env["DATABASE_URL"])
    try:
        assert db.is_ready(engine) is True
    finally:
        engine.dispose()

    second = cli(cli_env, tmp_path, "db", "upgrade")
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert tables(path) == created
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


@pytest.mark.slow
def test_postmortem_of_an_unknown_incident_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert cli(cli_env, tmp_path, "db", "upgrade").returncode == 0  # postmortem never creates the database
    result = cli(cli_env, tmp_path, "postmortem", "INC-2099-01-01-001")
    line = assert_one_line_error(result, code=1)
    assert "INC-2099-01-01-001" in line
    assert result.stdout == ""


# -- run and SIGTERM ----------------------------------------------------------------------------


@pytest.fixture
def running_bot(
    cli_env: dict[str, str], tmp_path: Path, fake_slack: FakeSlack
) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    cli_env.update(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.url,
        PORT=str(port),
        ESCALATION_CHECK_INTERVAL="1",
        LOG_LEVEL="DEBUG",  # the most verbose the logs get: still no token in them
    )
    # A file, not a pipe: a DEBUG log can fill a pipe nobody reads and stall the bot mid-request.
    log = tmp_path / "bot.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=cli_env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 20
        while http_status(f"http://127.0.0.1:{port}/healthz", timeout=1) != 200:
            if process.poll() is not None:
                pytest.fail(f"the bot exited with {process.returncode}: {log.read_text()}")
            assert time.monotonic() < deadline, "/healthz never answered 200"
            time.sleep(0.1)
        yield process, port, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_sigterm_shuts_down_cleanly(
    running_bot: tuple[subprocess.Popen[str], int, Path], fake_slack: FakeSlack
) -> None:
    process, port, log = running_bot
    # It talks to SLACK_API_URL with the token, so a token leak in the log would be a real one.
    auth = fake_slack.wait_for("auth.test", timeout=10)
    assert auth[0].token == TOKEN

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0, log.read_text()
    stderr = log.read_text()
    assert "Traceback" not in stderr
    assert TOKEN not in stderr
    assert SIGNING_SECRET not in stderr
    assert "incident-bot: stopped" in stderr
    assert http_status(f"http://127.0.0.1:{port}/healthz", timeout=1) is None


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight(running_bot: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, port, log = running_bot
    body = b"token=x&command=%2Fincident&text=help"
    request = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        # One answered request first proves a server thread owns this connection; then a second
        # request whose body is still arriving when SIGTERM comes: the server must wait for it.
        request.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while not first.endswith(b"\r\n\r\nok"):
            chunk = request.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200"), first
        request.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        process.send_signal(signal.SIGTERM)

        deadline = time.monotonic() + 5
        while http_status(f"http://127.0.0.1:{port}/healthz", timeout=1) is not None:
            assert time.monotonic() < deadline, "still taking new requests after SIGTERM\n" + log.read_text()
            time.sleep(0.05)
        time.sleep(0.3)
        assert process.poll() is None, "exited with a request still in flight"

        request.sendall(body[10:])
        response = b""
        while chunk := request.recv(65536):
            response += chunk
    finally:
        request.close()
    # Unsigned, so Bolt refuses it: what matters is that it was answered, not dropped.
    assert response.startswith(b"HTTP/1.1 401"), response[:200]

    assert process.wait(timeout=15) == 0, log.read_text()
    stderr = log.read_text()
    assert "Traceback" not in stderr
    assert TOKEN not in stderr


# -- /healthz on the in-process bot -------------------------------------------------------------


def test_healthz_follows_migrations_and_the_database(bot: Bot, tmp_path: Path) -> None:
    assert bot.get("/healthz") == (200, b"ok")

    bot.service.health.migrated.clear()
    try:
        assert bot.get("/healthz")[0] == 503
    finally:
        bot.service.health.migrated.set()
    assert bot.get("/healthz")[0] == 200

    real = bot.service.rt.engine
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    unreachable = sa.create_engine(f"sqlite:///{blocker}/incidents.db")
    bot.service.rt.engine = unreachable
    try:
        assert bot.get("/healthz") == (503, b"unavailable")
    finally:
        bot.service.rt.engine = real
        unreachable.dispose()
    assert bot.get("/healthz") == (200, b"ok")


@pytest.mark.slow
def test_a_reader_that_leaves_early_ends_the_tracker_without_a_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert cli(cli_env, tmp_path, "seed", "--incidents", "300", "--seed", "3").returncode == 0
    # `incident-bot tracker | head -1`: far more than a pipe holds, and the reader closes after a line.
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "tracker"],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("# ")
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
