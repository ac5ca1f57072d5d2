"""The age scan's records in the audit table: item shapes, batched writes, window leases, and the report's reads.

Items (same table as the events, see `daemon.audit`):
    scan row   pk "secret#<ARN>", sk "<run time>#scan#<run id>", kind "scan": one per (secret, run); also
               run_id + status_name ("<status>#<secret name>") for the `by_run` index
    run item   pk "run#scan", sk "<run id>", kind "scan_run": written last, so only finished runs have one.
               Run ids start with their UTC time (`20260101T100000Z`), so the partition sorts by time.
    lease      pk "lease#scan", sk "<window start>", kind "scan_lease": one per schedule window
GSI "by_run": run_id (S) + status_name (S), projection ALL. It holds the scan rows only (sparse), so
`rotaudit report` is two key-condition queries: the run item, then `run_id = :r [AND begins_with(status_name, :s)]`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from daemon.audit import from_dynamo, secret_pk, to_dynamo, utc_iso
from daemon.errors import PermanentAwsError, TransientAwsError
from daemon.scan.rules import ScanResult, SecretFacts, Verdict

BY_RUN_INDEX = "by_run"
RUN_PK = "run#scan"
LEASE_PK = "lease#scan"
BATCH_MAX_ITEMS = 25
CONFLICT_ATTEMPTS = 5
LEASE_RETENTION = timedelta(days=7)  # lease items expire (table TTL) a week after their window

# What provision.table_definition adds for the scan (attribute definitions and the index).
BY_RUN_ATTRIBUTES = (
    {"AttributeName": "run_id", "AttributeType": "S"},
    {"AttributeName": "status_name", "AttributeType": "S"},
)
BY_RUN_GSI = {
    "IndexName": BY_RUN_INDEX,
    "KeySchema": [
        {"AttributeName": "run_id", "KeyType": "HASH"},
        {"AttributeName": "status_name", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}


class AwsCaller(Protocol):
    """What these functions need of `daemon.aws.Aws` (tests pass a stand-in where moto cannot misbehave)."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]: ...


class LeaseLost(Exception):
    """Another replica holds the window's lease now: this replica must stop its run."""


def compact_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def scan_row(
    facts: SecretFacts, verdict: Verdict, *, run_id: str, run_at: datetime, checked_at: datetime
) -> dict[str, Any]:
    """One (secret, run) row: names, ARN, verdict and dates; never a value. The sort key repeats per run."""
    _, _, _, region, account, _ = facts.arn.split(":", 5)
    item: dict[str, Any] = {
        "pk": secret_pk(facts.arn),
        "sk": f"{utc_iso(run_at)}#scan#{run_id}",
        "kind": "scan",
        "secret_name": facts.name,
        "secret_arn": facts.arn,
        "account": account,
        "region": region,
        "run_id": run_id,
        "status": verdict.status.value,
        "status_name": f"{verdict.status.value}#{facts.name}",
        "reasons": [reason.value for reason in verdict.reasons],
        "age_from": verdict.age_from,
        "rotation_enabled": facts.rotation_enabled,
        "checked_at": utc_iso(checked_at),
    }
    if verdict.age_days is not None:
        item["age_days"] = Decimal(f"{verdict.age_days:.2f}")
    if facts.last_rotated_at is not None:
        item["last_rotated_at"] = utc_iso(facts.last_rotated_at)
    if facts.next_rotation_at is not None:
        item["next_rotation_at"] = utc_iso(facts.next_rotation_at)
    return item


def run_summary(result: ScanResult, *, trigger: str, tag: str, max_age_days: int, replica: str) -> dict[str, Any]:
    """The run item's attributes."""
    return {
        "run_id": result.run_id,
        "trigger": trigger,
        "outcome": result.outcome,
        "checked": result.checked,
        "flagged": result.flagged,
        "started_at": utc_iso(result.started_at),
        "finished_at": utc_iso(result.finished_at),
        "duration_s": Decimal(f"{(result.finished_at - result.started_at).total_seconds():.3f}"),
        "scopes": list(result.scopes),
        "failed_scopes": list(result.failed_scopes),
        "tag": tag,
        "max_age_days": max_age_days,
        "replica": replica,
    }


def run_item(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's summary item (`summary` holds run_id, checked, flagged, times, scopes, ...)."""
    return {"pk": RUN_PK, "sk": summary["run_id"], "kind": "scan_run", **summary}


class BatchWriter:
    """`BatchWriteItem` in 25s with a few calls in flight; unprocessed items are retried with backoff.

    Memory is bounded by `concurrency` batches whatever the number of items. Use as `async with`: leaving the
    block normally flushes and waits (raising the first failure); leaving it by an exception cancels the calls.
    """

    def __init__(
        self,
        aws: AwsCaller,
        table: str,
        *,
        concurrency: int = 4,
        max_attempts: int = 8,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.aws = aws
        self.table = table
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.written = 0
        self._buffer: dict[tuple[str, str], dict[str, Any]] = {}  # by key: AWS rejects a batch that repeats one
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    async def __aenter__(self) -> BatchWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.flush()
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def put(self, item: dict[str, Any]) -> None:
        if self._error is not None:
            raise self._error
        self._buffer[(item["pk"], item["sk"])] = to_dynamo(item)
        if len(self._buffer) >= BATCH_MAX_ITEMS:
            await self._send_buffer()

    async def flush(self) -> None:
        """Send what is buffered and wait for every call; raise the first failure."""
        if self._buffer:
            await self._send_buffer()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._error is not None:
            raise self._error

    async def _send_buffer(self) -> None:
        batch, self._buffer = list(self._buffer.values()), {}
        await self._slots.acquire()
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        requests = [{"PutRequest": {"Item": item}} for item in batch]
        for attempt in range(self.max_attempts):
            result = await self.aws.call("dynamodb", "batch_write_item", RequestItems={self.table: requests})
            done = len(requests)
            requests = result.get("UnprocessedItems", {}).get(self.table, [])
            self.written += done - len(requests)
            if not requests:
                return
            await self.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
        raise TransientAwsError(
            "dynamodb", "batch_write_item", "UnprocessedItems", f"{len(requests)} items unprocessed after retries"
        )


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


async def latest_run(aws: AwsCaller, table: str) -> dict[str, Any] | None:
    """The newest finished run's item."""
    page = await aws.call(
        "dynamodb",
        "query",
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": RUN_PK}},
        ScanIndexForward=False,
        Limit=1,
    )
    items = page.get("Items", [])
    return from_dynamo(items[0]) if items else None


async def get_run(aws: AwsCaller, table: str, run_id: str) -> dict[str, Any] | None:
    found = await aws.call("dynamodb", "get_item", TableName=table, Key={"pk": {"S": RUN_PK}, "sk": {"S": run_id}})
    item = found.get("Item")
    return from_dynamo(item) if item else None


async def run_rows(aws: AwsCaller, table: str, run_id: str, status: str | None = None) -> AsyncIterator[dict[str, Any]]:
    """The run's rows from the `by_run` index, flagged first then by name; only `status` when given."""
    condition = "run_id = :run"
    values: dict[str, Any] = {":run": {"S": run_id}}
    if status:
        condition += " AND begins_with(status_name, :status)"
        values[":status"] = {"S": f"{status}#"}
    start_key: dict[str, Any] | None = None
    while True:
        page = await aws.call(
            "dynamodb",
            "query",
            TableName=table,
            IndexName=BY_RUN_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            **({"ExclusiveStartKey": start_key} if start_key else {}),
        )
        for item in page.get("Items", []):
            yield from_dynamo(item)
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return
