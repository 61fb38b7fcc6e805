"""Optional parts of the server: routes and jobs that exist only when their settings ask for them."""

from __future__ import annotations

from typing import Any

from bot.runtime import Runtime
from bot.server import Server


def install(server: Server, rt: Runtime) -> None:
    """Add the routes that depend on settings (the Alertmanager webhook)."""


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    """Scheduled jobs beyond the escalation sweep (the digests)."""
    return []
