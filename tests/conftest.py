"""Shared fixtures: one emulator (moto server over HTTP) per session, fresh resources per test.

AWS variables from the outer environment are stripped so no test can reach real AWS. Each test is marked by
the folder it lives in (`unit`, `emulator`, `e2e`, `deploy`), so `-m` selects a kind without lists of files.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.aws import Aws
from daemon.devtools.emulator import Emulator, start_emulator
from daemon.provision import MAX_RECEIVE_COUNT, provision
from daemon.table import table_definition
from tests.support import FAKE_CREDENTIALS, REGION, boto
from tests.support.rotation import wait_until_idle

KINDS = ("unit", "emulator", "e2e", "deploy")
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its kind: the first folder under tests/."""
    for item in items:
        kind = item.path.resolve().relative_to(_TESTS).parts[0]
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session", autouse=True)
def _no_real_aws() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "ROTAUDIT_"))}
    for key in saved:
        del os.environ[key]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_REGION"] = REGION
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    yield
    for key in [k for k in os.environ if k.startswith(("AWS_", "ROTAUDIT_"))]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def emulator(_no_real_aws: None) -> Iterator[Emulator]:
    server = start_emulator("127.0.0.1", 0)
    yield server
    server.stop()


@pytest.fixture
def endpoint(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
    return emulator.endpoint_url


@pytest.fixture
def stack(endpoint: str) -> dict[str, str]:
    """Freshly provisioned resources with a unique prefix."""

    async def go() -> dict[str, str]:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            return await provision(aws, f"t{uuid.uuid4().hex[:10]}")

    return asyncio.run(go())


@pytest.fixture
def queue_and_table(endpoint: str) -> dict[str, str]:
    """A queue redriving to its DLQ, and an audit table: what ingest tests need, without topic or rules."""
    prefix = f"q{uuid.uuid4().hex[:10]}"
    sqs = boto("sqs", endpoint)
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})
    queue_url = sqs.create_queue(QueueName=f"{prefix}-events", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    table = f"{prefix}-audit"
    dynamodb = boto("dynamodb", endpoint)
    dynamodb.create_table(**table_definition(table))
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return {"queue_url": queue_url, "dlq_url": dlq_url, "table_name": table, "region": REGION}


@pytest.fixture
def rotations_settle(endpoint: str) -> Iterator[None]:
    """No rotation of the rotation stand-in still runs (and publishes events) when the next test starts."""
    yield
    wait_until_idle(endpoint)
