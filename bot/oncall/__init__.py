"""On-call: schedules, overrides and paging, as a domain with no Slack imports (CONTRACT.md "On-call").

Modules:
- `config`: the `oncall:` section of CONFIG_FILE as pydantic models; `parse_oncall` raises
  `OnCallConfigError` with one line per mistake, each naming its path.
- `durations`: ISO 8601 durations as the config writes them (negative ones and months refused).
- `schedules`: pure rotation math (DST-safe handoffs in local wall time), overrides flattened into
  an `OverrideIndex`, `on_call_at`, `effective_shifts`, `next_handoffs`.
- `pages`: pure paging rules: `route_for`, `due_steps` (rounds spaced by `config.round_length`),
  `resolve_targets`, `channels_for`, and `oncall_load` for the digest and the monthly report.
- `service`: the queries (`*, session`): overrides, pages, and claiming each page notice and
  handoff notice exactly once across replicas (tables in `storage/oncall.py`).
- `email`: page e-mails composed with the standard library and sent through SMTP_URL (TLS
  before any password).
- `webhook`: the signed JSON POST to PAGE_WEBHOOK_URL, with its outcome (sent, retry, dead).
- `ical`: a schedule as an RFC 5545 feed, and the HMAC token of its URL.

Wired into the bot (these read the database and write outbox rows, still without Slack):
- `paging`: a page started from the incident's lifecycle (declare, severity raised), ended by its
  acknowledgement or resolution; the paging sweep that claims due notices and queues DMs and
  thread mentions to the outbox (bot/slack/page_delivery.py sends them).
- `outbound`: sending the claimed e-mail and webhook notices and recording each outcome once.
- `handoffs`: each shift change's DM and user-group update, claimed once per shift start.
- `roster`: who is on call now and next (`/incident oncall`, the CLI, App Home), covering a shift.
- `load`: on-call load over a period, for the weekly digest and the monthly report.
"""
