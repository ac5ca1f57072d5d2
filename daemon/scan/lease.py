"""The scan's window lease: one replica runs each schedule window, fenced, renewed, and taken over when it lapses.

Item (same table as the events, see `daemon.table`):
    lease      pk "lease#scan", sk "<window start>", kind "scan_lease": one per schedule window
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from daemon.errors import LeaseLost, PermanentAwsError, TransientAwsError
from daemon.scan.report import CONFLICT_ATTEMPTS, AwsCaller, run_item
from daemon.table import from_dynamo, to_dynamo, utc_iso

LEASE_PK = "lease#scan"
LEASE_RETENTION = timedelta(days=7)  # lease items expire (table TTL) a week after their window


@dataclass(frozen=True, slots=True)
class LeaseView:
    """A window's lease as an attempt to take it found it."""

    acquired: bool
    state: str  # "running" or "done"
    holder: str
    until_s: float  # epoch seconds; meaningful while running
    item: dict[str, Any]
    taken_over_from: str = ""  # the holder whose lease had expired, when this attempt took it over


class WindowLease:
    """One lease item per schedule window: a conditional put takes it, unless it is done or held unexpired."""

    def __init__(
        self,
        aws: AwsCaller,
        table: str,
        *,
        holder: str,
        lease_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.aws = aws
        self.table = table
        self.holder = holder
        self.lease_s = lease_s
        self.sleep = sleep

    @staticmethod
    def key(window: datetime) -> dict[str, Any]:
        return {"pk": {"S": LEASE_PK}, "sk": {"S": utc_iso(window)}}

    async def acquire(self, window: datetime, run_id: str, now: datetime) -> LeaseView:
        """Take the lease if it is free, or held by a holder whose lease has expired (a dead replica)."""
        until_s = now.timestamp() + self.lease_s
        item: dict[str, Any] = {
            "pk": LEASE_PK,
            "sk": utc_iso(window),
            "kind": "scan_lease",
            "state": "running",
            "holder": self.holder,
            "run_id": run_id,
            "acquired_at": utc_iso(now),
            "lease_until": Decimal(f"{until_s:.3f}"),
            "expires_at": int((window + LEASE_RETENTION).timestamp()),
        }
        try:
            put = await self.aws.call(
                "dynamodb",
                "put_item",
                TableName=self.table,
                Item=to_dynamo(item),
                ConditionExpression="attribute_not_exists(pk) OR (#state = :running AND lease_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":running": {"S": "running"}, ":now": {"N": f"{now.timestamp():.3f}"}},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except PermanentAwsError as exc:
            if exc.code == "TransactionConflictException":  # the holder's completing transaction: look again
                return LeaseView(False, "running", "", now.timestamp(), {})
            if exc.code != "ConditionalCheckFailedException":
                raise
            old = exc.details.get("Item")
            current = from_dynamo(old) if isinstance(old, dict) else {}
            until = float(str(current.get("lease_until", 0)))
            if (current.get("holder"), current.get("acquired_at")) == (self.holder, item["acquired_at"]):
                return LeaseView(True, "running", self.holder, until_s, item)  # this call's write; response lost
            return LeaseView(
                False, str(current.get("state", "running")), str(current.get("holder", "")), until, current
            )
        previous = from_dynamo(put.get("Attributes") or {})
        return LeaseView(True, "running", self.holder, until_s, item, str(previous.get("holder", "")))

    async def renew(self, window: datetime, now: datetime) -> None:
        await self._update(
            window, "SET lease_until = :until", {":until": {"N": f"{now.timestamp() + self.lease_s:.3f}"}}
        )

    async def release(self, window: datetime) -> None:
        """Let another replica take the window at once (a graceful stop mid-run)."""
        await self._update(window, "SET lease_until = :until", {":until": {"N": "0"}})

    def complete_action(self, window: datetime, summary: dict[str, Any]) -> dict[str, Any]:
        """The transaction action that marks the window done, copying the run's figures onto the lease."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": self.key(window),
                "UpdateExpression": (
                    "SET #state = :done, outcome = :outcome, checked = :checked, flagged = :flagged, finished_at = :end"
                ),
                "ConditionExpression": "holder = :me AND #state = :running",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":done": {"S": "done"},
                    ":outcome": {"S": summary["outcome"]},
                    ":running": {"S": "running"},
                    ":me": {"S": self.holder},
                    ":checked": {"N": str(summary["checked"])},
                    ":flagged": {"N": str(summary["flagged"])},
                    ":end": {"S": summary["finished_at"]},
                },
            }
        }

    async def complete(self, window: datetime, summary: dict[str, Any]) -> None:
        """Mark the window done and write the run item, together or not at all.

        Raises LeaseLost when the lease is no longer ours; retries while other replicas' attempts to take the
        lease collide with the transaction (TransactionConflict, which the emulator never produces).
        """
        actions = [
            self.complete_action(window, summary),
            {"Put": {"TableName": self.table, "Item": to_dynamo(run_item(summary))}},
        ]
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                await self.aws.call("dynamodb", "transact_write_items", TransactItems=actions)
                return
            except PermanentAwsError as exc:
                reasons = exc.details.get("CancellationReasons") if exc.code == "TransactionCanceledException" else None
                codes = (
                    [str(r.get("Code")) for r in reasons if isinstance(r, dict)] if isinstance(reasons, list) else []
                )
                if "ConditionalCheckFailed" in codes:
                    if await self._completed_by_me(window):
                        return  # an earlier attempt committed; only its response was lost
                    raise LeaseLost(f"lease for window {utc_iso(window)} is no longer ours") from None
                if "TransactionConflict" not in codes:
                    raise
            await self.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
        raise TransientAwsError("dynamodb", "transact_write_items", "TransactionConflict", "conflicts did not clear")

    async def _completed_by_me(self, window: datetime) -> bool:
        found = await self.aws.call(
            "dynamodb", "get_item", TableName=self.table, Key=self.key(window), ConsistentRead=True
        )
        lease = from_dynamo(found.get("Item") or {})
        return lease.get("state") == "done" and lease.get("holder") == self.holder

    async def _update(self, window: datetime, expression: str, values: dict[str, Any]) -> None:
        try:
            await self.aws.call(
                "dynamodb",
                "update_item",
                TableName=self.table,
                Key=self.key(window),
                UpdateExpression=expression,
                ConditionExpression="holder = :me AND #state = :running",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={**values, ":me": {"S": self.holder}, ":running": {"S": "running"}},
            )
        except PermanentAwsError as exc:
            if exc.code == "ConditionalCheckFailedException":
                raise LeaseLost(f"lease for window {utc_iso(window)} is no longer ours") from None
            raise
