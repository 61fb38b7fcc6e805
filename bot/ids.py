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
    PUBLISH = "statuspage_publish"
    STATUS_UPDATE = "statuspage_update"
    MAINTENANCE = "statuspage_maintenance"
    ONCALL_COVER = "oncall_cover"


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
    PUBLISH = "incident_publish"
    STATUS_UPDATE = "incident_status_update"


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
    PUBLIC_TITLE = "public_title"
    COMPONENTS = "components"
    PUBLIC_IMPACT = "public_impact"
    PUBLIC_MESSAGE = "public_message"
    PUBLIC_STATUS = "public_status"
    NEXT_UPDATE = "next_update"
    FINAL_UPDATE = "final_update"
    STARTS_AT = "starts_at"
    ENDS_AT = "ends_at"
    PAGE_ACTIONS = "page_actions"  # the Acknowledge button of a page's direct message
    COVER_SCHEDULE = "cover_schedule"
    COVER_USER = "cover_user"
    COVER_FROM = "cover_from"
    COVER_UNTIL = "cover_until"


# Each input block holds one element; its action_id is the block id with this suffix.
INPUT = "_input"


# The Events API subscriptions manifest.yml declares (settings.event_subscriptions.bot_events).
# Slack delivers nothing it is not subscribed to, and Bolt answers 404 to what no listener handles,
# so this list, the manifest and the `app.event(...)` listeners must agree (tests/test_manifest.py).
BOT_EVENTS: tuple[str, ...] = (
    "message.channels",  # thread replies in public channels: the incident timeline
    "message.groups",  # the same for an incident channel that is private
    "reaction_added",  # :pushpin: on a thread reply marks a key event
    "reaction_removed",  # ...and removing it unmarks it
    "app_home_opened",  # the Home tab (open incidents, this month's metrics) is drawn when opened
)

# The bot token scopes manifest.yml requests (oauth_config.scopes.bot): exactly what the code uses.
BOT_SCOPES: dict[str, str] = {
    "commands": "the /incident slash command and the 'Declare incident' message shortcut",
    "chat:write": "post and update incident cards, thread replies, escalations and ephemeral answers "
    "(chat.postMessage, chat.update, chat.postEphemeral)",
    "chat:write.public": "post in INCIDENT_CHANNEL / ALERT_CHANNEL (e.g. #ops-incidents, #ops-alerts) "
    "by name without being invited first",
    "channels:join": "join INCIDENT_CHANNEL after posting the first card there, so thread replies "
    "arrive as events without anyone having to /invite the bot (conversations.join)",
    "channels:history": "receive thread replies in public channels as message events (message.channels)",
    "groups:history": "receive thread replies in private channels as message events (message.groups)",
    "reactions:read": "receive reaction_added / reaction_removed (:pushpin: key events)",
    "users:read": "the names the Markdown outputs print, and the people oncall: names (users.info)",
    "files:write": "upload the weekly digest's chart (files_upload_v2: files.getUploadURLExternal and "
    "files.completeUploadExternal)",
    "im:write": "open the direct message of an on-call page or handoff notice (conversations.open)",
    "im:history": "look for a page's DM before sending it again, so it goes out once (conversations.history)",
    "usergroups:write": "keep a schedule's user group equal to whoever is on call (usergroups.users.update)",
    "users:read.email": "a page's e-mail address from the Slack profile when `people:` gives none (users.info)",
}
