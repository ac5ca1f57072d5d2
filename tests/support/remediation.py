"""Helpers for the remediation tests: replicas on the emulator, a movable clock, secrets with stuck labels, SNS taps."""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.config import Config, load_config
from daemon.emit import build_event
from daemon.events import RotationEvent, parse_message
from daemon.metrics import Metrics
from daemon.processor import Message, Processor, Verdict
from daemon.remediation.build import build_remediator
from daemon.remediation.job import RetryJob
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.remediator import Remediator
from daemon.remediation.state import Failure
from daemon.remediation.world import World
from daemon.table import from_dynamo
from tests.support import REGION, boto, rotation

SERVICES = ("dynamodb", "secretsmanager", "sns", "ssm", "sts")  # what remediation uses: fewer clients to open
CANARY = "CANARY-rotaudit-s3cr3t-VALUE"  # secret values in these tests: must never leave Secrets Manager
RETRY_WAIT_S = 61  # the first retry comes 30-60 s after the plan (backoff base 60 s, equal jitter)


class FakeClock:
    """The remediators' clock: real time (AWS's events carry real times), moved ahead by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Replica:
    """One daemon's remediation parts, with its own AWS clients and metrics."""

    remediator: Remediator
    processor: Processor
    job: RetryJob
    metrics: Metrics

    async def feed(self, envelope: dict[str, Any]) -> None:
        """Process one delivery of `envelope` the way the consumer would: audit, then hooks; it must be done."""
        verdict = await self.deliver(envelope)
        assert verdict is Verdict.DONE, verdict

    async def deliver(self, envelope: dict[str, Any]) -> Verdict:
        """Process one delivery; the verdict (RETRY: SQS would deliver it again after the visibility timeout)."""
        message = Message(message_id=str(uuid.uuid4()), body=json.dumps(envelope), receipt_handle="r")
        (disposition,) = await self.processor.process([message])
        return disposition.verdict

    def count(self, action: str, outcome: str) -> float:
        return self.sample("rotaudit_remediations_total", action=action, outcome=outcome)

    def sample(self, name: str, **labels: str) -> float:
        return float(self.metrics.registry.get_sample_value(name, labels) or 0.0)


@contextlib.asynccontextmanager
async def replicas(
    count: int, cfg: Config, clock: FakeClock, world: Callable[[Aws], World] | None = None
) -> AsyncIterator[list[Replica]]:
    """`count` replicas' remediation parts; `world` builds each one's view of AWS (a stand-in, where the emulator
    cannot produce what a test needs)."""
    async with AsyncExitStack() as stack:
        made: list[Replica] = []
        for index in range(count):
            metrics = Metrics()
            aws = await stack.enter_async_context(
                Aws(REGION, endpoint_url=cfg.aws_endpoint_url, metrics=metrics, services=SERVICES)
            )
            remediator = build_remediator(
                aws,
                cfg,
                RemediationMetrics(metrics.registry),
                clock=clock,
                rng=random.Random(index),
                holder=f"replica-{index}",
                world=world(aws) if world else None,
            )
            processor = Processor(AuditStore(aws, cfg.audit_table), metrics, hooks=[remediator.on_event])
            made.append(Replica(remediator, processor, RetryJob(remediator), metrics))
        yield made


@dataclass
class Secret:
    arn: str
    name: str
    current: str


def config(endpoint: str, stack: dict[str, str], **extra: str) -> Config:
    """The daemon's settings for these tests: no settle time unless a test asks for one."""
    env = {
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "ROTAUDIT_QUEUE_URL": stack["queue_url"],
        "ROTAUDIT_AUDIT_TABLE": stack["table_name"],
        "ROTAUDIT_SNS_TOPIC_ARN": stack["topic_arn"],
        "ROTAUDIT_REMEDIATION_SETTLE_S": "0",
        **extra,
    }
    return load_config(env)


def rotating_secret(
    endpoint: str,
    *,
    strategy: str = "single-user",
    failures: list[rotation.Failure] | None = None,
    retries: int = 0,
    tags: dict[str, str] | None = None,
) -> Secret:
    """Database credentials (a canary password) rotated by the stand-in's function of `strategy`, which fails as
    `failures` say; Secrets Manager retries a failed rotation `retries` times."""
    sm = boto("secretsmanager", endpoint)
    name = f"remediation-test/{uuid.uuid4().hex[:8]}"
    value = {"engine": "postgres", "host": "db.internal", "username": "app", "password": f"{CANARY}-{uuid.uuid4().hex}"}
    tag_list = [{"Key": key, "Value": value} for key, value in {"rotaudit:strategy": strategy, **(tags or {})}.items()]
    if strategy == "unknown":
        tag_list = [t for t in tag_list if t["Key"] != "rotaudit:strategy"]
    arn = str(sm.create_secret(Name=name, SecretString=json.dumps(value), Tags=tag_list)["ARN"])
    function = "single-user" if strategy == "unknown" else strategy
    rotation.configure(endpoint, arn, strategy=function, failures=failures, retries=retries, retry_delay_s=0.2)
    return Secret(arn, name, labels(endpoint, arn)["AWSCURRENT"])


def rotate(endpoint: str, secret: Secret, token: str | None = None) -> rotation.Rotation:
    """Start a rotation as Secrets Manager's schedule would, and wait until it has settled."""
    params = {"ClientRequestToken": token} if token else {}
    started = boto("secretsmanager", endpoint).rotate_secret(SecretId=secret.arn, **params)["VersionId"]
    return rotation.wait_for_outcome(endpoint, secret.arn, started)


async def pump(endpoint: str, queue_url: str, *group: Replica, until: str = "") -> list[str]:
    """Deliver what the rules put on the queue (the stand-in's events) to the replicas in turn; their names.

    Reads until the queue is quiet and, when `until` names an event, until that event has been delivered (the
    rules deliver a moment after the stand-in reports an outcome)."""
    names: list[str] = []
    for index, envelope in enumerate(receive_envelopes(endpoint, queue_url, until=until)):
        names.append(event_name(envelope))
        await group[index % len(group)].feed(envelope)
    return names


def receive_envelopes(
    endpoint: str, queue_url: str, *, until: str = "", timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every envelope on the queue, deleted; with `until`, waiting (up to `timeout_s`) until one of that name came."""
    sqs, found, empty = boto("sqs", endpoint), [], 0
    deadline = time.monotonic() + timeout_s
    while empty < (1 if until else 2) or (until and until not in map(event_name, found)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {until} on the queue within {timeout_s}s (got {[event_name(e) for e in found]})")
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1 if until else 0)
        messages = got.get("Messages", [])
        empty = 0 if messages else empty + 1
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def event_name(envelope: dict[str, Any]) -> str:
    return str(envelope.get("detail", {}).get("eventName") or envelope.get("detail-type"))


async def retry_until_settled(
    endpoint: str, queue_url: str, replica: Replica, clock: FakeClock, secret: Secret, rotation_id: str
) -> rotation.Rotation:
    """Let rotaudit's scheduled RotateSecret for that failed rotation fall due and run, wait for the rotation it
    started to settle on the stand-in, and deliver its events."""
    clock.advance(RETRY_WAIT_S)
    await replica.job.run_once()
    outcome = rotation.wait_for_outcome(endpoint, secret.arn, retry_token(secret, rotation_id))
    await pump(endpoint, queue_url, replica, until="RotationSucceeded" if outcome.status == "succeeded" else "")
    return outcome


def retry_token(secret: Secret, rotation_id: str) -> str:
    """The ClientRequestToken rotaudit's retry of that failed rotation uses."""
    return Failure(secret.arn, secret.name, rotation_id, datetime.now(UTC)).new_version_token


def labels(endpoint: str, arn: str) -> dict[str, str]:
    """Label -> version id, from DescribeSecret."""
    described = boto("secretsmanager", endpoint).describe_secret(SecretId=arn)
    return {label: version for version, stages in described["VersionIdsToStages"].items() for label in stages}


def failed(secret: Secret, step: str, rotation_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return build_event("RotationFailed", secret.arn, rotation_id=rotation_id or str(uuid.uuid4()), step=step, **extra)


def parsed(envelope: dict[str, Any]) -> RotationEvent:
    event = parse_message(json.dumps(envelope))
    assert isinstance(event, RotationEvent), event
    return event


def subscribe(endpoint: str, topic_arn: str) -> str:
    """An SQS queue subscribed (raw delivery) to the topic; its URL."""
    sqs, sns = boto("sqs", endpoint), boto("sns", endpoint)
    url = str(sqs.create_queue(QueueName=f"notes-{uuid.uuid4().hex[:10]}")["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return url


def drain(endpoint: str, url: str) -> list[dict[str, Any]]:
    """Every notification in the queue so far (SNS delivers to SQS before Publish returns, in the emulator)."""
    sqs = boto("sqs", endpoint)
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=600
        ).get("Messages", [])
        if not got:
            return found
        for message in got:
            attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
            found.append({"body": json.loads(message["Body"]), "attributes": attributes, "raw": message["Body"]})


def table_items(endpoint: str, table: str) -> list[dict[str, Any]]:
    client = boto("dynamodb", endpoint)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(from_dynamo(item) for item in page["Items"])
    return items


def remediation_items(endpoint: str, table: str, arn: str) -> list[dict[str, Any]]:
    return [i for i in table_items(endpoint, table) if i.get("kind") == "remediation" and i["secret_arn"] == arn]
