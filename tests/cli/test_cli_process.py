"""The tests' forked CLI (tests/cli_process.py) answers as the real `python -m bot` and `incident-bot` do.

Most CLI tests fork their commands from a process that imported the bot once. These run the same
commands both ways, and through the installed console script, and compare exit codes and output,
so a difference between the fork and the real entry point shows here rather than hiding there;
and a forked `run` (the tests' long-running bots) against a real one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bot_process import bot_env, child_pids, free_port, start_bot, wait_healthy
from cli_process import run_cli
from fake_slack import FakeSlack

from bot.settings import Settings

SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CONFIG_FILE"}

COMMANDS = [
    ("--help",),
    ("tracker",),  # a fresh database: created, then an empty tracker
    ("db", "upgrade"),
    ("seed", "--incidents", "3", "--seed", "1"),
    ("no-such-command",),  # argparse's usage error, exit 2
    ("postmortem", "INC-2026-01-04-001"),  # not found: one line, exit 1
    ("report", "weekly"),
]


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    return {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", **extra}


def real(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_the_fork_answers_as_python_m_bot_and_the_console_script(args: tuple[str, ...], tmp_path: Path) -> None:
    # Each way gets its own folder and database, so each starts from the same nothing.
    folders = [tmp_path / name for name in ("fork", "module", "script")]
    for folder in folders:
        folder.mkdir()
    forked = run_cli(args, env=environment(folders[0]), cwd=folders[0])
    module = real([sys.executable, "-m", "bot", *args], environment(folders[1]), folders[1])
    script = shutil.which("incident-bot")
    assert script is not None, "pip install -e . puts incident-bot on PATH"
    console = real([script, *args], environment(folders[2]), folders[2])
    answers = [
        (result.returncode, result.stdout.replace(str(folder), "DIR"), result.stderr.replace(str(folder), "DIR"))
        for result, folder in zip((forked, module, console), folders, strict=True)
    ]
    assert answers[0] == answers[1] == answers[2]


def test_a_bad_setting_is_the_same_one_line_both_ways(tmp_path: Path) -> None:
    env = environment(
        tmp_path, RESPONSE_TARGETS='{"P0": "soon"}', SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s" * 32
    )
    forked = run_cli(["run"], env=env, cwd=tmp_path)
    module = real([sys.executable, "-m", "bot", "run"], env, tmp_path)
    assert forked.returncode == module.returncode == 2
    assert forked.stderr == module.stderr and forked.stderr.count("\n") == 1 and "RESPONSE_TARGETS" in forked.stderr


def log_lines(text: str) -> list[str]:
    """The bot's own log lines without their times, pids and ports, sorted (threads log in any
    order). Libraries' lines are left out: on a busy machine APScheduler may warn of a skipped run."""
    lines = (line.split(" ", 2)[-1] for line in text.splitlines())
    return sorted(re.sub(r"\d+", "N", line) for line in lines if " incident-bot: " in f" {line}")


@pytest.mark.slow
def test_a_forked_run_serves_and_stops_as_python_m_bot_run(tmp_path: Path, fake_slack: FakeSlack) -> None:
    # Long-running `run` processes in the tests are forked too (tests/bot_process.start_bot): the
    # same start-up, /healthz, worker, SIGTERM and exit code as the real command gives.
    logs: list[str] = []
    for way in ("fork", "module"):
        folder = tmp_path / way
        folder.mkdir()
        port, log = free_port(), folder / "bot.log"
        env = bot_env(f"sqlite:///{folder / 'bot.db'}", fake_slack, port)
        if way == "fork":
            process: Any = start_bot(env, log)
        else:
            with log.open("ab") as sink:
                argv = [sys.executable, "-m", "bot", "run"]
                process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, process, log)
            workers = child_pids(process.pid)
            assert len(workers) == 1, workers  # the worker, forked from the front as in production
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        logs.append(log.read_text())
    assert "worker process N forked" in " ".join(log_lines(logs[0]))
    assert log_lines(logs[0]) == log_lines(logs[1])
