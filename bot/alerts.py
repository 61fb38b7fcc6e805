"""Alertmanager webhook -> incidents (to be written: issue 5)."""

from __future__ import annotations

from bot.runtime import Runtime
from bot.server import Route

PATH = "/alerts/alertmanager"


def make_route(rt: Runtime) -> Route | None:
    """The webhook handler, or None when ALERTMANAGER_TOKEN is unset (endpoint off)."""
    return None
