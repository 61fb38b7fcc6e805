"""Every Slack id the app registers or renders (actions, callbacks, blocks), defined once.

Builders and listeners both import from here, so a renamed id cannot leave a button dead.
"""

from enum import StrEnum

COMMAND = "/incident"


class Callback(StrEnum):
    DECLARE = "declare_incident"
    RESOLVE = "resolve_incident"
    FOLLOW_UP = "add_follow_up"
    DECLARE_SHORTCUT = "declare_incident_from_message"


class Action(StrEnum):
    ACKNOWLEDGE = "incident_acknowledge"
    MITIGATE = "incident_mitigate"
    RESOLVE = "incident_resolve"
    REOPEN = "incident_reopen"
    SEVERITY = "incident_severity"
    FOLLOW_UP = "incident_follow_up"
    RUNBOOK = "incident_runbook"
    HOME_DECLARE = "home_declare"
    OPEN_CARD = "open_card"


class Block(StrEnum):
    """Input block ids in the modals; also the keys of `response_action: errors`."""

    TITLE = "title"
    SEVERITY = "severity"
    AFFECTED = "affected"
    AFFECTED_USERS = "affected_users"
    DETECTION = "detection"
    CATEGORY = "category"
    COMMANDER = "commander"
    ROOT_CAUSE = "root_cause"
    RESOLUTION = "resolution"
    ROOT_CAUSE_CLASS = "root_cause_class"
    IMPACT = "impact"
    REVENUE = "revenue_impact"
    LESSONS_WORKED = "lessons_worked"
    LESSONS_DIDNT = "lessons_didnt"
    RCA_URL = "rca_url"
    FOLLOW_UP_TEXT = "follow_up_text"
    FOLLOW_UP_OWNER = "follow_up_owner"
    FOLLOW_UP_DUE = "follow_up_due"
    CARD_ACTIONS = "incident_actions"


# Each input block holds one element; its action_id is the block id with this suffix.
INPUT = "_input"
