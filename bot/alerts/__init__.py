"""Alertmanager notifications: the payload model, the pure mapping to incident changes, the service."""
