"""Optional parts of the server: routes and jobs that exist only when their settings ask for them."""

from __future__ import annotations

from typing import Any

from bot import alerts, digest
from bot.runtime import Runtime
from bot.runtime.http import HttpServer


def install(server: HttpServer, rt: Runtime) -> None:
    """Add the routes that depend on settings: the Alertmanager webhook when ALERTMANAGER_TOKEN is set."""
    route = alerts.make_route(rt)
    if route is not None:
        server.add_route("POST", alerts.PATH, route)


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    """Scheduled jobs beyond the escalation sweep: the weekly, monthly and quarterly digests."""
    return digest.jobs(rt)
