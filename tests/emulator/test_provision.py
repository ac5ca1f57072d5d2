"""`rotaudit provision` against the emulator where AWS behaves in ways moto does not."""

from __future__ import annotations

import uuid
from typing import Any

from daemon.aws import Aws
from daemon.errors import PermanentAwsError
from daemon.provision import provision
from daemon.table import BY_PERIOD_GSI, BY_PERIOD_INDEX, PERIOD_ATTRIBUTE, table_definition
from tests.support import REGION, boto


class _PitrNotReadyYet(Aws):
    """The emulator, except that UpdateContinuousBackups is refused twice with ContinuousBackupsUnavailableException,
    as AWS may refuse it for a while after CreateTable (AWS-FACTS §5); moto never does."""

    refusals = 2

    async def call_once(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        if operation == "update_continuous_backups" and self.refusals:
            self.refusals -= 1
            raise PermanentAwsError(service, operation, "ContinuousBackupsUnavailableException", "backups not ready")
        return await super().call_once(service, operation, **params)


async def test_provision_waits_for_continuous_backups_to_become_available(endpoint: str) -> None:
    """A table whose continuous backups are not available yet still gets point-in-time recovery, after retries."""
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    async with _PitrNotReadyYet(REGION, endpoint_url=endpoint) as aws:
        made = await provision(aws, f"t{uuid.uuid4().hex[:10]}", sleep=nap)
    assert aws.refusals == 0
    assert len(naps) == 2
    described = boto("dynamodb", endpoint).describe_continuous_backups(TableName=made["table_name"])
    pitr = described["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


async def test_provision_adds_the_evidence_index_to_an_older_table(endpoint: str) -> None:
    """A table made before `by_period` existed gets the index, its key attribute defined, the other indexes kept."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    older = table_definition(f"{prefix}-audit")
    older["GlobalSecondaryIndexes"] = [i for i in older["GlobalSecondaryIndexes"] if i["IndexName"] != BY_PERIOD_INDEX]
    older["AttributeDefinitions"] = [a for a in older["AttributeDefinitions"] if a["AttributeName"] != PERIOD_ATTRIBUTE]
    boto("dynamodb", endpoint).create_table(**older)

    async def nap(seconds: float) -> None:
        pass

    async with Aws(REGION, endpoint_url=endpoint) as aws:
        await provision(aws, prefix, sleep=nap)
    table = boto("dynamodb", endpoint).describe_table(TableName=f"{prefix}-audit")["Table"]
    indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {i["IndexName"] for i in table_definition("x")["GlobalSecondaryIndexes"]}
    assert indexes[BY_PERIOD_INDEX] == BY_PERIOD_GSI["KeySchema"]
