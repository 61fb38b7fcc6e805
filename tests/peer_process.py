"""A real test peer (Alertmanager, Prometheus) as a process on a free loopback port, with its log."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from bot_harness import poll
from bot_process import free_port


class PeerProcess:
    """Started with `launch(argv)`; ready once `GET /-/ready` answers 200; its output kept in a log file."""

    name = "peer"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{self.name.lower()}.log"

    def launch(self, argv: list[str], *, timeout: float) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        poll(self.ready, timeout=timeout, message=f"{self.name} ready; log:\n{self.log()}")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self, tail: int | None = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:] if tail else text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
