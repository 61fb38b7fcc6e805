"""Pure Block Kit builders: each returns the message or view Slack should show, within its limits."""
