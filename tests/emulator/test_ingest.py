"""The spine end to end over HTTP against the emulator: every event audited exactly once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from daemon.config import load_config
from daemon.emit import build_event
from tests.support import REGION, boto, wait_until
from tests.support.daemon_thread import DaemonThread


def _config(endpoint: str, stack: dict[str, str], **extra: str) -> Any:
    env = {
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "ROTAUDIT_QUEUE_URL": stack["queue_url"],
        "ROTAUDIT_AUDIT_TABLE": stack["table_name"],
        "ROTAUDIT_HTTP_PORT": "0",
        "ROTAUDIT_HTTP_HOST": "127.0.0.1",
        "ROTAUDIT_WAIT_TIME_S": "1",
        **extra,
    }
    return load_config(env)


def _secret_arn(name: str = "") -> str:
    return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{name or 'app/db'}-{uuid.uuid4().hex[:6]}"


def _items(endpoint: str, table: str) -> list[dict[str, Any]]:
    """The event items (remediation keeps claims and its own items in the same table)."""
    client = boto("dynamodb", endpoint)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return [item for item in items if item.get("kind", {}).get("S") == "event"]


def _send(endpoint: str, queue_url: str, bodies: list[str]) -> None:
    sqs = boto("sqs", endpoint)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        result = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not result.get("Failed")


def _queue_depth(endpoint: str, url: str) -> int:
    attrs = boto("sqs", endpoint).get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_duplicates_and_replays_give_one_item(endpoint: str, stack: dict[str, str]) -> None:
    """The same event delivered five times, then replayed with a new MessageId, is one item."""
    arn = _secret_arn()
    body = json.dumps(build_event("RotationSucceeded", arn))
    with DaemonThread(_config(endpoint, stack)) as running:
        _send(endpoint, stack["queue_url"], [body] * 5)
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 5)
        _send(endpoint, stack["queue_url"], [body])  # a DLQ replay arrives as a new message
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 6)
        assert (
            running.counter("rotaudit_events_processed_total", event_name="RotationSucceeded", outcome="recorded") == 1
        )
        assert (
            running.counter("rotaudit_events_processed_total", event_name="RotationSucceeded", outcome="duplicate") == 5
        )
    items = _items(endpoint, stack["table_name"])
    assert len(items) == 1
    assert items[0]["kind"]["S"] == "event"
    assert items[0]["secret_arn"]["S"] == arn


def test_two_failures_of_one_rotation_give_two_items(endpoint: str, stack: dict[str, str]) -> None:
    """Secrets Manager retries: two RotationFailed records of one rotation are two items with one rotation id."""
    arn, rotation = _secret_arn(), str(uuid.uuid4())
    bodies = [
        json.dumps(build_event("RotationFailed", arn, rotation_id=rotation, step="setSecret")),
        json.dumps(build_event("RotationFailed", arn, rotation_id=rotation, step="setSecret")),
    ]
    with DaemonThread(_config(endpoint, stack)) as running:
        _send(endpoint, stack["queue_url"], bodies)
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 2)
    items = _items(endpoint, stack["table_name"])
    assert len(items) == 2
    assert {item["rotation_id"]["S"] for item in items} == {rotation}
    assert {item["failed_step"]["S"] for item in items} == {"setSecret"}
    assert len({item["event_id"]["S"] for item in items}) == 2


def test_rejected_messages_reach_the_dlq_with_their_reason(endpoint: str, stack: dict[str, str]) -> None:
    """Bad messages go to the DLQ at once with a reason; the good ones in the same batch are audited."""
    good = json.dumps(build_event("RotationStarted", _secret_arn()))
    spoofed = json.dumps(build_event("RotationFailed", _secret_arn(), account="999999999999"))
    bodies = ["not json", json.dumps({"hello": "world"}), good, spoofed]
    config = _config(endpoint, stack, ROTAUDIT_ALLOWED_ACCOUNTS="123456789012")
    with DaemonThread(config) as running:
        _send(endpoint, stack["queue_url"], bodies)
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 4)
    assert _queue_depth(endpoint, stack["queue_url"]) == 0
    assert len(_items(endpoint, stack["table_name"])) == 1
    sqs = boto("sqs", endpoint)
    reasons: dict[str, str] = {}
    while len(reasons) < 3:
        got = sqs.receive_message(QueueUrl=stack["dlq_url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        for message in got.get("Messages", []):
            reasons[message["Body"]] = message["MessageAttributes"]["rotaudit.reject_reason"]["StringValue"]
    assert reasons == {
        "not json": "not_json",
        json.dumps({"hello": "world"}): "not_an_event",
        spoofed: "account_not_allowed",
    }


def test_events_routed_by_the_eventbridge_rule_are_audited(endpoint: str, stack: dict[str, str]) -> None:
    """An event put on the default bus reaches the queue through the provisioned rule and is audited."""
    arn = _secret_arn("eb/routed")
    envelope = build_event("RotationFailed", arn, step="finishSecret")
    events = boto("events", endpoint)
    result = events.put_events(
        Entries=[
            {
                "Source": envelope["source"],
                "DetailType": envelope["detail-type"],
                "Detail": json.dumps(envelope["detail"]),
            }
        ]
    )
    assert result["FailedEntryCount"] == 0
    with DaemonThread(_config(endpoint, stack)) as running:
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 1)
    (item,) = _items(endpoint, stack["table_name"])
    assert item["secret_name"]["S"] == "eb/routed"
    assert item["failed_step"]["S"] == "finishSecret"


def test_history_is_newest_first_by_name_and_by_arn(endpoint: str, stack: dict[str, str]) -> None:
    """`history` answers by name (index) and by ARN (table), newest first, with key conditions only."""
    import asyncio

    from daemon.audit import AuditStore
    from daemon.aws import Aws

    arn, rotation = _secret_arn("hist/secret"), str(uuid.uuid4())
    names = ["RotationStarted", "RotationFailed", "RotationSucceeded"]
    bodies = [
        json.dumps(build_event(name, arn, rotation_id=rotation, when=_at(minute))) for minute, name in enumerate(names)
    ]
    with DaemonThread(_config(endpoint, stack)) as running:
        _send(endpoint, stack["queue_url"], bodies)
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 3)

    async def read(secret: str) -> list[dict[str, Any]]:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            return await AuditStore(aws, stack["table_name"]).history(secret)

    for key in ("hist/secret", arn):
        events = [item for item in asyncio.run(read(key)) if item["kind"] == "event"]
        assert [item["event_name"] for item in events] == list(reversed(names))


def _at(minute: int) -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, 12, minute, tzinfo=UTC)


@pytest.mark.parametrize("count", [60])
def test_many_events_across_pollers_are_all_audited_once(endpoint: str, stack: dict[str, str], count: int) -> None:
    """Several pollers and batches: every distinct event lands once, every message is deleted."""
    arns = [_secret_arn(f"bulk/{i}") for i in range(count)]
    bodies = [json.dumps(build_event("RotationSucceeded", arn)) for arn in arns]
    bodies += bodies[: count // 3]
    with DaemonThread(_config(endpoint, stack, ROTAUDIT_CONSUMER_CONCURRENCY="3")) as running:
        _send(endpoint, stack["queue_url"], bodies)
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= len(bodies), timeout_s=60)
    assert len(_items(endpoint, stack["table_name"])) == count
    assert _queue_depth(endpoint, stack["queue_url"]) == 0
