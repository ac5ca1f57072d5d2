"""The real CLI in subprocesses: exit codes, HTTP endpoints, SIGTERM drain, a crash mid-batch, `rotaudit local`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from daemon.emit import build_event
from tests.support import REGION, ROOT, boto, daemon_env, free_port, rotaudit_cmd, wait_until
from tests.support.stall_proxy import StallProxy

pytestmark = pytest.mark.slow


class Proc:
    """A daemon subprocess whose output goes to files: a pipe nobody reads would block it once full."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...], log_dir: Path) -> None:
        self.stdout_path = log_dir / f"stdout-{uuid.uuid4().hex[:6]}.log"
        self.stderr_path = self.stdout_path.with_name(self.stdout_path.name.replace("stdout", "stderr"))
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.popen = subprocess.Popen(rotaudit_cmd(*args), env=env, cwd=ROOT, stdout=out, stderr=err, text=True)

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def poll(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait(timeout=10)

    def communicate(self) -> tuple[str, str]:
        if self.popen.poll() is None:
            self.kill()
        return self.stdout_path.read_text(), self.stderr_path.read_text()


def _start(env: dict[str, str], log_dir: Path, *args: str) -> Proc:
    return Proc(env, args or ("run",), log_dir)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _metric(port: int, name: str) -> float:
    _, text = _get(port, "/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _count_items(endpoint: str, table: str) -> int:
    client = boto("dynamodb", endpoint)
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        Select="COUNT",
        FilterExpression="#kind = :event",
        ExpressionAttributeNames={"#kind": "kind"},
        ExpressionAttributeValues={":event": {"S": "event"}},
    )
    return sum(page["Count"] for page in pages)


def _queue_depth(endpoint: str, url: str) -> int:
    attrs = boto("sqs", endpoint).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _send_events(endpoint: str, queue_url: str, bodies: list[str]) -> None:
    sqs = boto("sqs", endpoint)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def _arn(i: int) -> str:
    return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:life/{i}-{uuid.uuid4().hex[:6]}"


def test_bad_config_exits_78_naming_every_field(endpoint: str) -> None:
    """Start-up with several bad settings exits 78 and names each of them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTAUDIT_")}
    env.update({"ROTAUDIT_HTTP_PORT": "abc", "ROTAUDIT_ALLOWED_ACCOUNTS": "42"})
    result = subprocess.run(rotaudit_cmd("run"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    for name in (
        "ROTAUDIT_QUEUE_URL",
        "ROTAUDIT_AUDIT_TABLE",
        "ROTAUDIT_HTTP_PORT",
        "ROTAUDIT_ALLOWED_ACCOUNTS",
    ):
        assert name in result.stderr


def test_unreachable_queue_exits_3(endpoint: str, stack: dict[str, str]) -> None:
    """A queue that does not exist fails the start-up checks with exit code 3."""
    env = daemon_env(endpoint, stack, ROTAUDIT_QUEUE_URL=stack["queue_url"] + "-missing")
    result = subprocess.run(rotaudit_cmd("run"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "queue" in result.stderr


def test_missing_table_exits_3(endpoint: str, stack: dict[str, str]) -> None:
    """An audit table that does not exist fails the start-up checks with exit code 3."""
    env = daemon_env(endpoint, stack, ROTAUDIT_AUDIT_TABLE="no-such-table")
    result = subprocess.run(rotaudit_cmd("run"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "no-such-table" in result.stderr


def test_sigterm_drains_and_exits_0(endpoint: str, stack: dict[str, str], tmp_path: Path) -> None:
    """SIGTERM stops receiving, finishes in-flight work, answers /readyz 503 meanwhile, and exits 0."""
    env = daemon_env(endpoint, stack, ROTAUDIT_WAIT_TIME_S="20")
    port = int(env["ROTAUDIT_HTTP_PORT"])
    proc = _start(env, tmp_path)
    try:
        wait_until(lambda: _get(port, "/readyz")[0] == 200, timeout_s=30)
        assert _get(port, "/healthz")[0] == 200
        bodies = [json.dumps(build_event("RotationSucceeded", _arn(i))) for i in range(30)]
        _send_events(endpoint, stack["queue_url"], bodies)
        wait_until(lambda: _metric(port, "rotaudit_messages_deleted_total") >= 30, timeout_s=30)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=25) == 0
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()
    _, stderr = proc.communicate()
    names = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert "daemon.stopping" in names
    assert names[-1] == "daemon.stopped"
    assert _count_items(endpoint, stack["table_name"]) == 30


def test_metrics_endpoint_exports_the_documented_metrics(endpoint: str, stack: dict[str, str], tmp_path: Path) -> None:
    """/metrics carries every metric the README documents."""
    env = daemon_env(endpoint, stack)
    port = int(env["ROTAUDIT_HTTP_PORT"])
    proc = _start(env, tmp_path)
    try:
        wait_until(lambda: _get(port, "/readyz")[0] == 200, timeout_s=30)
        _send_events(endpoint, stack["queue_url"], [json.dumps(build_event("RotationStarted", _arn(0))), "{}"])
        wait_until(lambda: _metric(port, "rotaudit_messages_deleted_total") >= 2, timeout_s=30)
        _, text = _get(port, "/metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    for name in (
        'rotaudit_events_processed_total{event_name="RotationStarted",outcome="recorded"} 1.0',
        "rotaudit_event_processing_seconds_bucket",
        'rotaudit_messages_rejected_total{reason="not_an_event"} 1.0',
        "rotaudit_events_in_flight",
        "rotaudit_event_lag_seconds_bucket",
        "rotaudit_build_info{",
        'rotaudit_aws_calls_total{operation="receive_message",service="sqs"}',
    ):
        assert name in text
    assert "# TYPE rotaudit_aws_errors_total counter" in text


def test_kill_mid_batch_loses_and_duplicates_nothing(endpoint: str, stack: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL while a backlog drains, then a restart: every distinct event is audited exactly once."""
    unique = [json.dumps(build_event("RotationSucceeded", _arn(i))) for i in range(300)]
    _send_events(endpoint, stack["queue_url"], unique + unique[:100])
    env = daemon_env(endpoint, stack, ROTAUDIT_VISIBILITY_TIMEOUT_S="10", ROTAUDIT_DRAIN_TIMEOUT_S="5")
    port = int(env["ROTAUDIT_HTTP_PORT"])
    proc = _start(env, tmp_path)
    try:
        wait_until(lambda: _metric(port, "rotaudit_messages_deleted_total") >= 60, timeout_s=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc.communicate()
    assert _count_items(endpoint, stack["table_name"]) < 300, "the kill came too late to test anything"
    env["ROTAUDIT_HTTP_PORT"] = str(free_port())
    restarted = _start(env, tmp_path)
    try:
        wait_until(lambda: _count_items(endpoint, stack["table_name"]) >= 300, timeout_s=120, interval_s=1)
        wait_until(lambda: _queue_depth(endpoint, stack["queue_url"]) == 0, timeout_s=60, interval_s=1)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
        restarted.communicate()
    assert _queue_depth(endpoint, stack["dlq_url"]) == 0
    assert _count_items(endpoint, stack["table_name"]) == 300


def test_cli_provision_emit_and_history(endpoint: str, tmp_path: Path) -> None:
    """provision prints the resources, emit publishes through EventBridge, history reads the daemon's items."""
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    env = {**os.environ}
    out = subprocess.run(
        rotaudit_cmd("provision", "--prefix", prefix, "--output", "json"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    resources = json.loads(out.stdout)
    assert {"queue_url", "dlq_url", "table_name", "topic_arn", "rule_name"} <= set(resources)
    again = subprocess.run(
        rotaudit_cmd("provision", "--prefix", prefix, "--output", "json"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(again.stdout) == resources
    boto("secretsmanager", endpoint).create_secret(Name=f"{prefix}-db", SecretString="x")
    emitted = subprocess.run(
        rotaudit_cmd(
            "emit",
            "RotationFailed",
            "--secret",
            f"{prefix}-db",
            "--step",
            "testSecret",
            "--times",
            "3",
            "--output",
            "json",
        ),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    sent = json.loads(emitted.stdout)
    run_env = daemon_env(endpoint, {"queue_url": resources["queue_url"], "table_name": resources["table_name"]})
    port = int(run_env["ROTAUDIT_HTTP_PORT"])
    proc = _start(run_env, tmp_path)
    try:
        wait_until(lambda: _metric(port, "rotaudit_messages_deleted_total") >= 3, timeout_s=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.communicate()
    history = subprocess.run(
        rotaudit_cmd("history", f"{prefix}-db", "--output", "json", "--table", resources["table_name"]),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    items: list[dict[str, Any]] = json.loads(history.stdout)["items"]
    events = [(i["event_name"], i["rotation_id"], i["failed_step"]) for i in items if i["kind"] == "event"]
    assert events == [("RotationFailed", sent["rotation_id"], "testSecret")]
    # Remediation answered the failure: its item sorts right after the event it answers.
    assert [i["kind"] for i in items][:1] == ["remediation"]


def test_rotaudit_local_comes_up_and_remediates_the_demo_failure(tmp_path: Path) -> None:
    """`make run`'s command seeds the demo and audits it; the stale secret's rotation, which really fails on the
    rotation stand-in, is remediated until rotaudit's own rotation succeeds; Ctrl-C exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    emulator_port, http_port = free_port(), free_port()
    proc = _start(env, tmp_path, "local", "--port", str(emulator_port), "--http-port", str(http_port))
    try:
        # Held, AWSPENDING removed, RotateSecret retried, its RotationSucceeded closing the failure: within a minute.
        recovered = 'rotaudit_notifications_total{kind="recovered"}'
        wait_until(lambda: _metric(http_port, recovered) >= 1, timeout_s=90, interval_s=0.5)
        for action in ("hold", "remove_pending", "rotate"):
            assert _metric(http_port, f'rotaudit_remediations_total{{action="{action}",outcome="applied"}}') == 1
        duplicate = 'rotaudit_events_processed_total{event_name="RotationSucceeded",outcome="duplicate"}'
        assert _metric(http_port, duplicate) == 1  # the demo delivers the fresh secret's success twice
        endpoint = f"http://127.0.0.1:{emulator_port}"
        # fresh: started, succeeded; stale: three attempts started and failed, the held label, rotaudit's rotation
        # started, its AWSCURRENT move, succeeded.
        wait_until(lambda: _count_items(endpoint, "rotaudit-demo-audit") == 12, timeout_s=10)
        pages = boto("dynamodb", endpoint).get_paginator("scan").paginate(TableName="rotaudit-demo-audit")
        statuses = [
            i["status"]["S"] for page in pages for i in page["Items"] if i.get("kind", {}).get("S") == "remediation"
        ]
        assert statuses == ["recovered"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        stdout, _ = proc.communicate()
    assert "dynamodb scan" in stdout


def test_second_signal_forces_exit_and_loses_nothing(endpoint: str, stack: dict[str, str], tmp_path: Path) -> None:
    """A second SIGTERM during a drain that cannot finish exits 130 at once; the unfinished message is redelivered."""
    with StallProxy(endpoint, free_port()) as proxy:
        drain = {"ROTAUDIT_DRAIN_TIMEOUT_S": "50", "ROTAUDIT_VISIBILITY_TIMEOUT_S": "60"}
        env = daemon_env(proxy.url, stack, ROTAUDIT_LOG_LEVEL="info", **drain)
        port = int(env["ROTAUDIT_HTTP_PORT"])
        proc = _start(env, tmp_path)
        try:
            wait_until(lambda: _get(port, "/readyz")[0] == 200, timeout_s=30)
            proxy.hold()  # the audit write of the next message will not return
            _send_events(endpoint, stack["queue_url"], [json.dumps(build_event("RotationSucceeded", _arn(0)))])
            wait_until(lambda: proxy.held >= 1, timeout_s=30)
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: _get(port, "/readyz")[0] == 503, timeout_s=10)
            assert proc.poll() is None  # draining: the write is still in flight
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 130
            assert time.monotonic() - started < 5
        finally:
            if proc.poll() is None:
                proc.kill()
    _, stderr = proc.communicate()
    names = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert "daemon.forced_exit" in names
    assert _count_items(endpoint, stack["table_name"]) == 0
    assert _queue_depth(endpoint, stack["queue_url"]) == 1  # not deleted: SQS hands it out again
