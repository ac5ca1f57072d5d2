"""The benchmark's workload: real-shaped rotation events with exact duplicates, and the resources they land in.

Pure generation (`build_workload`, seeded, so every contender and every run drains the same messages) and the
async set-up around it: fresh resources per contender (`daemon.provision`), prefill with SendMessageBatch, and
clean-up afterwards so the emulator does not carry one contender's state into the next.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.aws import Aws
from daemon.emit import STEPS, build_event
from daemon.errors import AwsError
from daemon.events import Rejection, parse_message
from daemon.provision import provision

REGION = "us-east-1"
ACCOUNT = "123456789012"
SECRETS = 200
SEED = 20240213
FAILURE_RATE = 0.3  # share of rotations that fail (and are retried by Secrets Manager 1-3 times)
SEND_BATCH = 10
SEND_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Workload:
    """Message bodies in send order, and how many distinct events they carry."""

    bodies: list[str]
    distinct: int
    secrets: int
    by_event_name: dict[str, int]

    @property
    def messages(self) -> int:
        return len(self.bodies)

    @property
    def duplicates(self) -> int:
        return len(self.bodies) - self.distinct


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _secret_arns(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bench/app-{i:03d}-{''.join(rng.choices(alphabet, k=6))}"
        for i in range(count)
    ]


def _distinct_events(rng: random.Random, count: int, secrets: list[str]) -> list[dict[str, Any]]:
    """Whole rotations: RotationStarted, then RotationSucceeded or 1-3 RotationFailed (AWS retries a failure)."""
    events: list[dict[str, Any]] = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rotation = 0
    while len(events) < count:
        rotation += 1
        arn, rotation_id = rng.choice(secrets), _uuid(rng)
        at = start + timedelta(minutes=rotation)
        failures = rng.randint(1, 3) if rng.random() < FAILURE_RATE else 0
        plan = ["RotationStarted", *(["RotationFailed"] * failures or ["RotationSucceeded"])]
        for offset, name in enumerate(plan):
            envelope = build_event(
                name,
                arn,
                rotation_id=rotation_id,
                event_id=_uuid(rng),
                step=rng.choice(STEPS) if name == "RotationFailed" else None,
                when=at + timedelta(seconds=offset),
            )
            envelope["id"] = _uuid(rng)  # build_event draws EventBridge's id from uuid4: make it reproducible
            events.append(envelope)
    return events[:count]


def build_workload(messages: int, *, seed: int = SEED, secrets: int = SECRETS) -> Workload:
    """`messages` bodies: two thirds distinct events, one third exact duplicates of some of them, shuffled."""
    if messages < 3:
        raise ValueError("need at least 3 messages")
    rng = random.Random(seed)
    duplicates = messages // 3
    distinct = messages - duplicates
    events = _distinct_events(rng, distinct, _secret_arns(rng, secrets))
    bodies = [json.dumps(event) for event in events]
    for body in bodies:
        if isinstance(parse_message(body), Rejection):
            raise ValueError("the workload holds an event rotaudit rejects: fix bench.workload")
    bodies += [bodies[i] for i in rng.sample(range(distinct), duplicates)]
    rng.shuffle(bodies)
    names: dict[str, int] = {}
    for event in events:
        name = str(event["detail"]["eventName"])
        names[name] = names.get(name, 0) + 1
    return Workload(bodies=bodies, distinct=distinct, secrets=secrets, by_event_name=dict(sorted(names.items())))


# --- resources ----------------------------------------------------------------------------------------------
def _aws(endpoint_url: str) -> Aws:
    return Aws(REGION, endpoint_url=endpoint_url, services=("sqs", "dynamodb", "sns", "events", "sts"))


async def _prepare(endpoint_url: str, prefix: str, bodies: list[str]) -> dict[str, str]:
    async with _aws(endpoint_url) as aws:
        stack = await provision(aws, prefix)
        room = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(start: int) -> None:
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + SEND_BATCH])]
            async with room:
                result = await aws.call("sqs", "send_message_batch", QueueUrl=stack["queue_url"], Entries=entries)
            if result.get("Failed"):
                raise RuntimeError(f"prefill: SendMessageBatch failed for {len(result['Failed'])} entries")

        await asyncio.gather(*(send(start) for start in range(0, len(bodies), SEND_BATCH)))
    return stack


def prepare(endpoint_url: str, prefix: str, bodies: list[str]) -> dict[str, str]:
    """Provision resources named `prefix`-* and fill the queue with `bodies`; return `provision`'s map."""
    return asyncio.run(_prepare(endpoint_url, prefix, bodies))


async def _clean_up(endpoint_url: str, stack: dict[str, str]) -> None:
    async with _aws(endpoint_url) as aws:
        calls: list[Coroutine[Any, Any, Any]] = [
            aws.call("sqs", "delete_queue", QueueUrl=stack["queue_url"]),
            aws.call("sqs", "delete_queue", QueueUrl=stack["dlq_url"]),
            aws.call("dynamodb", "delete_table", TableName=stack["table_name"]),
            aws.call("sns", "delete_topic", TopicArn=stack["topic_arn"]),
        ]
        for rule in (stack["rule_name"], stack["label_rule_name"]):
            calls.append(_delete_rule(aws, rule))
        results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException) and not isinstance(r, AwsError)]
    if failed:
        raise failed[0]


async def _delete_rule(aws: Aws, rule: str) -> None:
    await aws.call("events", "remove_targets", Rule=rule, Ids=["rotaudit-queue"])
    await aws.call("events", "delete_rule", Name=rule)


def clean_up(endpoint_url: str, stack: dict[str, str]) -> None:
    """Delete what `prepare` made (best effort: AWS errors are ignored)."""
    asyncio.run(_clean_up(endpoint_url, stack))
