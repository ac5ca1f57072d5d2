"""The latency benchmark's instruments: the emulator's own round trips, and a watcher that sees items become readable.

Clocks: every time here is the harness's `time.time()`, the same host clock the emulator (which stamps
SentTimestamp) and the daemon (which stamps an item's `recorded_at`) read, so the three can be compared.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from bench.workload import REGION

BATCH_GET_MAX = 100  # keys per BatchGetItem (the API's limit)


def nearest_rank(values: list[float], percentile: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `percentile`% of the values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percentile // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
    """count, p50, p99 and max of `values` (times `scale`), rounded."""
    return {
        "count": len(values),
        "p50": round(nearest_rank(values, 50) * scale, digits),
        "p99": round(nearest_rank(values, 99) * scale, digits),
        "max": round(max(values) * scale, digits),
    }


def round_trips(endpoint_url: str, stack: dict[str, str], samples: int) -> dict[str, dict[str, float | int]]:
    """The emulator's round trip per operation, in ms, as a boto3 client on this host sees it, one call at a time.

    This is what the emulator (moto in its own process, over loopback HTTP, with botocore's client-side work
    included) adds to every AWS call in the figures; AWS's own round trips in a region are typically larger.
    """
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint_url)
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)
    queue_url, table = stack["queue_url"], stack["table_name"]
    timings: dict[str, list[float]] = {}

    def timed(operation: str, call: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        response = call(**kwargs)
        timings.setdefault(operation, []).append(time.perf_counter() - started)
        return response

    # Each operation's first call pays for connection set-up and for moto's lazy work: not timed.
    warm = {"pk": {"S": "warm-up"}, "sk": {"S": "warm-up"}}
    sqs.send_message(QueueUrl=queue_url, MessageBody="warm-up")
    for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", []):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    dynamodb.put_item(TableName=table, Item=warm)
    dynamodb.get_item(TableName=table, Key=warm, ConsistentRead=True)
    dynamodb.batch_get_item(RequestItems={table: {"Keys": [warm], "ConsistentRead": True}})
    keys = [{"pk": {"S": f"probe#{uuid.uuid4().hex}"}, "sk": {"S": "probe"}} for _ in range(samples)]
    for n in range(samples):
        timed("sqs.SendMessage", sqs.send_message, QueueUrl=queue_url, MessageBody=f"probe {n}")
    for _ in range(samples):
        got = timed("sqs.ReceiveMessage", sqs.receive_message, QueueUrl=queue_url, MaxNumberOfMessages=1)
        for message in got.get("Messages", []):
            timed("sqs.DeleteMessage", sqs.delete_message, QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    for key in keys:
        timed("dynamodb.PutItem", dynamodb.put_item, TableName=table, Item=key)
    for key in keys:
        timed("dynamodb.GetItem", dynamodb.get_item, TableName=table, Key=key, ConsistentRead=True)
    for key in keys:
        request = {table: {"Keys": [key], "ConsistentRead": True}}
        timed("dynamodb.BatchGetItem", dynamodb.batch_get_item, RequestItems=request)
    return {operation: spread(values, scale=1000.0, digits=2) for operation, values in timings.items()}


def parse_recorded_at(text: str) -> float:
    """An item's `recorded_at` as epoch seconds: rotaudit writes "...T..:..:..mmmZ", the baseline a naive UTC ISO."""
    moment = datetime.fromisoformat(text.removesuffix("Z"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Sample:
    """One event: when the harness's SendMessage returned, when an item was first read, and the item's own stamp."""

    sent_at: float
    seen_at: float
    recorded_at: float | None

    @property
    def readable_s(self) -> float:
        return self.seen_at - self.sent_at

    @property
    def write_started_s(self) -> float | None:
        return None if self.recorded_at is None else self.recorded_at - self.sent_at


class Readability:
    """A thread that polls the audit table, with consistent reads, for items the harness expects.

    About every `poll_s` (jittered ±50%, so the polls cannot fall into step with a steady sender) it sends
    BatchGetItem (ConsistentRead) for all pending keys, 100 per call; an item found is stamped with the moment that
    call returned. So a sample's end is at most 1.5 poll intervals plus one BatchGetItem round trip after the item
    became readable, about half an interval on average.
    """

    def __init__(self, endpoint_url: str, table: str, poll_s: float) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)
        self.table = table
        self.poll_s = poll_s
        self.calls = 0
        self.ticks = 0
        self.errors: list[str] = []
        self._pending: dict[tuple[str, str], float] = {}
        self._samples: dict[tuple[str, str], Sample] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readability", daemon=True)

    def __enter__(self) -> Readability:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def expect(self, key: tuple[str, str], sent_at: float) -> None:
        with self._lock:
            if key in self._pending or key in self._samples:
                raise ValueError(f"key sent twice: {key}")
            self._pending[key] = sent_at

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def samples(self, keys: list[tuple[str, str]]) -> list[Sample]:
        with self._lock:
            return [self._samples[key] for key in keys if key in self._samples]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            with self._lock:
                keys = list(self._pending)
            for start in range(0, len(keys), BATCH_GET_MAX):
                try:
                    self._poll(keys[start : start + BATCH_GET_MAX])
                except Exception as exc:  # reported by the harness, which then fails the run
                    self.errors.append(repr(exc))
            if keys:
                self.ticks += 1
            interval = self.poll_s * random.uniform(0.5, 1.5)
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _poll(self, keys: list[tuple[str, str]]) -> None:
        request = {
            self.table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "pk, sk, #r",
                "ExpressionAttributeNames": {"#r": "recorded_at"},
            }
        }
        self.calls += 1
        response = self.dynamodb.batch_get_item(RequestItems=request)
        seen_at = time.time()
        with self._lock:
            for item in response.get("Responses", {}).get(self.table, []):
                key = (item["pk"]["S"], item["sk"]["S"])
                sent_at = self._pending.pop(key, None)
                if sent_at is None:
                    continue
                recorded = item.get("recorded_at", {}).get("S")
                self._samples[key] = Sample(sent_at, seen_at, parse_recorded_at(recorded) if recorded else None)
