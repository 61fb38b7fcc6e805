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

from bot import incidents
from bot.forms import FormErrors, parse_declare, parse_follow_up, parse_resolve
from bot.ids import Block, Callback
from bot.runtime import Runtime
from storage.db import unit_of_work
from storage.models import utcnow

log = logging.getLogger(__name__)
UNAVAILABLE = "Could not save this just now (our database did not answer). Please submit again in a moment."


def register(app: App, rt: Runtime) -> None:
    policy = rt.settings.policy

    def submit(ack: Ack, first_field: Block, work: Callable[[], None]) -> None:
        try:
            work()
        except FormErrors as exc:
            ack(response_action="errors", errors=exc.errors)
            return
        except incidents.IncidentError as exc:
            ack(response_action="errors", errors={first_field.value: str(exc)})
            return
        except sa.exc.SQLAlchemyError:
            log.exception("could not store a %s submission", first_field.value)
            ack(response_action="errors", errors={first_field.value: UNAVAILABLE})
            return
        ack()
        rt.deliverer.kick()

    @app.view(Callback.DECLARE.value)
    def declare_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work() -> None:
            source = _metadata(view)
            form = parse_declare(view.get("state", {}).get("values"), detection_url=source.get("permalink"))
            with unit_of_work(rt.sessions) as session:
                incident = incidents.declare(
                    session, form, declared_by=body["user"]["id"], policy=policy(), now=utcnow()
                )
                log.info("declared %s (%s)", incident.id, incident.severity)

        submit(ack, Block.TITLE, work)

    @app.view(Callback.RESOLVE.value)
    def resolve_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work() -> None:
            form = parse_resolve(view.get("state", {}).get("values"))
            with unit_of_work(rt.sessions) as session:
                incidents.resolve(
                    session,
                    view.get("private_metadata", ""),
                    form,
                    user=body["user"]["id"],
                    policy=policy(),
                    now=utcnow(),
                )

        submit(ack, Block.ROOT_CAUSE, work)

    @app.view(Callback.FOLLOW_UP.value)
    def follow_up_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def work() -> None:
            form = parse_follow_up(view.get("state", {}).get("values"))
            with unit_of_work(rt.sessions) as session:
                incidents.add_follow_up(
                    session, view.get("private_metadata", ""), form, user=body["user"]["id"], now=utcnow()
                )

        submit(ack, Block.FOLLOW_UP_TEXT, work)


def _metadata(view: dict[str, Any]) -> dict[str, str]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    permalink = data.get("permalink")
    return {"permalink": permalink} if isinstance(permalink, str) and permalink.startswith("https://") else {}
