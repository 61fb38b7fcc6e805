"""deploy/: the Grafana dashboard asks only for metrics /metrics serves; the systemd unit and nginx config hold up."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.runtime import prometheus
from storage import db, jobs
from storage.readonly import create_read_engine

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "incident-bot.json"
UNIT = ROOT / "deploy" / "incident-bot.service"
NGINX = ROOT / "deploy" / "nginx.conf"
# A metric name in PromQL: what is not a function, a keyword, a label or a duration.
NAME = re.compile(r"\bincident_bot_[a-z0-9_]+\b")


def dashboard_exprs() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> list[str]:
        found: list[str] = []
        for panel in panels:
            found += [t["expr"] for t in panel.get("targets", [])]
            found += walk(panel.get("panels", []))
        return found

    return walk(json.loads(DASHBOARD.read_text())["panels"])


def served_names(db_url: str) -> set[str]:
    """Every sample name (buckets, sums and counts included) of /metrics once the sweep has run."""
    engine = db.create_db_engine(db_url)
    with engine.begin() as connection:
        jobs.record_run(connection, name=jobs.SWEEP, finished_at=datetime.now(UTC), duration_seconds=0.1)
    engine.dispose()
    metrics = prometheus.Metrics(create_read_engine(db_url), cache_seconds=0)
    try:
        metrics.observe_ack({"command": "/incident"}, 200, 0.01)
        exposition = metrics.route({}, b"")[1].decode()
    finally:
        metrics.close()
    names = {family.name for family in text_string_to_metric_families(exposition)}
    return names | {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}


def test_the_dashboard_has_the_panels_the_operators_need() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for wanted in (
        "acks",
        "latency",
        "backlog",
        "outbox",
        "dead letters",
        "sweep",
        "slack web api errors",
        "open incidents",
        "mtta",
        "mttr",
    ):
        assert wanted in titles, wanted


def test_every_dashboard_expr_names_metrics_that_metrics_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    engine.dispose()
    served = served_names(url)
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        names = set(NAME.findall(expr))
        assert names, f"no incident_bot_ metric in {expr!r}"
        assert names <= served, f"{expr!r} asks for {sorted(names - served)}, which /metrics does not serve"


# -- the systemd unit -------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    # systemd allows a key more than once (SystemCallFilter=): keep the last, as a dict would.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_systemd_unit_has_what_the_readme_promises() -> None:
    service = unit()["Service"]
    assert service["EnvironmentFile"] == "/etc/incident-bot/env"
    assert service["ExecStart"].endswith("incident-bot run")
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a bad setting: restarting cannot help
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"  # the front stops its worker itself
    # Longer than the bot's own stop: 30 s for requests in flight, then up to 60 s for the worker.
    assert int(service["TimeoutStopSec"]) > 90
    for hardening in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictNamespaces"):
        assert service.get(hardening) in ("yes", "strict"), hardening
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here; the configparser test above still reads the unit")
    # verify also checks that ExecStart exists: point it at an executable that does.
    copy = tmp_path / UNIT.name
    copy.write_text(
        UNIT.read_text().replace("/opt/incident-bot/bin/incident-bot", shutil.which("python3") or "/bin/sh")
    )
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# -- nginx --------------------------------------------------------------------------------------


def locations() -> dict[str, str]:
    """`location [=] PATH { … }` → its body (one level of braces inside, as limit_except has)."""
    text = re.sub(r"#.*", "", NGINX.read_text())
    found = {}
    for match in re.finditer(r"location\s+(=\s*)?(\S+)\s*\{((?:[^{}]|\{[^{}]*\})*)\}", text):
        found[match.group(2)] = match.group(3)
    return found


def test_nginx_exposes_slack_and_the_status_page_and_keeps_health_and_metrics_inside() -> None:
    found = locations()
    for public in ("/slack/events", "/status", "/status/", "/api/v2/"):
        assert "proxy_pass http://incident_bot;" in found[public], public
        # Open to all (Slack's addresses are not published): only methods are limited.
        assert "deny all" not in re.sub(r"limit_except[^{]*\{[^}]*\}", "", found[public]), public
    alerts = found["/alerts/alertmanager"]
    assert re.search(r"allow\s+\S+;", alerts) and "deny all;" in alerts and "proxy_pass" in alerts
    for inside in ("/healthz", "/metrics"):
        assert found[inside].strip() == "deny all;", inside
    assert "return 404" in found["/"]  # nothing else of the bot is reachable from outside
    assert re.search(r"listen\s+443\s+ssl", NGINX.read_text())


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    openssl = shutil.which("openssl")
    if nginx is None or openssl is None:
        pytest.skip("nginx (or openssl) is not installed; the test above still reads the config")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=bot.example.com",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    site = NGINX.read_text()
    site = site.replace("/etc/letsencrypt/live/bot.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/bot.example.com/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(main), "-e", str(tmp_path / "error.log")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
