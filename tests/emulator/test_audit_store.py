"""The audit store's memory of confirmed keys: duplicates it has seen need no write, and the memory stays bounded."""

from __future__ import annotations

import json
from typing import Any

from daemon.audit import AuditStore, KnownKeys, Outcome, PendingWrite
from daemon.aws import Aws
from daemon.emit import build_event
from daemon.events import RotationEvent, parse_message
from daemon.metrics import Metrics
from tests.support import REGION

ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:audit/db-a1b2c3"


def _event(name: str = "RotationFailed") -> RotationEvent:
    parsed = parse_message(json.dumps(build_event(name, ARN)))
    assert isinstance(parsed, RotationEvent)
    return parsed


def _dynamodb_calls(metrics: Metrics) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "rotaudit_aws_calls_total" and sample.labels.get("service") == "dynamodb":
                total += sample.value
    return total


async def test_a_key_confirmed_once_is_a_duplicate_without_another_write(
    queue_and_table: dict[str, Any], endpoint: str
) -> None:
    """The second delivery of an event this process recorded costs no DynamoDB call and is a duplicate."""
    metrics = Metrics()
    events = [_event("RotationStarted"), _event("RotationFailed")]
    async with Aws(REGION, endpoint_url=endpoint, metrics=metrics) as aws:
        store = AuditStore(aws, queue_and_table["table_name"])
        first = await store.record_many([PendingWrite(e) for e in events])
        calls = _dynamodb_calls(metrics)
        again = await store.record_many([PendingWrite(e) for e in events])
        assert _dynamodb_calls(metrics) == calls
        # A fresh store (another replica, or a restart) does not know the keys: DynamoDB's condition decides.
        fresh = await AuditStore(aws, queue_and_table["table_name"]).record_many([PendingWrite(e) for e in events])
    assert first == [Outcome.RECORDED, Outcome.RECORDED]
    assert again == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert fresh == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert _dynamodb_calls(metrics) > calls


def test_known_keys_forget_the_oldest_beyond_their_limit() -> None:
    """The memory holds at most `limit` keys, dropping the least recently confirmed first."""
    known = KnownKeys(limit=2)
    for key in (("a", "1"), ("b", "1"), ("c", "1")):
        known.add(key)
    assert len(known) == 2
    assert ("a", "1") not in known
    assert ("b", "1") in known
    assert ("c", "1") in known


def test_known_keys_expire_after_their_ttl() -> None:
    """A key older than the TTL is unknown again, so a long-delayed replay is checked against the table."""
    now = [100.0]
    known = KnownKeys(ttl_s=60, clock=lambda: now[0])
    known.add(("a", "1"))
    now[0] += 59
    assert ("a", "1") in known
    now[0] += 2
    assert ("a", "1") not in known
    assert len(known) == 0
