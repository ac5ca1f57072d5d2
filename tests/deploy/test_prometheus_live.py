"""rules.yml in a real Prometheus (Debian's 2.42, `make monitoring-tools`) scraping a real daemon on the emulator.

A rotation fails two hours ago (by event time), and its event is audited by a daemon that then stops, all before
Prometheus starts: the failure is in the table only. A second daemon starts, Prometheus scrapes it, and the
failed-rotation alert must fire from the open-failure state that daemon reads from the table, with every rule
evaluating without error (its HTTP API: /api/v1/rules, /api/v1/alerts, /api/v1/query).

Prometheus runs on a test copy of the rules that changes timing only: every group evaluates each second, and
every alert's `for` is 0s (the real ones wait minutes). Thresholds and expressions are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.devtools.emulator import Emulator
from daemon.emit import build_event
from daemon.timer import utc_now
from tests.support import boto, daemon_env, free_port, wait_until
from tests.support.daemon_process import DaemonProcess

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
DEFAULT_PROMETHEUS = "/var/cache/rotaudit/monitoring/bin/prometheus"
ALERT = "RotauditFailedRotationNotRecovered"


def _prometheus() -> str:
    found = os.environ.get("PROMETHEUS") or DEFAULT_PROMETHEUS
    if not (Path(found).is_file() and os.access(found, os.X_OK)):
        found = shutil.which("prometheus") or ""
    if not found:
        pytest.fail(f"prometheus not found (looked at $PROMETHEUS, {DEFAULT_PROMETHEUS}, PATH): make monitoring-tools")
    return found


def fast_rules() -> dict[str, Any]:
    """rules.yml with each group evaluated every second and each alert's `for` at 0s; nothing else changed."""
    rules = yaml.safe_load((PROM / "rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    return dict(rules)


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own localhost)
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


@pytest.fixture
def daemon(emulator: Emulator, stack: dict[str, str], tmp_path: Path) -> Iterator[DaemonProcess]:
    """A failure audited by a first daemon, which then stops; a second daemon, running, that never saw the event."""
    endpoint = emulator.endpoint_url
    arn = boto("secretsmanager", endpoint).create_secret(Name=f"live-{uuid.uuid4().hex[:8]}", SecretString="x")["ARN"]
    env = daemon_env(
        endpoint,
        stack,
        ROTAUDIT_DLQ_URL=stack["dlq_url"],
        ROTAUDIT_SNS_TOPIC_ARN=stack["topic_arn"],
        ROTAUDIT_LOG_LEVEL="warning",
    )
    (tmp_path / "first").mkdir()
    first = DaemonProcess(env, tmp_path / "first")
    try:
        first.wait_ready(timeout_s=60)
        failed = build_event("RotationFailed", arn, step="setSecret", when=utc_now() - timedelta(hours=2))
        boto("sqs", endpoint).send_message(QueueUrl=stack["queue_url"], MessageBody=json.dumps(failed))
        wait_until(lambda: first.total("rotaudit_rotation_failures_open") == 1, timeout_s=60, interval_s=0.2)
    finally:
        code = first.stop()
    assert code == 0, first.stderr()[-2000:]
    (tmp_path / "second").mkdir()
    second = DaemonProcess({**env, "ROTAUDIT_HTTP_PORT": str(free_port())}, tmp_path / "second")
    try:
        second.wait_ready(timeout_s=60)
        yield second
    finally:
        second.stop()


@pytest.fixture
def prometheus(daemon: DaemonProcess, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping the second daemon every second, with the fast copy of the rules; its base URL."""
    work = tmp_path / "prometheus"
    work.mkdir()
    (work / "rules.yml").write_text(yaml.safe_dump(fast_rules()))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": "rotaudit",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{daemon.port}"],
                        "labels": {"ecs_cluster": "local", "ecs_service": "rotaudit"},
                    }
                ],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            _prometheus(),
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (work / "prometheus.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:  # noqa: S310 (our own localhost)
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(ready, timeout_s=60, interval_s=0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def test_a_failure_before_the_first_scrape_fires_the_alert_and_every_rule_evaluates(prometheus: str) -> None:
    """The failure the first daemon audited reaches the alert through the second daemon's state gauges."""

    def firing() -> list[dict[str, Any]]:
        alerts = _api(prometheus, "/api/v1/alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == ALERT and a["state"] == "firing"]

    (alert,) = wait_until(firing, timeout_s=60, interval_s=0.5)
    assert alert["labels"] | {"severity": "critical"} == alert["labels"]
    assert (alert["labels"]["ecs_cluster"], alert["labels"]["ecs_service"]) == ("local", "rotaudit")
    assert alert["annotations"]["runbook_url"].endswith("#rotauditfailedrotationnotrecovered")
    (sample,) = _api(prometheus, "/api/v1/query", query="rotaudit_rotation_failures_open")["result"]
    assert sample["value"][1] == "1"

    def evaluated() -> list[dict[str, Any]]:
        groups = _api(prometheus, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(not rule["lastEvaluation"].startswith("0001-") for rule in rules) else []

    rules = wait_until(evaluated, timeout_s=30, interval_s=0.5)
    expected = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    assert len(rules) == sum(len(group["rules"]) for group in expected)
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"] == []
