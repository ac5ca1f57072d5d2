"""Helpers for the age-scan tests: a table with the `by_run` index, secrets on the emulator, moto state edits.

The emulator runs in the test process, so a secret is made "old" by moving its dates back in moto's backend
(AWS-FACTS §7): moto stamps everything with the current time and has no API to say otherwise.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import boto3

from daemon.devtools.emulator import backdate_secret
from daemon.table import BY_RUN_ATTRIBUTES, BY_RUN_GSI, BY_RUN_INDEX, table_definition
from tests.support import REGION

ACCOUNT = "123456789012"  # moto's default account
DAY_S = 86400
# Regions no other test file uses, so a scan there sees only this test's secrets (the emulator is shared).
_REGION_POOL = (
    "eu-west-3",
    "eu-north-1",
    "ap-south-2",
    "ca-central-1",
    "sa-east-1",
    "eu-central-2",
    "ap-southeast-4",
    "me-central-1",
    "af-south-1",
    "il-central-1",
    "ap-northeast-3",
    "eu-south-2",
    "mx-central-1",
    "ca-west-1",
)
_REGIONS = itertools.cycle(_REGION_POOL)


def isolated_region() -> str:
    return next(_REGIONS)


def client(service: str, endpoint: str, region: str = REGION, **credentials: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint, **credentials)


def create_scan_table(endpoint: str) -> str:
    """An audit table as provisioned, with the `by_run` index added if provision does not add it yet."""
    name = f"scan{uuid.uuid4().hex[:10]}-audit"
    definition = table_definition(name)
    known = {attribute["AttributeName"] for attribute in definition["AttributeDefinitions"]}
    definition["AttributeDefinitions"] += [a for a in BY_RUN_ATTRIBUTES if a["AttributeName"] not in known]
    if all(index["IndexName"] != BY_RUN_INDEX for index in definition["GlobalSecondaryIndexes"]):
        definition["GlobalSecondaryIndexes"].append(BY_RUN_GSI)
    client("dynamodb", endpoint).create_table(**definition)
    return name


def create_secret(sm: Any, name: str, tags: dict[str, str], value: str = "") -> str:
    created = sm.create_secret(
        Name=name,
        SecretString=value or f"value-{uuid.uuid4()}",
        Tags=[{"Key": key, "Value": tag_value} for key, tag_value in tags.items()],
    )
    return str(created["ARN"])


def table_items(endpoint: str, table: str, kind: str | None = None) -> list[dict[str, Any]]:
    from daemon.table import from_dynamo

    dynamodb = client("dynamodb", endpoint)
    items = [from_dynamo(i) for page in dynamodb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return [item for item in items if kind is None or item.get("kind") == kind]


def raw_table_dump(endpoint: str, table: str) -> str:
    dynamodb = client("dynamodb", endpoint)
    return json.dumps([page["Items"] for page in dynamodb.get_paginator("scan").paginate(TableName=table)])


def secret_model(name: str, region: str = REGION, account: str = ACCOUNT) -> Any:
    from moto.backends import get_backend

    return get_backend("secretsmanager")[account][region].secrets[name]


def backdate(name: str, days: float, region: str = REGION, account: str = ACCOUNT) -> None:
    """Move the secret's creation, last change and every version's creation `days` into the past."""
    backdate_secret(name, days, region=region, account=account)


def set_rotation(
    name: str,
    *,
    rotated_days_ago: float | None = None,
    enabled: bool = False,
    next_in_days: float | None = None,
    region: str = REGION,
) -> None:
    """Rotation facts as DescribeSecret/ListSecrets will report them."""
    secret = secret_model(name, region)
    secret.rotation_requested = True
    secret.rotation_enabled = enabled
    secret.auto_rotate_after_days = 30 if enabled else 0
    now = time.time()
    secret.last_rotation_date = None if rotated_days_ago is None else int(now - rotated_days_ago * DAY_S)
    secret.next_rotation_date = None if next_in_days is None else int(now + next_in_days * DAY_S)


def true_version_dates() -> Any:
    """A stand-in for moto's ListSecretVersionIds, which reports every CreatedDate as "now" (AWS-FACTS §7).

    Returns the replacement for `SecretsManagerBackend.list_secret_version_ids`, reporting the true dates as AWS does.
    """

    def list_secret_version_ids(self: Any, secret_id: str) -> str:
        secret = self.secrets[secret_id]
        versions = [
            {"VersionId": version_id, "VersionStages": version["version_stages"], "CreatedDate": version["createdate"]}
            for version_id, version in secret.versions.items()
        ]
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "Versions": versions})

    return list_secret_version_ids


class FastClock:
    """Wall time sped up `speed` times from `start`: schedules of minutes play out in seconds."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start = start
        self.speed = speed
        self._origin = time.monotonic()

    def restart(self) -> None:
        """Read `start` again from now on."""
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


async def eventually(predicate: Any, timeout_s: float = 20.0) -> Any:
    """Poll `predicate` (run in a thread: it may call AWS synchronously) until truthy, without blocking the loop."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
        await asyncio.sleep(0.05)
