"""The remediation budget: RotateSecret calls rotaudit may make per secret in a sliding 24 hours, spent atomically.

The budget is `limit` slots per secret — pk "remediation#<secret ARN>", sk "budget#<n>" — and a call takes one
with a conditional write: a slot is free when absent, when its 24 hours have passed, or when it already holds this
very token (a retried call counts once). Two replicas can never both take the last slot, because the write
itself is the check (not a count read first and a record written later). Items expire (TTL) two days after use.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from daemon.audit import put_if_absent
from daemon.aws import Aws
from daemon.remediation.plan import BUDGET_WINDOW_S
from daemon.remediation.state import Failure
from daemon.table import TTL_ATTRIBUTE, to_dynamo, utc_iso
from daemon.timer import Clock

SLOT_RETENTION = timedelta(days=2)


class AttemptLedger:
    """Counts and spends rotaudit's RotateSecret attempts per secret."""

    def __init__(self, aws: Aws, table: str, *, clock: Clock) -> None:
        self.aws = aws
        self.table = table
        self.clock = clock

    async def used(self, secret_arn: str) -> int:
        """Slots of this secret taken within the budget window (for the backoff; spending is `take`'s)."""
        now_ms = int(self.clock().timestamp() * 1000)
        count = 0
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :slot)",
            "FilterExpression": "window_until_ms > :now",
            "ExpressionAttributeValues": to_dynamo({":pk": _pk(secret_arn), ":slot": "budget#", ":now": now_ms}),
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        while True:
            page = await self.aws.call("dynamodb", "query", **params)
            count += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                return count
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def take(self, failure: Failure, token: str, limit: int) -> bool:
        """Spend one slot on the RotateSecret with `token`; False when all `limit` slots are taken by others."""
        now = self.clock()
        now_ms = int(now.timestamp() * 1000)
        if await self._holds(failure.secret_arn, token):
            return True  # this very call, retried after a lost response: it was counted
        for slot in range(limit):
            item = {
                "pk": _pk(failure.secret_arn),
                "sk": f"budget#{slot}",
                "token": token,
                "rotation_id": failure.rotation_id,
                "attempted_at": utc_iso(now),
                "window_until_ms": now_ms + BUDGET_WINDOW_S * 1000,
                TTL_ATTRIBUTE: int((now + SLOT_RETENTION).timestamp()),
            }
            taken = await put_if_absent(
                self.aws,
                self.table,
                item,
                condition="attribute_not_exists(pk) OR window_until_ms <= :now OR #token = :token",
                names={"#token": "token"},
                values={":now": now_ms, ":token": token},
            )
            if taken:
                return True
        return False

    async def _holds(self, secret_arn: str, token: str) -> bool:
        page = await self.aws.call(
            "dynamodb",
            "query",
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :slot)",
            FilterExpression="#token = :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues=to_dynamo({":pk": _pk(secret_arn), ":slot": "budget#", ":token": token}),
            ConsistentRead=True,
        )
        return bool(page.get("Items"))


def _pk(secret_arn: str) -> str:
    return f"remediation#{secret_arn}"
