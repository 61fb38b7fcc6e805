"""The processes a benchmark run drives: the bot (`python -m bot run`), the bare Bolt app, the fake Slack.

Each runs in its own Python process, so the load generator's threads never share a GIL with what
they measure, and the bot's resident memory is its own (read from /proc/<pid>/status).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from bot_process import child_pids

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
SECRET = "be4c4b3e1c2d5f6a7b8c9d0e1f2a3b4c"  # 32 lowercase hex, as Slack's are
TOKEN = "xoxb-bench-token-0000"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Settings a developer's shell may carry that would point the children somewhere else.
_SCRUBBED = ("CONFIG_FILE", "DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "PORT")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("SLACK_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(BENCH)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (resident now), VmHWM (the peak resident size) and Pss, in kB.

    Pss (proportional set size) counts a page shared by N processes as 1/N in each: the sum over
    the bot's processes is the memory the bot really holds, where a sum of RSS counts shared pages
    (the worker is forked from the front and shares its imported modules) once per process.
    """
    values: dict[str, int] = {}
    for name, keys in (("status", ("VmRSS", "VmHWM")), ("smaps_rollup", ("Pss",))):
        with open(f"/proc/{pid}/{name}") as lines:
            for line in lines:
                key, _, rest = line.partition(":")
                if key in keys:
                    values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0  # it exited meanwhile (the digest's chart process does)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


class Child:
    """A child process with its stderr in a log file under benchmarks/results/."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], *, stdin: bool = False) -> None:
        self.name = name
        self.log_path = RESULTS / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else self._log,
            stderr=self._log,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory_kb(self) -> dict[str, int]:
        return memory_kb(self.pid)

    def worker_pid(self) -> int | None:
        """The bot's worker process (bot/worker.py): forked (same command line) or spawned."""
        own = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        for pid in child_pids(self.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if cmdline == own or b"spawn_main" in cmdline:
                return pid
        return None

    def cpu_seconds(self) -> float:
        """CPU time of the process and its children now alive (the worker included)."""
        return sum(cpu_seconds(pid) for pid in [self.pid, *child_pids(self.pid)])

    def settle(self, *, quiet_fraction: float = 0.05, window: float = 0.2, limit: float = 20.0) -> float:
        """Wait until the process and its children are nearly idle (backlog done); returns the seconds waited."""
        start = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - start < limit:
            time.sleep(window)
            now = self.cpu_seconds()
            if now - before <= quiet_fraction * window:
                break
            before = now
        return time.monotonic() - start

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; its log ends:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def wait_healthy(child: Child, port: int, timeout: float = 60) -> float:
    """Poll GET /healthz until it answers 200; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        child.check_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not become healthy within {timeout:.0f}s (see {child.log_path})")


class Fake(Child):
    """The fake Slack Web API in its own process (benchmarks/fake_server.py)."""

    def __init__(self) -> None:
        super().__init__("fake-slack", [sys.executable, str(BENCH / "fake_server.py")], child_env(), stdin=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            self.check_alive()
        hello = json.loads(first)
        self.url: str = hello["url"]
        self.root: str = hello["root"]

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"fake slack: {answer}")
        return answer

    def delay(self, method: str, seconds: float) -> None:
        self._ask(f"delay {method} {seconds}")

    def count(self, method: str) -> int:
        return int(self._ask(f"count {method}")["count"])

    def response_url(self, name: str = "bench") -> str:
        return f"{self.root}/response_url/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        super().stop()


def start_bot(
    database_url: str, fake: Fake, *, name: str, extra: dict[str, str] | None = None
) -> tuple[Child, int, float]:
    """`python -m bot run` as an operator would start it (`extra`: more settings); returns it, its port
    and its start-up time."""
    port = free_port()
    env = child_env(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL="INFO",
        **(extra or {}),
    )
    bot = Child(name, [sys.executable, "-m", "bot", "run"], env)
    try:
        startup = wait_healthy(bot, port)
    except BaseException:
        bot.stop()
        raise
    return bot, port, startup


def start_bare(fake: Fake, *, pages: str | None = None) -> tuple[Child, int]:
    """The bare Bolt app (bare_app.py); `pages`: a JSON file of fixed GET answers it serves too."""
    port = free_port()
    argv = [sys.executable, str(BENCH / "bare_app.py"), str(port), SECRET, TOKEN, fake.url, *([pages] if pages else [])]
    bare = Child("bare-bolt", argv, child_env())
    try:
        wait_healthy(bare, port)
    except BaseException:
        bare.stop()
        raise
    return bare, port
