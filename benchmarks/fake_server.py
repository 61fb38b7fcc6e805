"""Subprocess entry: the tests' fake Slack Web API on loopback, steered by one-line commands on stdin.

It runs in a process of its own so that answering the bot's Web API calls (and sleeping through
injected delays) never competes for the load generator's GIL.

Commands (one per line; each answered by one JSON line on stdout):
  delay METHOD SECONDS   hold every response to METHOD ("*" = any) for SECONDS (0 removes it)
  count METHOD           how many calls to METHOD were received
  quit                   stop and exit
"""

from __future__ import annotations

import json
import sys

from fake_slack import FakeSlack


def main() -> int:
    fake = FakeSlack().start()
    print(json.dumps({"url": fake.url, "root": fake.root_url}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "delay" and len(words) == 3:
            fake.delay(words[1], float(words[2]))
            answer: dict[str, object] = {"ok": True}
        elif words[0] == "count" and len(words) == 2:
            answer = {"ok": True, "count": len(fake.calls(words[1]))}
        else:
            answer = {"ok": False, "error": f"unknown command {line.strip()!r}"}
        print(json.dumps(answer), flush=True)
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
