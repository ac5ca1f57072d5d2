"""The audit table partitions the daemon updates and deletes in are the ones its role is limited to.

The task role allows `UpdateItem` and `DeleteItem` only on the partitions `tests.support.iam.LEADING_KEYS` names
(`dynamodb:LeadingKeys`; tests/deploy/test_iam.py holds deploy/terraform to that map). moto enforces no IAM, so
here the emulator records the partition key of every update and delete (alone or inside a transaction) while the
real scan, remediation and notification code runs, and each must fall under a declared pattern; each declared
pattern must be used, so the map grants nothing the code does not write.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend
from prometheus_client import CollectorRegistry

from daemon.audit import Outcome
from daemon.aws import Aws
from daemon.emit import build_event
from daemon.failures.metrics import FailureMetrics
from daemon.failures.store import FailureStore
from daemon.failures.tracker import FailureTracker
from daemon.scan.metrics import ScanMetrics
from daemon.scan.scanner import Scanner
from tests.support import REGION
from tests.support.iam import LEADING_KEYS
from tests.support.remediation import (
    FakeClock,
    config,
    parsed,
    pump,
    replicas,
    retry_until_settled,
    rotate,
    rotating_secret,
)
from tests.support.rotation import Failure as Fault
from tests.support.scan import client, create_secret

Writes = set[tuple[str, str]]  # (IAM action, partition key)


pytestmark = pytest.mark.usefixtures("rotations_settle")


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch, stack: dict[str, str]) -> Writes:
    """Every update and delete the emulator executes on the stack's table, by partition key."""
    table = stack["table_name"]
    seen: Writes = set()
    update, delete, transact = (
        DynamoDBBackend.update_item,
        DynamoDBBackend.delete_item,
        DynamoDBBackend.transact_write_items,
    )

    def pk(key: dict[str, Any]) -> str:
        return str(key["pk"]["S"])

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if table_name == table:
            seen.add(("dynamodb:UpdateItem", pk(key)))
        return update(self, table_name, key, *args, **kwargs)

    def delete_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if table_name == table:
            seen.add(("dynamodb:DeleteItem", pk(key)))
        return delete(self, table_name, key, *args, **kwargs)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        for item in transact_items:
            for kind, action in (("Update", "dynamodb:UpdateItem"), ("Delete", "dynamodb:DeleteItem")):
                if kind in item and item[kind].get("TableName") == table:
                    seen.add((action, pk(item[kind]["Key"])))
        return transact(self, transact_items)

    monkeypatch.setattr(DynamoDBBackend, "update_item", update_item)
    monkeypatch.setattr(DynamoDBBackend, "delete_item", delete_item)
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)
    return seen


def _allowed(action: str, partition: str) -> list[str]:
    patterns = [p for by_action in LEADING_KEYS.values() for p in by_action.get(action, ())]
    return [p for p in patterns if fnmatch.fnmatchcase(partition, p)]  # IAM StringLike: * and ? as in fnmatch


async def test_updates_and_deletes_stay_in_the_partitions_the_role_allows(
    endpoint: str, stack: dict[str, str], writes: Writes
) -> None:
    """A scan window (lease taken, renewed, completed) and a remediation (claim, retry, notification, recovery,
    a failed notification) and an open failure (opened, closed) update and delete only inside the declared
    partitions, and use every one of them."""
    key = f"Partitions{datetime.now(UTC).strftime('%H%M%S%f')}"
    create_secret(client("secretsmanager", endpoint), f"part-{key}", {key: "yes"})
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        scanner = Scanner(aws, stack["table_name"], ScanMetrics(CollectorRegistry()), tag=f"{key}=yes", lease_s=0.3)
        assert await scanner.run_window(datetime(2026, 1, 1, tzinfo=UTC)) is not None

    secret, clock = rotating_secret(endpoint, failures=[Fault("setSecret", 1)]), FakeClock()
    failure = rotate(endpoint, secret)  # fails on the rotation stand-in; its events reach the stack's queue
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        await retry_until_settled(endpoint, stack["queue_url"], replica, clock, secret, failure.rotation_id)
    no_topic = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"  # its publish fails: the marker is taken back
    async with replicas(1, config(endpoint, stack, ROTAUDIT_SNS_TOPIC_ARN=no_topic), clock) as (replica,):
        other = rotating_secret(endpoint, failures=[Fault("setSecret", None)])
        rotate(endpoint, other)
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")

    async with Aws(REGION, endpoint_url=endpoint) as aws:  # a failure opened, then closed by a success
        tracker = FailureTracker(FailureStore(aws, stack["table_name"]), FailureMetrics(CollectorRegistry()))
        failed = datetime.now(UTC) - timedelta(minutes=1)
        await tracker.on_event(parsed(build_event("RotationFailed", secret.arn, when=failed)), Outcome.RECORDED)
        await tracker.on_event(parsed(build_event("RotationSucceeded", secret.arn)), Outcome.RECORDED)

    outside = sorted((action, partition) for action, partition in writes if not _allowed(action, partition))
    assert outside == []
    declared = {(action, p) for by_action in LEADING_KEYS.values() for action, ps in by_action.items() for p in ps}
    used = {(action, p) for action, partition in writes for p in _allowed(action, partition)}
    assert declared - used == set()
