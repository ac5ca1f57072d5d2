"""Derived secrets against the emulator over HTTP: rotation events through the queue, the reconcile."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from prometheus_client import CollectorRegistry

from daemon.audit import AuditStore, Outcome
from daemon.aws import Aws
from daemon.config_values import SyncPair
from daemon.consumer import Consumer
from daemon.emit import build_event, publish
from daemon.metrics import Metrics
from daemon.processor import Processor
from daemon.sync.syncer import Syncer, SyncOutcome, Trigger
from tests.support import REGION, boto
from tests.support.sync import (
    INITIAL_URL,
    NASTY_PASSWORD,
    current,
    eventually,
    make_secret,
    new_syncer,
    parsed_event,
    rds_pair,
    rotate,
    sync_count,
    sync_items,
    unique_name,
    versions,
)


@pytest.fixture
async def aws(endpoint: str) -> AsyncIterator[Aws]:
    async with Aws(REGION, endpoint_url=endpoint, max_attempts=2) as client:
        yield client


# --- the event path --------------------------------------------------------------------------------------
async def _run_consumer(
    aws: Aws, stack: dict[str, str], syncer: Syncer, body: Callable[[Metrics], Awaitable[None]]
) -> None:
    """Run the real consumer and processor, with the sync hook, while `body` drives them."""
    metrics = Metrics()
    processor = Processor(AuditStore(aws, stack["table_name"]), metrics, hooks=[syncer.on_event])
    consumer = Consumer(
        aws, processor, metrics, queue_url=stack["queue_url"], dlq_url=stack["dlq_url"], pollers=1, wait_time_s=1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, 5.0))
    try:
        await body(metrics)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_a_rotation_updates_the_target_once_and_a_redelivery_writes_nothing(
    endpoint: str, aws: Aws, stack: dict[str, str]
) -> None:
    """RotationSucceeded through EventBridge and the queue rewrites the target once; the rotation's own Secret Label
    Updated event and two more deliveries do not."""
    pair, source, target = rds_pair(endpoint)
    registry = CollectorRegistry()
    syncer = new_syncer(aws, stack, pair, registry=registry)
    source_version = rotate(endpoint, source, NASTY_PASSWORD)
    envelope = build_event("RotationSucceeded", source)

    async def drive(metrics: Metrics) -> None:
        await publish(aws, envelope, via="eventbridge")
        await eventually(lambda: sync_count(registry, pair.name, "updated") == 1)
        for _ in range(2):
            await publish(aws, envelope, via="queue", queue_url=stack["queue_url"])
        processed = "rotaudit_events_processed_total"
        labels = {"event_name": "RotationSucceeded", "outcome": "duplicate"}
        await eventually(lambda: (metrics.registry.get_sample_value(processed, labels) or 0) >= 2)
        await eventually(lambda: sync_count(registry, pair.name, "unchanged") == 3)

    await _run_consumer(aws, stack, syncer, drive)
    assert versions(endpoint, target) == 2
    # The new AWSCURRENT's Secret Label Updated (sent by the emulator as the value was put) is one more delivery.
    assert (sync_count(registry, pair.name, "updated"), sync_count(registry, pair.name, "unchanged")) == (1, 3)
    url = urlsplit(current(endpoint, target)[1])
    assert unquote(url.password or "") == NASTY_PASSWORD
    assert (url.hostname, url.port, url.path) == ("db.internal", 5432, "/appdb")  # fallbacks from the target
    items = sync_items(endpoint, stack["table_name"], target)
    assert [item["outcome"] for item in items] == ["updated", "unchanged", "unchanged", "unchanged"]
    assert {item["source_version_id"] for item in items} == {source_version}
    assert {item["trigger"] for item in items} == {"event"}


async def test_a_label_event_syncs_and_other_events_do_not(endpoint: str, aws: Aws, stack: dict[str, str]) -> None:
    """Secret Label Updated for AWSCURRENT triggers a sync; RotationStarted, AWSPREVIOUS and other secrets do not."""
    pair, source, target = rds_pair(endpoint)
    syncer = new_syncer(aws, stack, pair)
    version = rotate(endpoint, source, "new-password")
    for ignored in (
        parsed_event("RotationStarted", source),
        parsed_event("TestRotationSucceeded", source),
        parsed_event("SecretLabelUpdated", source, version_id=version, label="AWSPREVIOUS"),
        parsed_event("RotationSucceeded", target),
    ):
        await syncer.on_event(ignored, Outcome.RECORDED)
    assert versions(endpoint, target) == 1
    await syncer.on_event(parsed_event("SecretLabelUpdated", source, version_id=version), Outcome.RECORDED)
    assert versions(endpoint, target) == 2


async def test_a_pair_matches_events_by_source_name(endpoint: str, aws: Aws, stack: dict[str, str]) -> None:
    """A pair whose source is configured by name syncs on an event carrying the source's ARN."""
    pair, source, target = rds_pair(endpoint)
    by_name = SyncPair(name=pair.name, source=source.split(":secret:")[1][:-7], target=target)
    await new_syncer(aws, stack, by_name).on_event(parsed_event("RotationSucceeded", source), Outcome.RECORDED)
    assert versions(endpoint, target) == 2


# --- the reconcile ---------------------------------------------------------------------------------------
async def test_the_reconcile_repairs_a_target_changed_by_hand(endpoint: str, stack: dict[str, str], aws: Aws) -> None:
    """The reconcile job's first pass rewrites a target someone overwrote, then the job stops on request."""
    pair, _, target = rds_pair(endpoint)
    registry = CollectorRegistry()
    syncer = new_syncer(aws, stack, pair, registry=registry, interval_s=3600)
    assert (await syncer.run_once())[0].outcome is SyncOutcome.UPDATED
    good = current(endpoint, target)[1]
    boto("secretsmanager", endpoint).put_secret_value(SecretId=target, SecretString=INITIAL_URL)  # stale
    stop = asyncio.Event()
    job = asyncio.create_task(syncer.run(stop))
    await eventually(lambda: sync_count(registry, pair.name, "updated") == 2)
    stop.set()
    await asyncio.wait_for(job, 10)
    assert current(endpoint, target)[1] == good
    items = sync_items(endpoint, stack["table_name"], target)
    assert [(item["trigger"], item["outcome"]) for item in items] == [("manual", "updated"), ("reconcile", "updated")]


async def test_the_reconcile_audits_no_unchanged_pass(endpoint: str, stack: dict[str, str], aws: Aws) -> None:
    """A reconcile pass that finds the target in sync counts and logs it, and writes no audit item."""
    pair, _, target = rds_pair(endpoint)
    syncer = new_syncer(aws, stack, pair)
    await syncer.run_once()
    results = await syncer.run_once(trigger=Trigger.RECONCILE)
    assert [r.outcome for r in results] == [SyncOutcome.UNCHANGED]
    assert len(sync_items(endpoint, stack["table_name"], target)) == 1


async def test_a_target_rolled_back_by_hand_is_restored_without_a_new_version(
    endpoint: str, aws: Aws, stack: dict[str, str]
) -> None:
    """When AWSCURRENT is moved back to the old version, the sync moves it onto its own version again."""
    pair, _, target = rds_pair(endpoint)
    syncer = new_syncer(aws, stack, pair)
    first = (await syncer.run_once())[0]
    boto("secretsmanager", endpoint).update_secret_version_stage(
        SecretId=target,
        VersionStage="AWSCURRENT",
        MoveToVersionId=first.previous_version_id,
        RemoveFromVersionId=first.target_version_id,
    )
    again = (await syncer.run_once())[0]
    assert again.outcome is SyncOutcome.UPDATED
    assert again.target_version_id == first.target_version_id
    assert current(endpoint, target)[0] == first.target_version_id
    assert versions(endpoint, target) == 2


async def test_a_json_target_keeps_its_other_keys(endpoint: str, aws: Aws, stack: dict[str, str]) -> None:
    """A target holding {"DATABASE_URL": ..., ...} is updated in place; a target without a value gets a URL."""
    source = make_secret(endpoint, unique_name("src"), json.dumps({"username": "app", "password": "pw"}))
    document = make_secret(
        endpoint, unique_name("doc"), json.dumps({"DATABASE_URL": INITIAL_URL, "REDIS_URL": "redis://r"})
    )
    empty = make_secret(endpoint, unique_name("empty"), None)
    pairs = (
        SyncPair(name="doc", source=source, target=document),
        SyncPair(name="empty", source=source, target=empty, host="h.internal", port=5433, dbname="d"),
    )
    results = await new_syncer(aws, stack, *pairs).run_once()
    assert [r.outcome for r in results] == [SyncOutcome.UPDATED, SyncOutcome.UPDATED]
    written = json.loads(current(endpoint, document)[1])
    assert written == {
        "DATABASE_URL": "postgres://app:pw@db.internal:5432/appdb?sslmode=require",
        "REDIS_URL": "redis://r",
    }
    assert current(endpoint, empty)[1] == "postgres://app:pw@h.internal:5433/d?sslmode=require"


# --- replicas --------------------------------------------------------------------------------------------
class _StallsAfterReadingSource(Aws):
    """A replica whose first read of the source returns, then stalls until the test lets it go on."""

    def __init__(self, region: str, *, endpoint_url: str, source: str) -> None:
        super().__init__(region, endpoint_url=endpoint_url, max_attempts=2)
        self.source = source
        self.read = asyncio.Event()
        self.go_on = asyncio.Event()

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        result = await super().call(service, operation, **params)
        if operation == "get_secret_value" and params.get("SecretId") == self.source and not self.read.is_set():
            self.read.set()
            await self.go_on.wait()
        return result


def _password_of(url: str) -> str:
    return unquote(urlsplit(url).password or "")


async def test_a_stalled_replica_never_writes_an_older_password_over_a_newer_one(
    endpoint: str, aws: Aws, stack: dict[str, str]
) -> None:
    """Replica B reads source v1 and stalls; the source rotates; A writes v2; B wakes: the target keeps v2."""
    pair, source, target = rds_pair(endpoint)
    rotate(endpoint, source, "password-v1")
    async with _StallsAfterReadingSource(REGION, endpoint_url=endpoint, source=source) as slow:
        stalled = asyncio.create_task(new_syncer(slow, stack, pair).sync_pair(pair, Trigger.RECONCILE))
        await asyncio.wait_for(slow.read.wait(), 10)
        rotate(endpoint, source, "password-v2")
        written = await new_syncer(aws, stack, pair).sync_pair(pair, Trigger.EVENT)
        assert written.outcome is SyncOutcome.UPDATED
        slow.go_on.set()
        late = await asyncio.wait_for(stalled, 10)
    assert _password_of(current(endpoint, target)[1]) == "password-v2"
    assert current(endpoint, target)[0] == written.target_version_id
    assert (late.outcome, late.source_version_id) == (SyncOutcome.UNCHANGED, written.source_version_id)


async def test_the_emulator_refuses_a_label_move_from_the_wrong_version(endpoint: str) -> None:
    """UpdateSecretVersionStage fails when RemoveFromVersionId is not the version carrying the label, as on AWS.

    The sync write relies on it (API reference, RemoveFromVersionId: "If the label is attached and you either do
    not specify this parameter, or the version ID does not match, then the operation fails."); moto 5.2 agrees.
    """
    sm = boto("secretsmanager", endpoint)
    name = unique_name("stage")
    first = sm.create_secret(Name=name, SecretString="a")["VersionId"]
    second = sm.put_secret_value(SecretId=name, SecretString="b", VersionStages=["ROTAUDIT_SYNC"])["VersionId"]
    third = sm.put_secret_value(SecretId=name, SecretString="c", VersionStages=["OTHER"])["VersionId"]
    with pytest.raises(sm.exceptions.InvalidParameterException):
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=third, RemoveFromVersionId=second
        )
    assert current(endpoint, name)[0] == first
