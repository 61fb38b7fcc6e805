"""End to end with a real Prometheus: it scrapes the real `python -m bot run` (front and forked worker).

Prometheus scrapes 127.0.0.1:<port>/metrics every second; incidents are declared and acknowledged
through signed Slack requests; the assertions are Prometheus's own answers (/api/v1/query).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import slack_requests as sr
import yaml
from bot_harness import SECRET, declare_values, poll
from bot_process import bot_env, free_port, start_bot, wait_healthy
from cli_process import ForkedProcess
from fake_slack import FakeSlack
from peer_process import PeerProcess
from sqlmodel import select

from bot.ids import Action, Callback
from storage import db
from storage.db import unit_of_work
from storage.models import Incident

pytestmark = pytest.mark.slow

DEBIAN_BINARY = "/usr/bin/prometheus"
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "incident-bot.json"


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or (DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None)
    if found is None:
        reason = f"no Prometheus binary (`prometheus` on PATH or {DEBIAN_BINARY})"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}: CI must run the end-to-end test; install Debian's prometheus package")
        pytest.skip(f"{reason}; install Debian's prometheus package to run it")
    return found


class Prometheus(PeerProcess):
    name = "Prometheus"

    def __init__(self, binary: str, workdir: Path, target: str) -> None:
        super().__init__(workdir)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "incident-bot", "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.launch(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            timeout=30,
        )

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> float | None:
        """The instant value of a single-series expression, None while it has no series."""
        result = self.get("/api/v1/query", query=expr)["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def target_health(self) -> tuple[str, str]:
        targets = self.get("/api/v1/targets")["activeTargets"]
        return (targets[0]["health"], targets[0].get("lastError", "")) if targets else ("none", "")


@pytest.fixture
def running_bot(db_url: str, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[tuple[int, ForkedProcess]]:
    port = free_port()
    log = tmp_path / "bot.log"
    process = start_bot(bot_env(db_url, fake_slack, port), log)
    try:
        wait_healthy(port, process, log)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def prometheus(running_bot: tuple[int, Any], tmp_path: Path) -> Iterator[Prometheus]:
    binary = prometheus_binary()
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    server = Prometheus(binary, workdir, f"127.0.0.1:{running_bot[0]}")
    try:
        yield server
    finally:
        server.stop()


def eventually(prom: Prometheus, expr: str, expected: float, timeout: float = 30) -> None:
    """Poll Prometheus (its scrape every 1 s, our database cache of 5 s) until the query says `expected`."""
    seen: list[float | None] = []

    def check() -> bool:
        seen.append(prom.query(expr))
        return seen[-1] == expected

    poll(check, timeout=timeout, message=f"{expr} == {expected} (last seen {seen[-3:]}); log:\n{prom.log(1500)}")


def test_prometheus_scrapes_the_bot(running_bot: tuple[int, Any], prometheus: Prometheus, db_url: str) -> None:
    port, _process = running_bot
    url = f"http://127.0.0.1:{port}/slack/events"
    poll(lambda: prometheus.target_health()[0] == "up", timeout=30, message=f"target up: {prometheus.target_health()}")
    eventually(prometheus, 'incident_bot_open_incidents{severity="P1"}', 0)

    for title, severity in (("Checkout is down", "P1"), ("Search is slow", "P1"), ("Payments fail", "P0")):
        values = declare_values(title=title, severity=severity)
        status, body, _ = sr.post(url, sr.view_submission(Callback.DECLARE.value, values, secret=SECRET))
        assert status == 200 and "errors" not in body.decode(), body

    engine = db.create_db_engine(db_url)
    try:

        def p0_with_card() -> Incident | None:
            with unit_of_work(db.session_factory(engine)) as session:
                found = session.exec(select(Incident).where(Incident.severity == "P0")).one_or_none()
                return found if found is not None and found.card_ts else None

        p0 = poll(p0_with_card, timeout=30, message="the P0's card posted by the worker")
        click = sr.block_action(
            Action.ACKNOWLEDGE.value, value=p0.id, secret=SECRET, channel_id=p0.channel_id, message_ts=p0.card_ts
        )
        assert sr.post(url, click)[0] == 200
    finally:
        engine.dispose()

    eventually(prometheus, 'incident_bot_open_incidents{severity="P1"}', 2)
    eventually(prometheus, 'incident_bot_open_incidents{severity="P0"}', 1)
    eventually(prometheus, 'incident_bot_open_incidents{severity="P3"}', 0)
    eventually(prometheus, 'incident_bot_mtta_seconds_count{severity="P0"}', 1)
    eventually(prometheus, 'incident_bot_mtta_seconds_bucket{severity="P0",le="+Inf"}', 1)
    eventually(prometheus, 'incident_bot_slack_acks_total{surface="view",status="200"}', 3)
    eventually(prometheus, 'incident_bot_slack_acks_total{surface="action",status="200"}', 1)
    eventually(prometheus, 'incident_bot_slack_ack_duration_seconds_count{surface="view"}', 3)
    eventually(prometheus, "incident_bot_database_up", 1)
    eventually(prometheus, "incident_bot_dead_letters", 0)
    # The cards and thread replies went out: nothing waits in the inbox or the outbox.
    eventually(prometheus, "incident_bot_inbox_backlog", 0)
    eventually(prometheus, "incident_bot_outbox_depth", 0)
    # The sweep runs in the worker process (every 0.5 s here), the front reads its row.
    eventually(prometheus, "incident_bot_sweep_lag_seconds < bool 10", 1)
    assert prometheus.query("incident_bot_sweep_duration_seconds") is not None
    assert prometheus.query('up{job="incident-bot"}') == 1
    # Every query of the Grafana dashboard parses, and finds series unless it asks for failures.
    for expr in dashboard_exprs():
        result = prometheus.get("/api/v1/query", query=expr)["result"]  # asserts status success
        assert result or "slack_errors" in expr or "!=" in expr, expr


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]
