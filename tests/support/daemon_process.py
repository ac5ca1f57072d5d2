"""`rotaudit run` as a subprocess for end-to-end tests: logs to files, HTTP probes, parsed metrics, queue helpers."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT, boto, rotaudit_cmd, wait_until


class DaemonProcess:
    """The daemon in its own process; stdout and stderr go to files (a pipe nobody reads would block it)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = int(env["ROTAUDIT_HTTP_PORT"])
        self.stdout_path, self.stderr_path = log_dir / "daemon.stdout", log_dir / "daemon.stderr"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.popen = subprocess.Popen(rotaudit_cmd("run"), env=env, cwd=ROOT, stdout=out, stderr=err, text=True)

    def wait_ready(self, timeout_s: float = 30) -> None:
        def ready() -> bool:
            assert self.popen.poll() is None, f"daemon exited {self.popen.returncode}: {self.stderr()[-2000:]}"
            return self.get("/readyz")[0] == 200

        wait_until(ready, timeout_s=timeout_s, interval_s=0.2)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of metric `name` from /metrics: sorted label pairs -> value."""
        status, text = self.get("/metrics")
        assert status == 200, status
        found: dict[tuple[tuple[str, str], ...], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    found[tuple(sorted(sample.labels.items()))] = sample.value
        return found

    def total(self, name: str) -> float:
        return sum(self.samples(name).values())

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then the exit code (killing it if it does not stop in time)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError("daemon did not stop after SIGTERM") from None

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[str]:
        """Every line the daemon wrote, stdout and stderr."""
        return self.stdout_path.read_text().splitlines() + self.stderr().splitlines()

    def log_records(self) -> list[dict[str, Any]]:
        """stderr's JSON log records; fails on any line that is not one (a traceback, a warning from a library)."""
        records = []
        for line in self.stderr().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"daemon wrote a line that is not a JSON log record: {line[:300]!r}") from None
        return records


def send(endpoint: str, queue_url: str, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Send (body, message attributes) pairs in order, batched under 256 KiB; returns how many were sent."""
    sqs = boto("sqs", endpoint)
    batch: list[dict[str, Any]] = []
    size = sent = 0

    def flush() -> None:
        nonlocal batch, size
        if batch:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
            assert not response.get("Failed"), response["Failed"]
        batch, size = [], 0

    for body, attributes in messages:
        body_size = len(body.encode("utf-8"))
        if len(batch) == 10 or size + body_size > 250_000:
            flush()
        batch.append({"Id": str(len(batch)), "MessageBody": body, "MessageAttributes": attributes})
        size += body_size
        sent += 1
    flush()
    return sent


def receive_all(endpoint: str, queue_url: str, hold_s: int = 300) -> list[dict[str, Any]]:
    """Every message in the queue, with attributes, each hidden for `hold_s` (the queue is read, not drained)."""
    sqs = boto("sqs", endpoint)
    found: dict[str, dict[str, Any]] = {}
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=hold_s,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return list(found.values())
        found.update((message["MessageId"], message) for message in got)


def queue_depth(endpoint: str, queue_url: str) -> int:
    """Visible plus in-flight messages."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = boto("sqs", endpoint).get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attrs[name]) for name in names)


def scan_table(endpoint: str, table: str) -> list[dict[str, Any]]:
    """Every item of the table in DynamoDB's wire form (attribute -> {type: value})."""
    pages = boto("dynamodb", endpoint).get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]
