"""Modal submissions: declare, resolve, add a follow-up, cover an on-call shift.

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

from bot import mrkdwn
from bot.ids import Block, Callback
from bot.incidents import lifecycle as incidents
from bot.incidents import outbox
from bot.incidents import queries as incident_queries
from bot.incidents.forms import FormErrors
from bot.incidents.outbox import insert_ignoring_conflict
from bot.incidents.people import is_user_id
from bot.oncall import roster
from bot.slack.context import Runtime
from bot.slack.forms import parse_cover, parse_declare, parse_follow_up, parse_resolve
from bot.slack.status_forms import parse_final_update, parse_maintenance, parse_publish, parse_status_update
from bot.statuspage import service as statuspage
from bot.statuspage.model import LABELS
from bot.statuspage.service import StatusPageError
from storage import db
from storage.db import unit_of_work
from storage.models import ViewSubmission, utcnow
from storage.statuspage import PublicIncident

log = logging.getLogger(__name__)
Submit = Callable[[Ack, dict[str, Any], Block, Callable[[Session], None]], None]
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
            final = parse_final_update(view.get("state", {}).get("values"))
            incident_id, now = view.get("private_metadata", ""), utcnow()
            incidents.resolve(session, incident_id, form, user=body["user"]["id"], policy=policy(), now=now)
            public = statuspage.open_for_incident(incident_id, session=session) if final else None
            if public is not None and final is not None:
                statuspage.resolve(
                    session=session, public_id=public.id or 0, message=final, now=now, author_id=body["user"]["id"]
                )

        submit(ack, body, Block.ROOT_CAUSE, work)

    @app.view(Callback.ONCALL_COVER.value)
    def cover_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            form = parse_cover(view.get("state", {}).get("values"))
            try:
                override = roster.add_cover(session, rt.settings.oncall, form, by=body["user"]["id"], now=utcnow())
            except roster.CoverError as exc:
                field = Block.COVER_SCHEDULE if exc.field == "schedule" else Block.COVER_UNTIL
                raise FormErrors({field.value: str(exc)}) from None
            log.info("override %s: %s covers %s", override, form.user, form.schedule)

        submit(ack, body, Block.COVER_SCHEDULE, work)

    @app.view(Callback.FOLLOW_UP.value)
    def follow_up_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            form = parse_follow_up(view.get("state", {}).get("values"))
            incidents.add_follow_up(
                session, view.get("private_metadata", ""), form, user=body["user"]["id"], now=utcnow()
            )

        submit(ack, body, Block.FOLLOW_UP_TEXT, work)

    register_status_page(app, rt, submit)


def register_status_page(app: App, rt: Runtime, submit: Submit) -> None:
    config = rt.settings.status_page_config

    def refused(block: Block, exc: StatusPageError) -> FormErrors:
        return FormErrors({block.value: str(exc).capitalize() + "."})

    @app.view(Callback.PUBLISH.value)
    def publish_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            form = parse_publish(view.get("state", {}).get("values"))
            incident = incident_queries.get(session, view.get("private_metadata", ""))
            if statuspage.open_for_incident(incident.id, session=session) is not None:
                raise FormErrors({Block.PUBLIC_TITLE.value: "Already on the status page: post an update instead."})
            now = utcnow()
            try:
                public = statuspage.publish(
                    session=session,
                    title=form.title,
                    components=form.components,
                    impact=form.impact,
                    message=form.message,
                    now=now,
                    incident_id=incident.id,
                    author_id=body["user"]["id"],
                    next_update_in=form.next_update_in,
                    config=config,
                )
            except StatusPageError as exc:
                raise refused(Block.COMPONENTS, exc) from None
            text = f":mega: {mrkdwn.user(body['user']['id'])} published this to the status page as " + (
                f"*{mrkdwn.escape(public.title)}* ({LABELS[public.impact].lower()}){_link(rt, public.id)}"
            )
            outbox.announce(session, incident.id, text, now=now)

        submit(ack, body, Block.PUBLIC_TITLE, work)

    @app.view(Callback.STATUS_UPDATE.value)
    def status_update_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            form = parse_status_update(view.get("state", {}).get("values"))
            metadata = view.get("private_metadata", "")
            try:
                update = statuspage.post_update(
                    session=session,
                    public_id=int(metadata) if metadata.isdigit() else 0,
                    status=form.status,
                    message=form.message,
                    now=utcnow(),
                    author_id=body["user"]["id"],
                    next_update_in=form.next_update_in,
                )
            except StatusPageError as exc:
                raise refused(Block.PUBLIC_STATUS, exc) from None
            public = session.get(PublicIncident, update.public_incident_id)
            if public is not None and public.incident_id:
                text = f":mega: {mrkdwn.user(body['user']['id'])} posted a status update: *{LABELS[form.status]}*"
                outbox.announce(session, public.incident_id, text + _link(rt, public.id), now=update.created_at)

        submit(ack, body, Block.PUBLIC_STATUS, work)

    @app.view(Callback.MAINTENANCE.value)
    def maintenance_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work(session: Session) -> None:
            now = utcnow()
            form = parse_maintenance(view.get("state", {}).get("values"), now=now)
            try:
                statuspage.schedule_maintenance(
                    session=session,
                    components=form.components,
                    starts_at=form.starts_at,
                    ends_at=form.ends_at,
                    message=form.message,
                    now=now,
                    created_by=body["user"]["id"],
                    config=config,
                )
            except StatusPageError as exc:
                raise refused(Block.COMPONENTS, exc) from None

        submit(ack, body, Block.COMPONENTS, work)


def _link(rt: Runtime, public_id: int | None) -> str:
    base = rt.settings.status_page_url
    return f" <{base.rstrip('/')}/status/incidents/{public_id}|on the page>" if base and public_id else ""


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
