"""Modal submissions: declare, resolve, add a follow-up.

Submissions are validated and stored before the ack, so a closed modal always means a saved
change; bad input keeps the modal open with the error under the field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, App
from sqlmodel import Session

from bot.ids import Block, Callback
from bot.incidents import lifecycle as incidents
from bot.incidents import queries as incident_queries
from bot.incidents.forms import FormErrors
from bot.incidents.outbox import insert_ignoring_conflict
from bot.incidents.people import is_user_id
from bot.slack.context import Runtime
from bot.slack.forms import parse_declare, parse_follow_up, parse_resolve
from storage import db
from storage.db import unit_of_work
from storage.models import ViewSubmission, utcnow

log = logging.getLogger(__name__)
UNAVAILABLE = "Could not save this just now (our database did not answer). Please submit again in a moment."


def register(app: App, rt: Runtime) -> None:
    policy = rt.settings.policy

    def submit(ack: Ack, body: dict[str, Any], first_field: Block, work: Callable[[Session], None]) -> None:
        view = body.get("view") or {}
        try:
            with unit_of_work(rt.sessions) as session:
                # Slack resubmits a view whose ack was slow, and a double click submits it twice:
                # both carry the same view.id. The first stored submission wins; a resubmission
                # gets the same answer (a closed modal) and stores nothing new.
                if not _first_submission(session, view):
                    log.info("view %s was submitted again; already stored", view.get("id"))
                else:
                    work(session)
        except FormErrors as exc:
            ack(response_action="errors", errors=exc.errors)
            return
        except incident_queries.IncidentError as exc:
            ack(response_action="errors", errors={first_field.value: str(exc)})
            return
        except sa.exc.SQLAlchemyError as exc:
            if db.is_disconnect(exc):  # the modal stays open with UNAVAILABLE: the person retries
                log.warning("could not store a %s submission: the database is unavailable", first_field.value)
            else:
                log.exception("could not store a %s submission", first_field.value)
            ack(response_action="errors", errors={first_field.value: UNAVAILABLE})
            return
        ack()
        rt.deliverer.kick()

    @app.view(Callback.DECLARE.value)
    def declare_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            source = _metadata(view)
            form = parse_declare(
                view.get("state", {}).get("values"),
                detection_url=source.get("permalink"),
                reported_by=source.get("author"),
            )
            incident = incidents.declare(session, form, declared_by=body["user"]["id"], policy=policy(), now=utcnow())
            log.info("declared %s (%s)", incident.id, incident.severity)

        submit(ack, body, Block.TITLE, work)

    @app.view(Callback.RESOLVE.value)
    def resolve_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            form = parse_resolve(view.get("state", {}).get("values"))
            incidents.resolve(
                session,
                view.get("private_metadata", ""),
                form,
                user=body["user"]["id"],
                policy=policy(),
                now=utcnow(),
            )

        submit(ack, body, Block.ROOT_CAUSE, work)

    @app.view(Callback.FOLLOW_UP.value)
    def follow_up_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            form = parse_follow_up(view.get("state", {}).get("values"))
            incidents.add_follow_up(
                session, view.get("private_metadata", ""), form, user=body["user"]["id"], now=utcnow()
            )

        submit(ack, body, Block.FOLLOW_UP_TEXT, work)


def _first_submission(session: Session, view: dict[str, Any]) -> bool:
    """Record the view's id; False when it was stored before (or by a racing replica just now).

    Only a submission that is stored counts: one refused with errors keeps its modal open, and the
    user's corrected submission (same view.id) must still go through.
    """
    view_id = view.get("id")
    if not isinstance(view_id, str) or not view_id:
        return True  # not Slack's shape; nothing to key on
    values = {"view_id": view_id[:64], "callback_id": str(view.get("callback_id", ""))[:64], "received_at": utcnow()}
    return insert_ignoring_conflict(session, ViewSubmission, values)


def _metadata(view: dict[str, Any]) -> dict[str, str]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    found = {}
    permalink, author = data.get("permalink"), data.get("author")
    if isinstance(permalink, str) and permalink.startswith("https://"):
        found["permalink"] = permalink
    if isinstance(author, str) and is_user_id(author):
        found["author"] = author
    return found
