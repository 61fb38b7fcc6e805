"""The bot as a process of its own (`python -m bot run`), for restart, SIGKILL and log tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from bot_harness import SECRET, TOKEN
from cli_process import STDOUT, ForkedProcess, start_cli
from fake_slack import FakeSlack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_env(db_url: str, fake: FakeSlack, port: int) -> dict[str, str]:
    """The environment of a bot process pointed at the fake Web API, with digests off."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "ALERTMANAGER"))},
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "DATABASE_URL": db_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ESCALATION_CHECK_INTERVAL": "0.5",
        "DIGEST_CRON": "",
        "MONTHLY_DIGEST_CRON": "",
        "QUARTERLY_DIGEST_CRON": "",
    }


def start_bot(env: dict[str, str], log: Path, *, start_new_session: bool = False) -> ForkedProcess:
    """`python -m bot run` with `env`, its output appended to `log` (forked: tests/cli_process.py)."""
    return start_cli(["run"], env=env, stdout=log, stderr=STDOUT, start_new_session=start_new_session)


def wait_healthy(port: int, process: ForkedProcess | subprocess.Popen[Any], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    raise AssertionError("bot did not become healthy:\n" + log.read_text())


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid`: the bot's worker process (bot/worker.py), or a chart."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return found
