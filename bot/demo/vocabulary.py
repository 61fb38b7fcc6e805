"""The synthetic history's vocabulary: services, symptoms, alerts, weights, people and chat lines."""

from __future__ import annotations

DAY_SECONDS = 86400


SERVICES = {
    "Database": ("orders-db", "users-db", "analytics-warehouse", "redis-cache"),
    "Authentication": ("login-api", "sso-gateway", "session-service"),
    "Payment Gateway": ("checkout-api", "stripe-webhooks", "billing-worker"),
    "Performance": ("search-api", "web-frontend", "reporting-api", "mobile-api"),
    "Infrastructure": ("k8s-prod-cluster", "load-balancer", "object-storage", "dns"),
    "Third-Party Service": ("email-provider", "sms-provider", "maps-api"),
}


CATEGORY_WEIGHTS = (22, 14, 12, 24, 18, 10)


SYMPTOMS = (
    "elevated error rate",
    "high latency",
    "timeouts",
    "connection pool exhausted",
    "failing health checks",
    "degraded throughput",
    "5xx spike",
    "stale data",
)


ALERTS = ("HighErrorRate", "HighLatencyP99", "TargetDown", "PoolSaturation", "DiskFull", "QueueBacklog")


SEVERITY_WEIGHTS = {"P0": 3, "P1": 12, "P2": 40, "P3": 45}


ROOT_CAUSE_WEIGHTS = (25, 30, 18, 17, 10)


# Median minutes: declared -> acknowledged, acknowledged -> mitigated, mitigated -> resolved.
MEDIAN_MINUTES = {
    "P0": (3.0, 5.0, 4.0),
    "P1": (8.0, 12.0, 10.0),
    "P2": (25.0, 40.0, 30.0),
    "P3": (90.0, 120.0, 120.0),
}


USERS = tuple(f"U0SEED{n:03d}" for n in range(1, 31))


CHANNEL = "C0SEED0001"


MESSAGES = (
    "Looking into it now",
    "Seeing errors in the logs from {service}",
    "Grafana shows the spike started a few minutes before the alert",
    "Rolling back the last deploy of {service}",
    "Rollback done, watching the error rate",
    "Customers are reporting problems via support",
    "Scaling {service} up to absorb the load",
    "Error rate is back to baseline",
    "Root cause looks like a bad config push",
    "Opened the runbook, following the steps",
    "Paging the owning team for {service}",
    "Status page updated",
    "Latency p99 is recovering",
    "Confirmed fixed from the customer side",
    "Adding a follow-up to cover this with an alert",
)


FOLLOW_UPS = (
    "Add an alert on {service} saturation",
    "Write a regression test for the failure mode",
    "Document the recovery steps in the runbook",
    "Add config validation to CI for {service}",
    "Add a circuit breaker around the {service} client",
    "Review capacity limits for {service}",
)


LESSONS_WORKED = (
    "The runbook was accurate and fast to follow",
    "Alert fired before customers noticed",
    "Rollback took under five minutes",
    "Clear commander hand-off in the thread",
)


LESSONS_DIDNT = (
    "Paging took too long to reach the owner",
    "Dashboards lacked the metric we needed",
    "Status page update was late",
    "Runbook step for failover was out of date",
)
