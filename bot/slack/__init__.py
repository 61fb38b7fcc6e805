"""Everything that speaks Slack: the Bolt app, listeners, pure block builders, form parsing, the outbox sender."""
