"""The public status page: its model, uptime, the Statuspage v2 JSON, feeds, HTML and the cached site."""
