"""Persistence for the incident bot: tables, engine, queries and migrations."""
