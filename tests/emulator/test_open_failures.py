"""The open-failure state on the emulator: what failures, successes and escalations leave in the table and gauges.

Events go through the real `Processor` (audit item first, then the hook) of replicas with their own AWS clients
and registries, as the daemon wires them; the state is read back from the table's `failures-open` partition and
from each replica's gauges, which every replica refreshes from the table alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.emit import build_event
from daemon.failures.metrics import FailureMetrics
from daemon.failures.store import FailureStore
from daemon.failures.tracker import FailureTracker
from daemon.features import build_features
from daemon.metrics import Metrics
from daemon.processor import Message, Processor, Verdict
from tests.support import REGION, boto
from tests.support.remediation import config, receive_envelopes, rotate, rotating_secret, subscribe
from tests.support.rotation import Failure as Fault

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Replica:
    """One daemon's event path with only the open-failure hook, and its own gauges."""

    tracker: FailureTracker
    processor: Processor
    metrics: Metrics

    async def feed(self, envelope: dict[str, Any]) -> None:
        message = Message(message_id=str(uuid.uuid4()), body=json.dumps(envelope), receipt_handle="r")
        (disposition,) = await self.processor.process([message])
        assert disposition.verdict is Verdict.DONE, disposition

    def sample(self, name: str, **labels: str) -> float:
        return float(self.metrics.registry.get_sample_value(name, labels) or 0.0)

    @property
    def open(self) -> float:
        return self.sample("rotaudit_rotation_failures_open")


@contextlib.asynccontextmanager
async def replicas(count: int, endpoint: str, table: str) -> AsyncIterator[list[Replica]]:
    async with contextlib.AsyncExitStack() as stack:
        made = []
        for _ in range(count):
            metrics = Metrics()
            aws = await stack.enter_async_context(Aws(REGION, endpoint_url=endpoint, metrics=metrics))
            tracker = FailureTracker(FailureStore(aws, table), FailureMetrics(metrics.registry))
            made.append(Replica(tracker, Processor(AuditStore(aws, table), metrics, hooks=[tracker.on_event]), metrics))
        yield made


def arn() -> str:
    return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:db-{uuid.uuid4().hex[:8]}-AbCdEf"


def event(name: str, secret: str, minutes: float, **extra: Any) -> dict[str, Any]:
    rotation_id = extra.pop("rotation_id", str(uuid.uuid4()))
    step = "setSecret" if name == "RotationFailed" else None
    return build_event(name, secret, rotation_id=rotation_id, when=T0 + timedelta(minutes=minutes), step=step)


def open_items(endpoint: str, table: str) -> dict[str, dict[str, Any]]:
    """The `failures-open` partition: secret ARN -> item."""
    page = boto("dynamodb", endpoint).query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "failures-open"}}
    )
    return {item["sk"]["S"]: item for item in page["Items"]}


def recovery(replica: Replica) -> tuple[float, float]:
    """(count, sum) of rotaudit_rotation_recovery_seconds."""
    return (
        replica.sample("rotaudit_rotation_recovery_seconds_count"),
        replica.sample("rotaudit_rotation_recovery_seconds_sum"),
    )


async def test_a_failure_opens_and_sets_the_gauges(endpoint: str, stack: dict[str, str]) -> None:
    """A RotationFailed leaves one open item for its secret; the gauges count it, aged from the failure's time."""
    secret = arn()
    async with replicas(1, endpoint, stack["table_name"]) as (replica,):
        await replica.feed(event("RotationFailed", secret, 0))
        assert replica.open == 1
        assert replica.sample("rotaudit_rotation_failure_oldest_open_timestamp_seconds") == T0.timestamp()
        assert replica.sample("rotaudit_rotation_failures_needing_human") == 0
    assert set(open_items(endpoint, stack["table_name"])) == {secret}


async def test_an_abandoned_rotation_opens_too(endpoint: str, stack: dict[str, str]) -> None:
    """RotationAbandoned is a failure that is not recovered either."""
    async with replicas(1, endpoint, stack["table_name"]) as (replica,):
        await replica.feed(event("RotationAbandoned", arn(), 0))
        assert replica.open == 1


async def test_duplicates_and_repeats_count_the_secret_once(endpoint: str, stack: dict[str, str]) -> None:
    """The same failure delivered three times, and a second failure of the secret: one open secret, one write each."""
    secret = arn()
    first = event("RotationFailed", secret, 0)
    async with replicas(2, endpoint, stack["table_name"]) as (a, b):
        await a.feed(first)
        (written,) = open_items(endpoint, stack["table_name"]).values()
        for replica in (b, a):
            await replica.feed(first)
        assert open_items(endpoint, stack["table_name"]) == {secret: written}  # the duplicates wrote nothing
        await b.feed(event("RotationFailed", secret, 5))
        # b's retry of an open secret moved no gauge, so b did not refresh (its timer does, every replica's does).
        await b.tracker.refresh()
        assert (a.open, b.open) == (1, 1)
    (item,) = open_items(endpoint, stack["table_name"]).values()
    assert [t["S"] for t in item["failed_at"]["L"]] == ["2026-03-01T12:00:00.000Z", "2026-03-01T12:05:00.000Z"]


def transactions(replica: Replica) -> float:
    return replica.sample("rotaudit_aws_calls_total", service="dynamodb", operation="transact_write_items")


def reads(replica: Replica) -> float:
    return replica.sample("rotaudit_aws_calls_total", service="dynamodb", operation="get_item")


async def test_a_retried_rotations_failures_cost_one_write_each_and_a_redelivery_none(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Secrets Manager's retries of a failed rotation (new event ids) cost one transaction each on the replica that
    wrote the last one (its remembered versions), no read; the same event delivered again to it costs no call."""
    secret = arn()
    first = event("RotationFailed", secret, 0)
    async with replicas(1, endpoint, stack["table_name"]) as (replica,):
        await replica.feed(first)
        before = (transactions(replica), reads(replica))
        await replica.feed(event("RotationFailed", secret, 5))
        await replica.feed(event("RotationFailed", secret, 10))
        assert (transactions(replica), reads(replica)) == (before[0] + 2, before[1])
        await replica.feed(first)
        assert (transactions(replica), reads(replica)) == (before[0] + 2, before[1])
    (item,) = open_items(endpoint, stack["table_name"]).values()
    assert len(item["failed_at"]["L"]) == 3


async def test_a_remembered_state_another_replica_changed_since_is_read_again(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Replica a remembers the failure it opened; b closes it with a success; a's next failure, after the success,
    loses its versioned write on the stale memory, reads afresh, and leaves exactly that failure open."""
    secret = arn()
    async with replicas(2, endpoint, stack["table_name"]) as (a, b):
        await a.feed(event("RotationFailed", secret, 0))
        await b.feed(event("RotationSucceeded", secret, 30))
        assert open_items(endpoint, stack["table_name"]) == {}
        reads_before = reads(a)
        await a.feed(event("RotationFailed", secret, 60))
        assert reads(a) > reads_before  # the stale memory lost its race and was read again
        assert a.open == 1
    (item,) = open_items(endpoint, stack["table_name"]).values()
    assert [t["S"] for t in item["failed_at"]["L"]] == ["2026-03-01T13:00:00.000Z"]


async def test_a_late_failure_before_a_success_another_replica_saw_stays_closed(
    endpoint: str, stack: dict[str, str]
) -> None:
    """a opens a failure at 0:10 (remembering it); b records a success at 0:05 (before it: the failure stays open);
    a late failure at 0:00, older than that success, reaches a: it must not be added, though a's memory predates
    the success."""
    secret = arn()
    async with replicas(2, endpoint, stack["table_name"]) as (a, b):
        await a.feed(event("RotationFailed", secret, 10))
        await b.feed(event("RotationSucceeded", secret, 5))
        await a.feed(event("RotationFailed", secret, 0))
    (item,) = open_items(endpoint, stack["table_name"]).values()
    assert [t["S"] for t in item["failed_at"]["L"]] == ["2026-03-01T12:10:00.000Z"]


async def test_a_success_closes_the_failure_and_observes_the_time_to_recover(
    endpoint: str, stack: dict[str, str]
) -> None:
    """A RotationSucceeded an hour after the failure removes its item and observes 3600 s, once across duplicates."""
    secret = arn()
    succeeded = event("RotationSucceeded", secret, 60)
    async with replicas(2, endpoint, stack["table_name"]) as (a, b):
        await a.feed(event("RotationFailed", secret, 0))
        await b.feed(succeeded)
        await a.feed(succeeded)
        assert b.open == 0
        assert recovery(b) == (1, 3600)
        assert recovery(a) == (0, 0)
        assert b.sample("rotaudit_rotation_recovery_seconds_bucket", le="1800.0") == 0
        assert b.sample("rotaudit_rotation_recovery_seconds_bucket", le="3600.0") == 1
        assert b.sample("rotaudit_rotation_failure_oldest_open_timestamp_seconds") == 0
    assert open_items(endpoint, stack["table_name"]) == {}


async def test_a_late_failure_older_than_the_success_does_not_reopen(endpoint: str, stack: dict[str, str]) -> None:
    """A failure delivered after a later success stays closed; one after the success opens again."""
    secret = arn()
    async with replicas(1, endpoint, stack["table_name"]) as (replica,):
        await replica.feed(event("RotationSucceeded", secret, 10))
        await replica.feed(event("RotationFailed", secret, 5))
        assert replica.open == 0
        await replica.feed(event("RotationFailed", secret, 15))
        assert replica.open == 1
    assert recovery(replica) == (0, 0)


async def test_a_late_success_closes_only_the_failures_before_it(endpoint: str, stack: dict[str, str]) -> None:
    """Failures at 0 and 30 min, then the success of 10 min delivered last: the 30-min failure stays open."""
    secret = arn()
    async with replicas(1, endpoint, stack["table_name"]) as (replica,):
        await replica.feed(event("RotationFailed", secret, 0))
        await replica.feed(event("RotationFailed", secret, 30))
        await replica.feed(event("RotationSucceeded", secret, 10))
        assert replica.open == 1
        oldest = replica.sample("rotaudit_rotation_failure_oldest_open_timestamp_seconds")
        assert oldest == (T0 + timedelta(minutes=30)).timestamp()
        assert recovery(replica) == (1, 600)


async def test_replicas_recording_failures_of_one_secret_at_once_lose_none(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Three replicas, three failures of one secret, concurrently: each failure time is kept (optimistic retries)."""
    secret = arn()
    async with replicas(3, endpoint, stack["table_name"]) as group:
        feeds = [r.feed(event("RotationFailed", secret, minute)) for r, minute in zip(group, (0, 1, 2), strict=True)]
        await asyncio.gather(*feeds)
    (item,) = open_items(endpoint, stack["table_name"]).values()
    assert len(item["failed_at"]["L"]) == 3


async def test_a_replica_started_later_reports_the_same_gauges(endpoint: str, stack: dict[str, str]) -> None:
    """After the replica that saw the failure is gone, a new one reports it from its first refresh (its timer job)."""
    secret = arn()
    async with replicas(1, endpoint, stack["table_name"]) as (first,):
        await first.feed(event("RotationFailed", secret, 0))
        await first.tracker.needs_human(secret, "db", "r-1")
        seen = {name: first.sample(name) for name in GAUGES}
    assert seen["rotaudit_rotation_failures_open"] == 1
    async with replicas(1, endpoint, stack["table_name"]) as (later,):
        assert later.open == 0  # nothing read yet
        stop = asyncio.Event()
        job = asyncio.create_task(later.tracker.run(stop))
        try:
            async with asyncio.timeout(10):
                while later.sample("rotaudit_rotation_failures_refresh_timestamp_seconds") == 0:  # noqa: ASYNC110 - a gauge has no event
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await job
        assert {name: later.sample(name) for name in GAUGES} == seen


GAUGES = (
    "rotaudit_rotation_failures_open",
    "rotaudit_rotation_failures_needing_human",
    "rotaudit_rotation_failure_oldest_open_timestamp_seconds",
)


async def test_an_escalation_marks_the_open_failure_until_a_success(endpoint: str, stack: dict[str, str]) -> None:
    """An escalation marks the open failure; a later success clears both gauges; an escalation after that (of a
    failure now recovered) changes nothing."""
    secret = arn()
    async with replicas(1, endpoint, stack["table_name"]) as (replica,):
        await replica.feed(event("RotationFailed", secret, 0))
        await replica.tracker.needs_human(secret, "db", "r-1")
        assert replica.sample("rotaudit_rotation_failures_needing_human") == 1
        await replica.feed(event("RotationSucceeded", secret, 90))
        await replica.tracker.needs_human(secret, "db", "r-1")  # a late escalation of the recovered failure
        assert (replica.open, replica.sample("rotaudit_rotation_failures_needing_human")) == (0, 0)


@pytest.mark.usefixtures("rotations_settle")
async def test_remediations_escalation_reaches_the_gauge_through_the_daemons_wiring(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Wired as the daemon wires it (daemon.features), a failure remediation cannot fix counts as needing a human."""
    secret = rotating_secret(endpoint, strategy="unknown", failures=[Fault("testSecret", None)])
    subscribe(endpoint, stack["topic_arn"])
    rotate(endpoint, secret)
    metrics = Metrics()
    async with Aws(REGION, endpoint_url=endpoint, metrics=metrics) as aws:
        features = build_features(aws, config(endpoint, stack), metrics, dlq_url="")
        processor = Processor(AuditStore(aws, stack["table_name"]), metrics, hooks=features.hooks)
        for envelope in receive_envelopes(endpoint, stack["queue_url"], until="RotationFailed"):
            message = Message(message_id=str(uuid.uuid4()), body=json.dumps(envelope), receipt_handle="r")
            (disposition,) = await processor.process([message])
            assert disposition.verdict is Verdict.DONE
    assert metrics.registry.get_sample_value("rotaudit_notifications_total", {"kind": "needs_human"}) == 1
    assert metrics.registry.get_sample_value("rotaudit_rotation_failures_needing_human") == 1
    item = open_items(endpoint, stack["table_name"])[secret.arn]
    assert item["needs_human_at"] == item["failed_at"]["L"][-1]  # the newest open failure is marked
