"""`python -m bot ARGS` for the tests: a new process each time, without paying for its imports each time.

Some hundred tests run a short CLI command (`check`, `tracker`, a bad setting's one-line error…)
and read its exit code, stdout and stderr. Started as `python -m bot`, each spent about a second of
CPU importing pydantic, SQLAlchemy and the bot before doing anything: a fifth of the suite's CPU.
Here each command is forked from a server process that imported all that once (the standard
library's forkserver), so every command still runs in a process of its own, with its own
environment, working directory, file descriptors 0–2 and exit code, and `bot/__main__.py` runs as
`__main__` exactly as `python -m bot` runs it. What differs: the interpreter's start-up (its
PYTHON* variables are the test process's), the modules are imported before the environment is
set (the bot reads its settings when it runs, not when it is imported), and an uncaught exception
is printed by multiprocessing (after a "Process …" line) rather than by the interpreter.

tests/cli/test_cli_process.py holds this to the real thing: the same commands started both ways
give the same exit codes and bytes. Commands that serve (`run`) or are signalled start real
processes (tests/bot_process.py).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# What the commands import, loaded once in the server process.
PRELOAD = [
    "bot.cli",
    "bot.settings",
    "storage.db",
    "storage.schema",
    "bot.runtime.check",
    "bot.runtime.logs",
    "bot.reports.tracker",
    "bot.reports.report",
    "bot.reports.postmortem",
    "bot.demo.seed",
    "bot.statuspage.site",
]

_context: Any = None
_lock = threading.Lock()


def _forkserver() -> Any:
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
    return _context


def _child(args: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the forked process: become `python -m bot ARGS` in `cwd` with `env`, output to the files."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()  # TZ may differ from the server's
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, out, os.O_WRONLY), (2, err, os.O_WRONLY)):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    # sys.stdout and sys.stderr already write to fds 1 and 2; stdin is multiprocessing's /dev/null.
    sys.path.insert(0, cwd)  # as `-m` puts the working directory first
    sys.argv = ["-m", *args]  # run_module replaces argv[0] with bot/__main__.py's path, as `-m` does
    try:
        runpy.run_module("bot", run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()  # multiprocessing leaves by os._exit, which skips them
        sys.stdout.flush()
        sys.stderr.flush()


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """As `subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd,
    capture_output=True, text=True, timeout=timeout)`; raises subprocess.TimeoutExpired the same way."""
    environment = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="cli-") as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        Path(out).touch()
        Path(err).touch()
        process = _forkserver().Process(
            target=_child, args=(list(args), environment, str(cwd or os.getcwd()), out, err), daemon=False
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["python", "-m", "bot", *args], timeout)
        stdout = Path(out).read_text(errors="replace")
        stderr = Path(err).read_text(errors="replace")
    return subprocess.CompletedProcess(["python", "-m", "bot", *args], process.exitcode, stdout, stderr)
