"""Helpers for the sync tests: secrets, audit items, alerts and Syncers on the emulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from daemon.aws import Aws
from daemon.config_values import SyncPair
from daemon.emit import build_event
from daemon.events import RotationEvent, parse_message
from daemon.sync.metrics import SyncMetrics
from daemon.sync.syncer import Syncer
from daemon.table import from_dynamo
from tests.support import boto

NASTY_PASSWORD = "p@ss/w:rd%25#frag?q=1 and spaces"
INITIAL_URL = "postgres://app:old-password@db.internal:5432/appdb?sslmode=require"


async def eventually(predicate: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    """`wait_until` for async tests: the event loop keeps running the code under test while we poll."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
        await asyncio.sleep(0.05)


def unique_name(kind: str) -> str:
    return f"sync-test/{kind}-{uuid.uuid4().hex[:8]}"


def make_secret(endpoint: str, name: str, value: str | None) -> str:
    """Create a secret (without a value when `value` is None); return its ARN."""
    params: dict[str, Any] = {"Name": name}
    if value is not None:
        params["SecretString"] = value
    return str(boto("secretsmanager", endpoint).create_secret(**params)["ARN"])


def current(endpoint: str, secret: str) -> tuple[str, str]:
    """(version id, SecretString) of AWSCURRENT (named: moto's default version does not follow a label move)."""
    got = boto("secretsmanager", endpoint).get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")
    return str(got["VersionId"]), str(got["SecretString"])


def versions(endpoint: str, secret: str) -> int:
    listed = boto("secretsmanager", endpoint).list_secret_version_ids(SecretId=secret, IncludeDeprecated=True)
    return len(listed["Versions"])


def all_items(endpoint: str, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in boto("dynamodb", endpoint).get_paginator("scan").paginate(TableName=table):
        items.extend(from_dynamo(item) for item in page["Items"])
    return items


def sync_items(endpoint: str, table: str, target_arn: str) -> list[dict[str, Any]]:
    found = [i for i in all_items(endpoint, table) if i["kind"] == "sync" and i["pk"] == f"secret#{target_arn}"]
    return sorted(found, key=lambda item: str(item["sk"]))


def alert_queue(endpoint: str, topic_arn: str) -> str:
    """A queue subscribed to the notification topic, to read alerts from."""
    sqs = boto("sqs", endpoint)
    url = str(sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto("sns", endpoint).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def drain(endpoint: str, url: str) -> list[str]:
    sqs = boto("sqs", endpoint)
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def alerts(endpoint: str, url: str) -> list[dict[str, Any]]:
    return [json.loads(json.loads(body)["Message"]) for body in drain(endpoint, url)]


def parsed_event(name: str, arn: str, **kwargs: Any) -> RotationEvent:
    parsed = parse_message(json.dumps(build_event(name, arn, **kwargs)))
    assert isinstance(parsed, RotationEvent)
    return parsed


def sync_count(registry: CollectorRegistry, pair: str, outcome: str) -> float:
    return float(registry.get_sample_value("rotaudit_sync_total", {"pair": pair, "outcome": outcome}) or 0.0)


def rotate(endpoint: str, source: str, password: str, username: str = "app") -> str:
    """A new AWSCURRENT version of the source, as a finished rotation leaves it; returns its version id."""
    put = boto("secretsmanager", endpoint).put_secret_value(
        SecretId=source, SecretString=json.dumps({"username": username, "password": password})
    )
    return str(put["VersionId"])


def rds_pair(endpoint: str) -> tuple[SyncPair, str, str]:
    """An RDS-managed-style source (username and password only) and a target holding a URL: (pair, ARNs)."""
    source = make_secret(endpoint, f"rds!db-{uuid.uuid4().hex[:8]}", json.dumps({"username": "app", "password": "old"}))
    target = make_secret(endpoint, unique_name("url"), INITIAL_URL)
    return SyncPair(name=f"pair-{uuid.uuid4().hex[:6]}", source=source, target=target), source, target


def new_syncer(
    aws: Aws, stack: dict[str, str], *pairs: SyncPair, registry: CollectorRegistry | None = None, **kwargs: Any
) -> Syncer:
    """A Syncer on the test's stack: its audit table and notification topic, its own registry."""
    return Syncer(
        aws,
        pairs,
        audit_table=stack["table_name"],
        metrics=SyncMetrics(registry if registry is not None else CollectorRegistry()),
        topic_arn=stack["topic_arn"],
        **kwargs,
    )
