"""Helpers for the DLQ tests: real-shaped DLQ messages, queue contents and audit items on the emulator."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from daemon.config import load_config
from daemon.emit import build_event
from daemon.table import utc_iso
from tests.support import REGION, boto


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{name}-{uuid.uuid4().hex[:6]}"


def event_body(name: str, where: str = "app/a", **extra: Any) -> str:
    """A real-shaped event body for a secret named `where`."""
    return json.dumps(build_event(name, secret_arn(where), **extra))


def rejected_attributes(reason: str, receive_count: int = 1) -> dict[str, Any]:
    """The attributes the consumer puts on a message it dead-letters."""
    text = {
        "rotaudit.reject_reason": reason,
        "rotaudit.reject_detail": "account 123456789012 is not allowed",
        "rotaudit.source_message_id": str(uuid.uuid4()),
        "rotaudit.rejected_at": utc_iso(datetime.now(UTC)),
    }
    attributes: dict[str, Any] = {k: {"DataType": "String", "StringValue": v} for k, v in text.items()}
    attributes["rotaudit.receive_count"] = {"DataType": "Number", "StringValue": str(receive_count)}
    return attributes


def seed(endpoint: str, url: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
    sqs = boto("sqs", endpoint)
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "MessageBody": body, **({"MessageAttributes": attrs} if attrs else {})}
            for i, (body, attrs) in enumerate(messages[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def queue_depth(endpoint: str, url: str) -> tuple[int, int]:
    """(visible, in flight)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = boto("sqs", endpoint).get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attrs[names[0]]), int(attrs[names[1]])


def queue_messages(endpoint: str, url: str) -> list[dict[str, Any]]:
    """Every visible message of a queue, read and then made visible again."""
    sqs = boto("sqs", endpoint)
    found: dict[str, dict[str, Any]] = {}
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            break
        found.update((m["MessageId"], m) for m in got)
    for message in found.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(found.values())


def queue_bodies(endpoint: str, url: str) -> list[str]:
    return sorted(m["Body"] for m in queue_messages(endpoint, url))


def audit_items(endpoint: str, table: str, kind: str) -> list[dict[str, Any]]:
    client = boto("dynamodb", endpoint)
    items = [i for page in client.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return [i for i in items if i.get("kind", {}).get("S") == kind]


def daemon_config(endpoint: str, stack: dict[str, str], **extra: str) -> Any:
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
