"""The on-call domain speaks no Slack: importing all of it loads neither slack_sdk nor slack_bolt."""

from __future__ import annotations

import subprocess
import sys


def test_no_slack_imports() -> None:
    code = (
        "import sys\n"
        "import bot.oncall.config, bot.oncall.schedules, bot.oncall.pages, bot.oncall.service\n"
        "import bot.oncall.email, bot.oncall.webhook, bot.oncall.ical, storage.oncall\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_sdk', 'slack_bolt')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
