"""GET /metrics: the bot's health and its incidents in the Prometheus text format (prometheus_client).

Two kinds of figures. What only the front sees, the acks and their latency, is counted in memory
here, around the ack (bot/runtime/service.py). Everything else (backlogs, dead letters, the sweep,
Slack's errors, open incidents, MTTA and MTTR) is read from the database when scraped
(bot/runtime/prometheus_db.py), so it is right whichever process or replica did the work.

Each Service has a registry of its own, not prometheus_client's global one: two services in one
process (the tests) do not collide, and nothing else that imports prometheus_client leaks in.
Names carry the `incident_bot_` prefix and their unit; labels are a few fixed values each.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from sqlalchemy.engine import Engine

from bot.runtime.prometheus_db import CACHE_SECONDS, DatabaseCollector

PATH = "/metrics"
SURFACES = ("command", "action", "view", "event", "shortcut", "options", "other")
# Slack wants its answer within 3 s; the edges below it show how close the acks come.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_BY_TYPE = {
    "block_actions": "action",
    "interactive_message": "action",
    "view_submission": "view",
    "view_closed": "view",
    "event_callback": "event",
    "shortcut": "shortcut",
    "message_action": "shortcut",
    "block_suggestion": "options",
}


def surface(payload: Any) -> str:
    """Which Slack surface a request came from (a few fixed values: a label, never a payload's text)."""
    if not isinstance(payload, dict):
        return "other"
    if payload.get("command"):
        return "command"
    return _BY_TYPE.get(str(payload.get("type")), "other")


class Metrics:
    """One service's registry: the ack counters, and the database collector behind them."""

    def __init__(self, engine: Engine, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.engine = engine  # a read engine of its own (storage/readonly.py), disposed by close()
        self.registry = CollectorRegistry()
        self.acks = Counter(
            "incident_bot_slack_acks",
            "Slack requests answered by the front, by surface and HTTP status (Socket Mode: 200 = acked)",
            ["surface", "status"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "incident_bot_slack_ack_duration_seconds",
            "Time from a Slack request read to its answer (verify, store in the inbox), by surface",
            ["surface"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        for name in SURFACES:  # present from the start, so rate() sees the first request
            self.acks.labels(name, "200")
            self.ack_latency.labels(name)
        self.database = DatabaseCollector(engine, cache_seconds=cache_seconds)
        self.registry.register(self.database)

    def observe_ack(self, payload: Any, status: int, seconds: float) -> None:
        """A few microseconds of the ack path: two in-memory updates, no I/O."""
        where = surface(payload)
        self.acks.labels(where, str(status)).inc()
        self.ack_latency.labels(where).observe(seconds)

    def route(self, headers: dict[str, str], _body: bytes) -> tuple[int, bytes, dict[str, str]]:
        # The format the scraper asks for: OpenMetrics for Prometheus, else the classic text format.
        encode, content_type = choose_encoder(headers.get("accept", ""))
        return 200, encode(self.registry), {"Content-Type": content_type}

    def close(self) -> None:
        self.engine.dispose()
