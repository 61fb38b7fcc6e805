"""The tests' forked CLI (tests/cli_process.py) answers as the real `python -m bot` and `incident-bot` do.

Most CLI tests fork their commands from a process that imported the bot once. These run the same
commands both ways, and through the installed console script, and compare exit codes and output,
so a difference between the fork and the real entry point shows here rather than hiding there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import run_cli

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

