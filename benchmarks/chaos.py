"""The chaos run: replicas killed, stalled and cut off while Slack misbehaves; then a checker.

Two bot replicas share one PostgreSQL database (through a TCP proxy, so the connection can be
cut) and one replica runs on SQLite; all three are real `python -m bot run` processes pointed at
one fake Slack Web API. A stream of declares (modal submissions), thread replies, Acknowledge
and Mitigated clicks is sent to them, signed as Slack signs, and retried as Slack retries (same
payload, up to three times) when an answer is not a 200. Meanwhile, at random: a replica's whole
process group is SIGKILLed and restarted, a replica's front or worker is SIGSTOPped for a few
seconds, Slack answers bursts of 429 and 500 or answers slowly, and PostgreSQL is cut off.

Then the faults stop, the replicas drain, and the checker compares what the fake Slack took
(calls answered ok) with what the bot acked (answered 200):
- lost: an acked declare with no card, an acked click with no thread reply saying so, an acked
  reply with no timeline entry;
- duplicated: more than one card for a declare, more than one reply for a click;
- reordered: an incident whose thread says "Mitigated" before "Acknowledged" (each click is
  sent only once the one before it was applied, as a person clicks).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import slack_requests as sr
from bot_harness import SECRET, declare_values
from bot_process import bot_env, free_port
from conftest import create_pg_database, drop_pg_database
from fake_slack import FakeSlack
from pg_proxy import PgProxy
from sqlmodel import select

from bot.ids import Action, Callback
from storage import db
from storage.models import Incident, TimelineEntry


@dataclass
class Replica:
    name: str
    database_url: str
    fake: FakeSlack
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = bot_env(self.database_url, self.fake, self.port)
        env["ESCALATION_CHECK_INTERVAL"] = "2"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def pids(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        children: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                children += [int(c) for c in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
        return [self.process.pid, *children]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"


@dataclass
class Ledger:
    """What the load generator was told "done" (HTTP 200) for."""

    declared: set[str] = field(default_factory=set)  # titles
    # Incident ids repeat across the two databases, so each entry names its cluster too.
    acked_clicks: list[tuple[str, str, str]] = field(default_factory=list)  # (cluster, incident id, action)
    replies: set[tuple[str, str, str]] = field(default_factory=set)  # (cluster, incident id, ts)
    not_acked: int = 0  # requests Slack would have given up on (three non-200 answers)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(replicas: list[Replica], request: sr.SignedRequest, rng: random.Random) -> bool:
    """As Slack does: the same request again after a failure, up to three retries."""
    for _ in range(4):
        replica = rng.choice(replicas)
        try:
            status, body, _ = sr.post(replica.url, request, timeout=3)
        except OSError:
            status, body = 0, b""
        # A form answered with errors stays open (the bot could not store it): a person submits
        # it again, with the same view id.
        if status == 200 and b'"response_action": "errors"' not in body and b'"response_action":"errors"' not in body:
            return True
        time.sleep(0.5)
    return False


def incidents_of(sessions: db.SessionFactory) -> dict[str, Incident]:
    with db.unit_of_work(sessions) as session:
        return {i.title: i for i in session.exec(select(Incident))}


def wait_for(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the database may be cut off right now
            value = None
        if value:
            return value
        time.sleep(0.2)
    return None


def load(
    cluster: str, replicas: list[Replica], sessions: db.SessionFactory, ledger: Ledger, until: float, seed: int
) -> None:
    rng = random.Random(seed)
    n = 0
    while time.monotonic() < until:
        n += 1
        title = f"chaos {cluster} [{seed}-{n}]"
        view_id = f"V{cluster[:2].upper()}{seed}{n:05d}"
        submission = sr.view_submission(
            Callback.DECLARE.value, declare_values(title, "P2"), secret=SECRET, view_id=view_id
        )
        if not send(replicas, submission, rng):
            ledger.not_acked += 1
            continue
        with ledger.lock:
            ledger.declared.add(title)
        incident = wait_for(lambda t=title: (i := incidents_of(sessions).get(t)) and i.card_ts and i, 30)
        if incident is None:
            continue  # the checker will count it lost if its card never comes
        for _ in range(2):
            ts = sr.new_ts()
            event = sr.event(
                sr.thread_reply(incident.channel_id, incident.card_ts, ts, "U0BOB", f"note {ts}"), secret=SECRET
            )
            if send(replicas, event, rng):
                with ledger.lock:
                    ledger.replies.add((cluster, incident.id, ts))
        for action, field_name in ((Action.ACKNOWLEDGE, "acknowledged_at"), (Action.MITIGATE, "mitigated_at")):
            click = sr.block_action(
                action.value,
                value=incident.id,
                secret=SECRET,
                channel_id=incident.channel_id,
                message_ts=incident.card_ts,
            )
            if not send(replicas, click, rng):
                ledger.not_acked += 1
                break
            with ledger.lock:
                ledger.acked_clicks.append((cluster, incident.id, action.value))
            # A person clicks the next button once the card shows the first change.
            if not wait_for(lambda t=title, f=field_name: getattr(incidents_of(sessions).get(t), f, None), 30):
                break


def inject(replicas: list[Replica], fake: FakeSlack, proxy: PgProxy, until: float, rng: random.Random) -> Counter[str]:
    faults: Counter[str] = Counter()
    while time.monotonic() < until:
        time.sleep(rng.uniform(2, 5))
        fault = rng.choice(["kill", "stop", "429", "500", "slow", "cut"])
        replica = rng.choice(replicas)
        faults[fault] += 1
        if fault == "kill":
            replica.kill()
            time.sleep(rng.uniform(0.5, 2))
            replica.start()
        elif fault == "stop":
            pids = replica.pids()
            if pids:
                pid = rng.choice(pids)
                os.kill(pid, signal.SIGSTOP)
                time.sleep(rng.uniform(1, 4))
                os.kill(pid, signal.SIGCONT)
        elif fault == "429":
            fake.fail("*", 429, times=rng.randint(3, 10), retry_after=1)
        elif fault == "500":
            fake.fail("chat.postMessage", 500, times=rng.randint(2, 6))
        elif fault == "slow":
            fake.delay("*", rng.uniform(1, 3))
            time.sleep(rng.uniform(2, 4))
            fake.delay("*", 0)
        elif fault == "cut":
            proxy.cut()
            time.sleep(rng.uniform(1, 4))
            proxy.restore()
    return faults


def check(fake: FakeSlack, ledger: Ledger, sessions: db.SessionFactory, cluster: str) -> dict[str, int]:
    prefix = f"chaos {cluster} "
    clicks = [(i, a) for c, i, a in ledger.acked_clicks if c == cluster]
    replies = {(i, ts) for c, i, ts in ledger.replies if c == cluster}
    ok = [c for c in fake.calls("chat.postMessage") if c.status == 200]
    found = incidents_of(sessions)
    cards = Counter(
        title
        for c in ok
        if "thread_ts" not in c.params
        for title in ledger.declared
        if title in str(c.params.get("text"))
    )
    declared = {t for t in ledger.declared if t.startswith(prefix)}
    lost_cards = sum(1 for t in declared if cards[t] == 0)
    duplicated = sum(1 for t in declared if cards[t] > 1)
    lost = lost_cards
    reordered = 0
    by_ts = {i.card_ts: i for i in found.values() if i.card_ts}
    said: dict[str, list[str]] = {}
    for call in ok:
        incident = by_ts.get(call.params.get("thread_ts"))
        if incident is not None:
            said.setdefault(incident.id, []).append(str(call.params.get("text")))
    lost_clicks = 0
    for incident_id, action in clicks:
        word = "Acknowledged" if action == Action.ACKNOWLEDGE.value else "Mitigated"
        count = sum(word in text for text in said.get(incident_id, []))
        lost_clicks += count == 0
        duplicated += count > 1
    lost += lost_clicks
    for texts in said.values():
        ack = next((n for n, t in enumerate(texts) if "Acknowledged" in t), None)
        mit = next((n for n, t in enumerate(texts) if "Mitigated" in t), None)
        if ack is not None and mit is not None and mit < ack:
            reordered += 1
    with db.unit_of_work(sessions) as session:
        stored = {(e.incident_id, e.slack_ts) for e in session.exec(select(TimelineEntry)) if e.slack_ts}
    lost_replies = sum(1 for reply in replies if reply not in stored)
    lost += lost_replies
    return {
        "declared": len(declared),
        "clicks": len(clicks),
        "replies": len(replies),
        "lost": lost,
        "lost_cards": lost_cards,
        "lost_clicks": lost_clicks,
        "lost_replies": lost_replies,
        "duplicated": duplicated,
        "reordered": reordered,
    }


def drained(sessions: db.SessionFactory) -> bool:
    from storage.models import InboxRequest, Outbox

    with db.unit_of_work(sessions) as session:
        pending = session.exec(select(InboxRequest).where(InboxRequest.done_at.is_(None))).first()  # type: ignore[union-attr]
        undelivered = session.exec(
            select(Outbox).where(Outbox.delivered_at.is_(None), Outbox.dead_at.is_(None))  # type: ignore[union-attr]
        ).first()
    return pending is None and undelivered is None


def run(seconds: float = 120, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    pg_url = create_pg_database("ib_chaos")
    engine = db.create_db_engine(pg_url)
    db.upgrade(engine)
    sqlite_url = f"sqlite:///{folder / 'chaos.db'}"
    sqlite_engine = db.create_db_engine(sqlite_url)
    db.upgrade(sqlite_engine)
    # Message ts from the real clock, as Slack's are: a sender that lost a call's outcome looks for
    # it only among messages since its row was written (the default fake's ts are in 2025).
    with FakeSlack(first_ts=f"{time.time():.6f}") as fake, PgProxy() as proxy:
        proxied = proxy.url_for(pg_url)
        pg = [Replica(f"pg-{n}", proxied, fake, folder / f"pg-{n}.log") for n in "ab"]
        lite = [Replica("sqlite", sqlite_url, fake, folder / "sqlite.log")]
        everyone = pg + lite
        for replica in everyone:
            replica.start()
        wait_for(lambda: all(_healthy(r) for r in everyone), 60)
        until = time.monotonic() + seconds
        ledger = Ledger()
        pg_sessions, lite_sessions = db.session_factory(engine), db.session_factory(sqlite_engine)
        loaders = [
            threading.Thread(target=load, args=("pg", pg, pg_sessions, ledger, until, seed + k)) for k in range(3)
        ] + [
            threading.Thread(target=load, args=("sqlite", lite, lite_sessions, ledger, until, seed + 10 + k))
            for k in range(2)
        ]
        for thread in loaders:
            thread.start()
        faults = inject(everyone, fake, proxy, until, rng)
        for thread in loaders:
            thread.join(120)
        fake.heal()
        fake.delay("*", 0)
        proxy.restore()
        for replica in everyone:
            if replica.process is None or replica.process.poll() is not None:
                replica.start()
        settle = time.monotonic()
        wait_for(lambda: drained(pg_sessions) and drained(lite_sessions), 180)
        time.sleep(3)
        result = {
            "seconds": seconds,
            "settle_s": round(time.monotonic() - settle, 1),
            "faults": dict(faults),
            "not_acked_after_retries": ledger.not_acked,
            "postgresql": check(fake, ledger, pg_sessions, "pg"),
            "sqlite": check(fake, ledger, lite_sessions, "sqlite"),
            "logs": str(folder),
        }
        for replica in everyone:
            replica.kill()
    engine.dispose()
    sqlite_engine.dispose()
    drop_pg_database(pg_url)
    return result


def _healthy(replica: Replica) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{replica.port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
