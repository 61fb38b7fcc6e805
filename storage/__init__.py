"""Persistence for the incident bot: tables, engine, queries and migrations."""

# Every table module registers on SQLModel.metadata when `storage` is imported, so the metadata
# that migrations and the schema check compare against is whole whichever module came first.
import storage.people  # noqa: F401
