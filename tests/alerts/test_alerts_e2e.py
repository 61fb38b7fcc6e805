"""End to end with a real Alertmanager: alerts posted to it reach the bot as webhook notifications.

Alertmanager runs on loopback without clustering, routes by alertname with short group timings,
and sends to the in-process bot with its bearer token; a second route sends with a wrong token.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from bot_harness import Bot, poll
from fake_slack import Call
from peer_process import PeerProcess

from bot.incidents import queries as incident_queries
from bot.runtime.alert_route import PATH
from storage.db import unit_of_work
from storage.models import Incident

pytestmark = pytest.mark.slow

TOKEN = "am-secret-0123456789abcdef"
DEBIAN_BINARY = "/usr/bin/prometheus-alertmanager"
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def alertmanager_binary() -> str:
    found = shutil.which("alertmanager") or (DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None)
    if found is None:
        reason = f"no Alertmanager binary (`alertmanager` on PATH or {DEBIAN_BINARY})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must run the end-to-end test; install prometheus-alertmanager")
        pytest.skip(f"{reason}; install prometheus-alertmanager to run it")
    return found


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Alertmanager(PeerProcess):
    name = "Alertmanager"

    """One Alertmanager process on loopback, with no cluster peers."""

    def __init__(self, binary: str, workdir: Path, bot_url: str) -> None:
        super().__init__(workdir)
        hook = bot_url + PATH

        def receiver(name: str, credentials: str) -> dict[str, Any]:
            return {
                "name": name,
                "webhook_configs": [
                    {
                        "url": hook,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": credentials}},
                    }
                ],
            }

        config = {
            "route": {
                "receiver": "incident-bot",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
                "routes": [{"receiver": "wrong-token", "matchers": ['route="wrong-token"']}],
            },
            "receivers": [receiver("incident-bot", TOKEN), receiver("wrong-token", "not-the-token")],
        }
        config_path = workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(config))
        (workdir / "data").mkdir()
        self.launch(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            timeout=15,
        )

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def failed_webhook_notifications(self) -> float:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            lines = response.read().decode().splitlines()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith("alertmanager_notifications_failed_total{") and 'integration="webhook"' in line
        )


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[Callable[[Bot], Alertmanager]]:
    binary = alertmanager_binary()
    started: list[Alertmanager] = []

    def start(bot: Bot) -> Alertmanager:
        workdir = tmp_path / f"am{len(started)}"
        workdir.mkdir()
        manager = Alertmanager(binary, workdir, bot.url)
        started.append(manager)
        return manager

    yield start
    for manager in started:
        manager.stop()


def alert(name: str, *, ends: datetime | None = None, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    annotations = {"summary": f"{name} on {labels.get('instance', 'all')}"} if name == "HighLatency" else {}
    if name == "DiskFull":
        annotations["runbook_url"] = "https://runbooks.example/disk-full"
    return {
        "labels": {"alertname": name, **labels},
        "annotations": annotations,
        "startsAt": iso(STARTED),
        "endsAt": iso(ends or now + timedelta(hours=1)),
        "generatorURL": f"http://prometheus.example:9090/graph?g0.expr={name}",
    }


def thread_texts(bot: Bot, incident: Incident) -> list[str]:
    return [
        str(c.params.get("text", ""))
        for c in bot.fake.calls("chat.postMessage")
        if c.params.get("thread_ts") == incident.card_ts and c.status == 200
    ]


def card_posts(call: Call) -> bool:
    return "thread_ts" not in call.params and call.params.get("channel") == "ops-incidents"


def test_alertmanager_drives_incidents_end_to_end(
    make_bot: Callable[..., Bot], start_alertmanager: Callable[[Bot], Alertmanager]
) -> None:
    bot = make_bot(alertmanager_token=TOKEN)
    am = start_alertmanager(bot)

    # Two groups fire, and one alert goes to the receiver holding the wrong token.
    am.post_alerts(
        [
            alert("DiskFull", instance="db-1", severity="critical"),
            alert("HighLatency", instance="api-1", severity="warning"),
            alert("WrongTokenAlert", route="wrong-token", severity="critical"),
        ]
    )
    found = poll(
        lambda: (lambda i: i if len(i) == 2 and all(x.card_ts for x in i) else None)(bot.incidents()),
        timeout=15,
        message="an incident per alert group",
    )
    by_name = {i.alert_name: i for i in found}
    assert set(by_name) == {"DiskFull", "HighLatency"}, am.log()
    disk, latency = by_name["DiskFull"], by_name["HighLatency"]
    assert (disk.title, disk.severity, disk.source) == ("DiskFull", "P0", "alertmanager")
    assert disk.runbook == "https://runbooks.example/disk-full"
    assert (latency.title, latency.severity) == ("HighLatency on api-1", "P2")
    assert disk.started_at == STARTED
    bot.fake.wait_for("chat.postMessage", count=2, where=card_posts)
    poll(lambda: thread_texts(bot, disk), message="the firing alerts listed in the thread")
    assert "1 alert firing" in thread_texts(bot, disk)[0]

    # The wrong token was refused (401), so its alert opened nothing.
    poll(lambda: am.failed_webhook_notifications() >= 1, timeout=10, message="the wrong-token notification failing")
    refused = [line for line in am.log(tail=None).splitlines() if "wrong-token/webhook" in line]
    assert refused and all("status code 401" in line for line in refused), am.log()
    assert {i.alert_name for i in bot.incidents()} == {"DiskFull", "HighLatency"}

    # A second DiskFull alert joins the group and the first repeats: an update, not an incident.
    am.post_alerts(
        [
            alert("DiskFull", instance="db-1", severity="critical"),
            alert("DiskFull", instance="db-2", severity="critical"),
        ]
    )
    poll(
        lambda: any('instance="db-2"' in t for t in thread_texts(bot, disk)),
        timeout=10,
        message="the new alert noted in the thread",
    )
    assert len(bot.incidents()) == 2
    assert len([t for t in thread_texts(bot, disk) if "alerts changed" in t]) == 1

    # Both DiskFull alerts end: the thread says so and the incident is mitigated, not resolved.
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    am.post_alerts(
        [
            alert("DiskFull", instance="db-1", severity="critical", ends=ended),
            alert("DiskFull", instance="db-2", severity="critical", ends=ended),
        ]
    )
    poll(
        lambda: any("all alerts resolved" in t for t in thread_texts(bot, disk)),
        timeout=10,
        message="the resolved notification in the thread",
    )
    with unit_of_work(bot.sessions) as session:
        after = incident_queries.get(session, disk.id)
        still_firing = incident_queries.get(session, latency.id)
    assert after.status == "Mitigated" and after.mitigated_at == ended
    assert still_firing.status == "Investigating"
    assert len(bot.incidents()) == 2
    bot.fake.assert_no_more("chat.postMessage", 2, where=card_posts, settle=0.5)
