"""Chromium for the browser tests: Debian's /usr/bin/chromium, driven by Playwright (no browser download).

Without it the tests skip, except under CI=true, where they fail: CI installs it (.ci/run), and
says why in CHROMIUM_UNAVAILABLE when it could not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def require_chromium() -> None:
    """Call at module level."""
    if Path(CHROMIUM).exists():
        return
    reason = os.environ.get("CHROMIUM_UNAVAILABLE")
    if os.environ.get("CI") == "true" and not reason:
        pytest.fail("Chromium is not installed, and CI must run the browser tests (.ci/run installs it)")
    pytest.skip(f"Chromium is not installed: {reason or 'apt-get install chromium'}", allow_module_level=True)
