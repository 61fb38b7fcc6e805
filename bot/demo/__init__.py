"""The synthetic history behind `incident-bot seed`."""
