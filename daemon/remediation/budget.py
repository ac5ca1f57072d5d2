"""The remediation budget: the RotateSecret calls rotaudit made per secret, counted over a sliding 24 hours.

One item per failed rotation retried — pk "remediation#<secret ARN>", sk "attempt#<rotation id>" — so a retry
resumed after a crash counts once. Items expire (TTL) two days after the attempt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from daemon.audit import put_if_absent
from daemon.aws import Aws
from daemon.remediation.plan import BUDGET_WINDOW_S, Failure
from daemon.table import TTL_ATTRIBUTE, to_dynamo, utc_iso
from daemon.timer import Clock

ATTEMPT_RETENTION = timedelta(days=2)


class AttemptLedger:
    """Counts and records rotaudit's RotateSecret attempts."""

    def __init__(self, aws: Aws, table: str, *, clock: Clock) -> None:
        self.aws = aws
        self.table = table
        self.clock = clock

    async def used(self, secret_arn: str) -> int:
        """Attempts recorded for this secret within the budget window."""
        since = self.clock() - timedelta(seconds=BUDGET_WINDOW_S)
        count = 0
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :attempt)",
            "FilterExpression": "attempted_at_ms > :since",
            "ExpressionAttributeValues": to_dynamo(
                {":pk": f"remediation#{secret_arn}", ":attempt": "attempt#", ":since": int(since.timestamp() * 1000)}
            ),
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        while True:
            page = await self.aws.call("dynamodb", "query", **params)
            count += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                return count
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def record(self, failure: Failure, token: str) -> None:
        """Count one RotateSecret for this failed rotation, once however often the retry is resumed."""
        now = self.clock()
        item = {
            "pk": f"remediation#{failure.secret_arn}",
            "sk": f"attempt#{failure.rotation_id}",
            "attempted_at_ms": int(now.timestamp() * 1000),
            "attempted_at": utc_iso(now),
            "token": token,
            TTL_ATTRIBUTE: int((now + ATTEMPT_RETENTION).timestamp()),
        }
        await put_if_absent(self.aws, self.table, item)  # already there: this attempt was counted before
