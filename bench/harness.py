"""Run the emulator in its own process and measure one contender draining a prefilled queue against it.

The clock runs from the contender's "ready" to the first moment the harness sees the queue empty (visible +
in flight) with the audit table holding every distinct event. AWS calls are the emulator's count for that
window, less the contender's start-up calls (taken at ready) and the harness's own polling (counted here);
CPU is the contender's utime + stime over the same window.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench.contenders import ROOT, Contender, clean_env, cpu_seconds, http_get, start
from bench.workload import REGION, Workload, clean_up, prepare

# Each poll is a GetQueueAttributes, which moto answers by walking the whole queue: 100 ms of the emulator's time
# with 2,000 messages queued when asked for "All", 440 ms when asked for the two counts by name (it recomputes
# every attribute per name). So the harness asks for "All", once a second while the queue is long, and every
# 0.2 s near the end, where the clock stops.
POLL_S = 0.2
POLL_FAR_S = 1.0
NEAR_DONE = 200  # messages left (visible + in flight) below which the harness polls every POLL_S
READY_TIMEOUT_S = 60.0
SHORT_GRACE_S = 10.0  # queue empty but items missing this long: events were lost
STALL_MIN_S = 5.0
WORK_OPERATIONS = frozenset({"sqs.ReceiveMessage"})  # may land before the ready snapshot, yet are work


class BenchError(RuntimeError):
    """A run went wrong: a contender crashed, lost events or did not finish in time."""


class EmulatorProcess:
    """`python -m daemon.devtools.emulator` (or a variant of it) on a free port, with a fixed latency per AWS call."""

    def __init__(
        self,
        latency_ms: float,
        out_dir: Path,
        module: str = "daemon.devtools.emulator",
        *,
        name: str = "emulator",
        extra_args: tuple[str, ...] = (),
        start_timeout_s: float = 30.0,
    ) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.latency_ms = latency_ms
        self.stdout_path = out_dir / f"{name}-{latency_ms:g}ms.stdout"
        argv = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0"]
        argv += ["--latency-ms", f"{latency_ms:g}", *extra_args]
        with self.stdout_path.open("wb") as out, self.stdout_path.with_suffix(".stderr").open("wb") as err:
            self.process = subprocess.Popen(argv, env=clean_env(), cwd=ROOT, stdout=out, stderr=err)
        self.announcement: dict[str, Any] = {}  # the JSON line the emulator prints once it serves
        self.endpoint_url = self._wait_for_endpoint(start_timeout_s)

    def _wait_for_endpoint(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.stdout_path.read_text().splitlines():
                if line.startswith("{"):
                    self.announcement = json.loads(line)
                    return str(self.announcement["endpoint_url"])
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"the emulator did not start; see {self.stdout_path.with_suffix('.stderr')}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stats(self) -> Counter[str]:
        _, text = http_get(f"{self.endpoint_url}/_rotaudit/stats")
        return Counter(json.loads(text))

    def reset_stats(self) -> None:
        url = f"{self.endpoint_url}/_rotaudit/stats/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310  # our own http:// URL
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass(frozen=True)
class Snapshot:
    """What the harness reads at one instant: clock, contender CPU, emulator counts, its own calls so far."""

    at_s: float
    cpu_s: float
    emulator_cpu_s: float
    emulator: Counter[str]
    harness: Counter[str]
    own_calls: dict[str, float]
    own_received: float

    @classmethod
    def take(cls, contender: Contender, emulator: EmulatorProcess, harness: Counter[str]) -> Snapshot:
        at_s, cpu_s, emulator_cpu_s = time.perf_counter(), contender.cpu_seconds(), emulator.cpu_seconds()
        return cls(at_s, cpu_s, emulator_cpu_s, emulator.stats(), Counter(harness), *contender.own_metrics())


def stalled_s(samples: list[tuple[float, int, int]], min_run_s: float = STALL_MIN_S) -> float:
    """Time spent in runs (each at least `min_run_s`) where nothing was visible and nothing in flight settled.

    Stock moto loses concurrent deletes, and those messages wait out their visibility timeout here; the project's
    emulator patch (`sqs-serialised` in daemon/devtools/patches/sqs.py) keeps this at zero.
    """
    total, run_start = 0.0, None
    for (t0, visible0, hidden0), (_, visible1, hidden1) in itertools.pairwise(samples):
        if visible0 == visible1 == 0 and hidden0 == hidden1 > 0:
            run_start = t0 if run_start is None else run_start
            continue
        if run_start is not None and t0 - run_start >= min_run_s:
            total += t0 - run_start
        run_start = None
    return round(total, 1)


class Watcher:
    """The harness's own AWS client: watches the queue and the table, counting every call it makes."""

    def __init__(self, endpoint_url: str, stack: dict[str, str]) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint_url)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)
        self.stack = stack
        self.calls: Counter[str] = Counter()  # every HTTP request sent, botocore's retries included
        for client in (self.sqs, self.dynamodb):
            client.meta.events.register("before-send", self._count)
        self.samples: list[tuple[float, int, int]] = []  # (time, visible, in flight) of the main queue

    def _count(self, event_name: str, **_: Any) -> None:
        _prefix, service_name, operation = event_name.split(".", 2)  # "before-send.sqs.GetQueueAttributes"
        self.calls[f"{service_name}.{operation}"] += 1

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        visible, hidden = (int(attributes[name]) for name in names)
        if queue_url == self.stack["queue_url"]:
            self.samples.append((time.perf_counter(), visible, hidden))
        return visible, hidden

    def count_items(self) -> int:
        """Event items in the audit table (their sort key holds "#event#")."""
        count, start_key = 0, None
        while True:
            extra: dict[str, Any] = {"ExclusiveStartKey": start_key} if start_key else {}
            page = self.dynamodb.scan(
                TableName=self.stack["table_name"],
                Select="COUNT",
                FilterExpression="contains(sk, :event)",  # event items only, whatever else a contender writes
                ExpressionAttributeValues={":event": {"S": "#event#"}},
                **extra,
            )
            count += int(page["Count"])
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                return count

    def wait_drained(
        self, contender: Contender, emulator: EmulatorProcess, expected: int, timeout_s: float
    ) -> tuple[Snapshot, int]:
        deadline = time.monotonic() + timeout_s
        short_since: float | None = None
        while True:
            if contender.process.poll() is not None:
                raise BenchError(f"contender exited while draining: {contender.describe_failure()}")
            left = sum(self.depth(self.stack["queue_url"]))
            if left == 0:
                snapshot = Snapshot.take(contender, emulator, self.calls)
                count = self.count_items()
                if count == expected:
                    return snapshot, count
                short_since = short_since or time.monotonic()
                if count > expected or time.monotonic() - short_since > SHORT_GRACE_S:
                    raise BenchError(f"{contender.name}: queue empty, table holds {count} items, expected {expected}")
            else:
                short_since = None
            if time.monotonic() > deadline:
                raise BenchError(f"{contender.name} did not drain the queue within {timeout_s:.0f}s")
            time.sleep(POLL_S if left < NEAR_DONE else POLL_FAR_S)


def _wait_ready(contender: Contender) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not contender.is_ready():
        if contender.process.poll() is not None:
            raise BenchError(f"contender exited before ready: {contender.describe_failure()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{contender.name} not ready within {READY_TIMEOUT_S:.0f}s")
        time.sleep(0.02)


def _positive(counts: Counter[str]) -> dict[str, int]:
    return {key: value for key, value in sorted(counts.items()) if value > 0}


def measure(
    name: str,
    emulator: EmulatorProcess,
    workload: Workload,
    *,
    workers: int,
    wait_time_s: int,
    out_dir: Path,
    timeout_s: float,
) -> dict[str, Any]:
    """Fresh resources, prefill, run `name` until drained, stop it; return its figures."""
    tag = f"{emulator.latency_ms:g}ms"
    prefix = f"bench-{name}-{tag}-{uuid.uuid4().hex[:6]}"
    stack = prepare(emulator.endpoint_url, prefix, workload.bodies)
    try:
        watcher = Watcher(emulator.endpoint_url, stack)
        emulator.reset_stats()
        contender = start(
            name,
            endpoint_url=emulator.endpoint_url,
            stack=stack,
            workers=workers,
            wait_time_s=wait_time_s,
            out_dir=out_dir,
            tag=tag,
        )
        try:
            _wait_ready(contender)
            ready = Snapshot.take(contender, emulator, Counter())
            done, items = watcher.wait_drained(contender, emulator, workload.distinct, timeout_s)
        finally:
            exit_code = contender.stop()
        dlq_messages = sum(watcher.depth(stack["dlq_url"]))
    finally:
        clean_up(emulator.endpoint_url, stack)
    if exit_code != 0:
        raise BenchError(f"{name} exited with {exit_code} after SIGTERM: {contender.describe_failure()}")

    startup = Counter({op: n for op, n in ready.emulator.items() if op not in WORK_OPERATIONS})
    calls = _positive(done.emulator - startup - done.harness)
    seconds = done.at_s - ready.at_s
    cpu_s = done.cpu_s - ready.cpu_s
    total_calls = sum(calls.values())
    received = int(done.own_received) if done.own_calls else contender.reported_received()
    figures: dict[str, Any] = {
        "contender": name,
        "latency_ms": emulator.latency_ms,
        "seconds": round(seconds, 3),
        "messages": workload.messages,
        "unique_events": workload.distinct,
        "messages_per_s": round(workload.messages / seconds, 1),
        "unique_events_per_s": round(workload.distinct / seconds, 1),
        "aws_calls": total_calls,
        "aws_calls_by_operation": calls,
        "aws_calls_per_unique_event": round(total_calls / workload.distinct, 3),
        "aws_calls_per_message": round(total_calls / workload.messages, 3),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_message": round(1000 * cpu_s / workload.messages, 3),
        "cpu_ms_per_unique_event": round(1000 * cpu_s / workload.distinct, 3),
        # The emulator's CPU over the window: the work the contender's calls cost it (and the harness's polls).
        "emulator_cpu_s": round(done.emulator_cpu_s - ready.emulator_cpu_s, 2),
        "messages_received": received,
        "redeliveries": None if received is None else received - workload.messages,
        "stalled_s": stalled_s(watcher.samples),
        "startup_calls": _positive(startup),
        "harness_calls": _positive(done.harness),
        "table_items": items,
        "dlq_messages": dlq_messages,
        "exit_code": exit_code,
    }
    if done.own_calls:
        own = {op: n - ready.own_calls.get(op, 0.0) for op, n in done.own_calls.items()}
        figures["own_metric_aws_calls_by_operation"] = {op: int(n) for op, n in sorted(own.items()) if n > 0}
        figures["own_metric_aws_calls"] = int(sum(own.values()))
    return figures
