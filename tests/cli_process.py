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

`start_cli` starts a long-running command (`run`) the same way and hands back a Popen-like handle:
its pid is the bot's own, so SIGKILL, SIGSTOP and SIGTERM reach it as they would reach
`python -m bot run`, and its exit code (or -signal) comes back through the forkserver. Forked from
a process with no thread, `run` forks its worker exactly as it does in production.

tests/cli/test_cli_process.py holds this to the real thing: the same commands started both ways
give the same exit codes and bytes, and a forked and a real `run` serve and stop alike. A test
that reads a live pipe from the process (`tracker | head`) starts a real one.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import signal
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
    "bot.runtime.service",  # what `run` imports
    "bot.runtime.worker_process",  # what a bot in a test process forks its worker from
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


def start_forkserver() -> None:
    """Start this process's forkserver now, with PRELOAD.

    A process has one forkserver, and its preload is whatever was set last before it started. A
    bot started inside a test (bot/runtime/worker_process.py) sets its own, its worker module
    alone, and starts it: every command forked after that imported the rest again, up to 0.7 s of
    CPU each. Started first, with PRELOAD (the worker module included), it serves both.
    """
    _forkserver()
    multiprocessing.forkserver.ensure_running()


# Where a forked command's fds 1 and 2 go: a file's path (opened for appending), os.devnull, or
# STDOUT for fd 2 (fd 1's file). Paths, not file objects: the forked process is the forkserver's
# child, not ours, so it cannot inherit our descriptors.
STDOUT = "<stdout>"


def _child(args: list[str], env: dict[str, str], cwd: str, out: str, err: str, new_session: bool = False) -> None:
    """In the forked process: become `python -m bot ARGS` in `cwd` with `env`, output to the files."""
    if new_session:
        os.setsid()  # its own process group, as Popen(start_new_session=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()  # TZ may differ from the server's
    for fd, path in ((1, out), (2, err)):
        if path == STDOUT:
            os.dup2(1, fd)
            continue
        opened = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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


_started: list[ForkedProcess] = []  # the ones that may still run, for _kill_leftovers


class ForkedProcess:
    """The part of subprocess.Popen the tests use, for a command forked by the forkserver."""

    def __init__(self, args: Sequence[str], process: Any) -> None:
        self.args = ["python", "-m", "bot", *args]
        self._process = process
        self.pid: int = process.pid

    @property
    def returncode(self) -> int | None:
        code = self._process.exitcode
        return None if code is None else int(code)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self.returncode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdout: str | Path = os.devnull,
    stderr: str | Path = STDOUT,
    start_new_session: bool = False,
) -> ForkedProcess:
    """As `subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, stdout=…,
    stderr=…, start_new_session=…)`, with stdout and stderr given as paths (appended to)."""
    environment = dict(os.environ if env is None else env)
    process = _forkserver().Process(
        target=_child,
        args=(list(args), environment, str(cwd or os.getcwd()), str(stdout), str(stderr), start_new_session),
        daemon=False,
    )
    process.start()
    forked = ForkedProcess(args, process)
    _started[:] = [p for p in _started if p.returncode is None] + [forked]
    return forked


@atexit.register
def _kill_leftovers() -> None:
    # multiprocessing joins every child it started when this process exits (its own atexit,
    # registered earlier, so run after this one): a bot a failed test left running would hang
    # the test worker there. A Popen'd one would just be orphaned; so are these, killed.
    for forked in _started:
        forked.kill()


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """As `subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd,
    capture_output=True, text=True, timeout=timeout)`; raises subprocess.TimeoutExpired the same way."""
    with tempfile.TemporaryDirectory(prefix="cli-") as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        process = start_cli(args, env=env, cwd=cwd, stdout=out, stderr=err)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        stdout = Path(out).read_text(errors="replace")
        stderr = Path(err).read_text(errors="replace")
    return subprocess.CompletedProcess(process.args, code, stdout, stderr)
