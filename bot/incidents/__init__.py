"""The incident domain, free of Slack imports: lifecycle, queries, timeline, deadlines, escalation, outbox rows."""
