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


# Chat lines by phase of an incident, in the order a thread would say them (bot/demo/story.py).
TRIAGE_LINES = (
    "Looking into it now",
    "Customers are reporting problems via support",
    "Grafana shows the spike started a few minutes before the alert",
    "Seeing errors in the logs from {service}",
)


INVESTIGATION_LINES = (
    "Opened the runbook, following the steps",
    "Paging the owning team for {service}",
    "Checked the dependencies of {service}: all green",
    "Narrowed it down to {service} itself",
)


RECOVERY_LINES = (
    "Error rate is back to baseline",
    "Latency p99 is recovering",
    "Status page updated",
    "Watching the dashboards for another few minutes",
)


CONFIRMED_LINE = "Confirmed fixed from the customer side"


FOLLOW_UP_LINE = "Adding a follow-up to cover this with an alert"


# resolution -> (what the thread finds, what it does, what it sees afterwards)
REMEDIES = {
    "Rolled back the deploy": (
        "The errors started with the last deploy of {service}",
        "Rolling back the last deploy of {service}",
        "Rollback done, watching the error rate",
    ),
    "Scaled out the service": (
        "{service} is saturated: CPU pinned at 100%",
        "Scaling {service} up to absorb the load",
        "New {service} capacity is taking traffic",
    ),
    "Fixed the configuration": (
        "Root cause looks like a bad config push",
        "Reverting the config change on {service}",
        "Config reverted, errors dropping",
    ),
    "Failed over": (
        "The primary for {service} is not answering",
        "Failing over {service} to the standby",
        "Failover complete, {service} is serving from the standby",
    ),
}


# Where in a service an incident is: with the service, what tells two incidents of it apart. A
# repeat is the same category and service again, so the seed chooses among these to keep repeats
# to the share it plants (SEED_REPEAT_SHARE) rather than to whatever the pool size makes them.
QUALIFIERS = (
    "",
    "eu-west-1",
    "us-east-1",
    "ap-southeast-2",
    "primary",
    "replica",
    "canary",
    "batch jobs",
    "partner API",
    "mobile clients",
    "admin console",
    "webhooks",
)


REPEAT_SHARE = 0.15  # of incidents, when there is a recent resolution to repeat


REOPEN_SHARE = 0.02  # of resolved incidents


ALERT_SHARE = 0.4  # declared by Alertmanager; the rest by a person


# The synthetic people's names (display name, real name), one per USERS entry.
PEOPLE = (
    ("alice", "Alice Martin"),
    ("bob", "Bob Okafor"),
    ("carol", "Carol Nguyen"),
    ("dave", "Dave Schmidt"),
    ("erin", "Erin Walsh"),
    ("frank", "Frank Rossi"),
    ("grace", "Grace Kim"),
    ("heidi", "Heidi Larsen"),
    ("ivan", "Ivan Petrov"),
    ("judy", "Judy Alvarez"),
    ("ken", "Ken Tanaka"),
    ("laura", "Laura Dubois"),
    ("mallory", "Mallory Singh"),
    ("nina", "Nina Kowalski"),
    ("oscar", "Oscar Mendes"),
    ("peggy", "Peggy Brennan"),
    ("quinn", "Quinn Adeyemi"),
    ("rupert", "Rupert Hale"),
    ("sybil", "Sybil Moreau"),
    ("trent", "Trent Fischer"),
    ("uma", "Uma Raman"),
    ("victor", "Victor Haas"),
    ("wendy", "Wendy Cho"),
    ("xavier", "Xavier Lopez"),
    ("yara", "Yara Haddad"),
    ("zoe", "Zoe Becker"),
    ("amir", "Amir Farouk"),
    ("bea", "Beatriz Silva"),
    ("chen", "Chen Wei"),
    ("dana", "Dana Levi"),
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
