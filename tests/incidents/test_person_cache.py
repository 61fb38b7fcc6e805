"""The person cache: which ids incidents refer to that it lacks, profiles kept or replaced, names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from incident_rows import incident, store

from bot.incidents import people
from storage.db import SessionFactory, unit_of_work
from storage.models import FollowUp, TimelineEntry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_unknown_ids_are_the_people_incidents_refer_to_that_person_lacks(sessions: SessionFactory) -> None:
    recent = incident(NOW - timedelta(days=2), declared_by="U0DECL", commander="U0CMDR", reported_by="W0REPORT")
    old = incident(NOW - timedelta(days=90), declared_by="U0OLD")
    store(sessions, recent, old)
    store(
        sessions,
        FollowUp(incident_id=old.id, description="x", owner="U0OWNER", due_date=date(2026, 9, 1), created_at=NOW),
        TimelineEntry(incident_id=recent.id, kind="message", author="U0SPEAKER", occurred_at=NOW),
        # Thread authors of old incidents are not looked for (the timeline is the biggest table).
        TimelineEntry(incident_id=old.id, kind="message", author="U0OLDSPEAKER", occurred_at=NOW),
        TimelineEntry(incident_id=recent.id, kind="system", author="U0CMDR", occurred_at=NOW),
    )
    with unit_of_work(sessions) as session:
        people.remember(session, people.Profile("U0CMDR", display_name="cmdr"), now=NOW)
        found = people.unknown_ids(session, now=NOW, limit=10)
        assert found == ["U0DECL", "U0OLD", "U0OWNER", "U0SPEAKER", "W0REPORT"]
        assert people.unknown_ids(session, now=NOW, limit=2) == ["U0DECL", "U0OLD"]


def test_a_payload_profile_does_not_replace_a_stored_one_and_users_info_does(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        people.remember(session, people.profile_from("U1", {"real_name": "Ada Lovelace"}), now=NOW)
        people.remember(session, people.Profile("U1", display_name="old ada"), now=NOW, replace=False)
        people.remember(session, people.Profile("U2"), now=NOW)  # users.info: no such user
    with unit_of_work(sessions) as session:
        assert people.names(session, ["U1", "U2", "U3"]) == {"U1": "Ada Lovelace"}
        users_info = {"real_name": "Ada King", "profile": {"display_name": "ada", "real_name": "Ada King"}}
        people.remember(session, people.profile_from("U1", users_info), now=NOW)
    with unit_of_work(sessions) as session:
        assert people.names(session, ["U1"]) == {"U1": "ada"}  # the display name wins
