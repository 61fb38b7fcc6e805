"""Names for the ids incidents refer to: users.info for the ones `person` lacks, a few per run.

Runs as a scheduler job, never on the ack path. A 429 ends the run (the client has already
honoured Retry-After for its own retries) and the next run waits out Slack's Retry-After first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.incidents import people
from bot.slack.context import Runtime
from storage.db import SessionFactory, unit_of_work
from storage.errors import database_errors
from storage.models import utcnow

log = logging.getLogger(__name__)
PER_RUN = 20  # users.info is Tier 4 (100+ a minute): 20 every few minutes leaves room for the rest
INTERVAL_SECONDS = 300
# users.info answers for good: remember the id without a name, so it is not asked again.
NO_SUCH_USER = {"user_not_found", "user_not_visible", "account_inactive_user"}


class PeopleFiller:
    """Fills `person` for unknown ids; `resume_at` (monotonic) holds it back after a 429."""

    def __init__(self, *, per_run: int = PER_RUN) -> None:
        self.per_run = per_run
        self.resume_at = 0.0

    def run(self, sessions: SessionFactory, client: WebClient) -> int:
        """One bounded pass; returns how many profiles were stored."""
        if time.monotonic() < self.resume_at:
            return 0
        with unit_of_work(sessions) as session:
            wanted = people.unknown_ids(session, now=utcnow(), limit=self.per_run)
        stored = 0
        for user_id in wanted:
            profile = self._ask(client, user_id)
            if profile is None:
                break
            with unit_of_work(sessions) as session:
                people.remember(session, profile, now=utcnow())
            stored += 1
        return stored

    def _ask(self, client: WebClient, user_id: str) -> people.Profile | None:
        """The profile Slack has for this id; None when this run must stop here."""
        try:
            response = client.users_info(user=user_id)
        except SlackApiError as exc:
            answer: Any = exc.response
            if getattr(answer, "status_code", None) == 429:
                retry_after = _seconds((getattr(answer, "headers", None) or {}).get("Retry-After"))
                self.resume_at = time.monotonic() + retry_after
                log.info("users.info is rate limited; asking again in %.0f s", retry_after)
                return None
            error = answer.get("error") if answer is not None else None
            if error in NO_SUCH_USER:
                return people.Profile(user_id)
            log.warning("users.info failed for %s: %s", user_id, error)
            return None
        except (SlackClientError, OSError) as exc:
            log.warning("users.info failed: %s", type(exc).__name__)
            return None
        user = response.get("user")
        return people.profile_from(user_id, user if isinstance(user, dict) else {})


def _seconds(value: Any) -> float:
    try:
        return max(float(value), 1.0)
    except (TypeError, ValueError):
        return 60.0


def remember_payload_profile(session: Any, user_id: Any, payload: Any) -> None:
    """Keep the `user_profile` an event or shortcut payload carries, if it names someone."""
    if not isinstance(user_id, str) or not isinstance(payload, dict) or not people.is_user_id(user_id):
        return
    profile = people.profile_from(user_id, payload)
    if profile.named:
        people.remember(session, profile, now=utcnow(), replace=False)


def people_job(rt: Runtime, filler: PeopleFiller) -> None:
    with database_errors(log, "people names"):
        filler.run(rt.sessions, rt.client)
