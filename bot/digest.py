"""The weekly, monthly and quarterly digests (to be written: issue 4)."""

from __future__ import annotations

from typing import Any

from bot.runtime import Runtime


def jobs(rt: Runtime) -> list[dict[str, Any]]:
    return []
