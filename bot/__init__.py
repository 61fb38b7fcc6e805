"""The incident bot: a Slack app for running incidents, from declaration to postmortem."""
