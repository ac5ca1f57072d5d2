"""The age scan's records in the audit table: item shapes, batched writes, and the report's reads.

Items (same table as the events, see `daemon.audit`):
    scan row   pk "secret#<ARN>", sk "<run time>#scan#<run id>", kind "scan": one per (secret, run); also
               run_id + status_name ("<status>#<secret name>") for the `by_run` index
    run item   pk "run#scan", sk "<run id>", kind "scan_run": written last, so only finished runs have one.
               Run ids start with their UTC time (`20260101T100000Z`), so the partition sorts by time.
GSI "by_run": run_id (S) + status_name (S), projection ALL. It holds the scan rows only (sparse), so
`rotaudit report` is two key-condition queries: the run item, then `run_id = :r [AND begins_with(status_name, :s)]`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from daemon.aws import query_pages
from daemon.errors import TransientAwsError
from daemon.scan.rules import ScanResult, SecretFacts, Verdict
from daemon.table import BY_RUN_INDEX, from_dynamo, secret_pk, to_dynamo, utc_iso

RUN_PK = "run#scan"
BATCH_MAX_ITEMS = 25
CONFLICT_ATTEMPTS = 5


class AwsCaller(Protocol):
    """What these functions need of `daemon.aws.Aws` (tests pass a stand-in where moto cannot misbehave)."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]: ...


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
    async for page in query_pages(
        aws,
        TableName=table,
        IndexName=BY_RUN_INDEX,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
    ):
        for item in page.get("Items", []):
            yield from_dynamo(item)


AgeKey = tuple[str, str, str]  # (secret name, account, region): the labels of rotaudit_secret_age_seconds


def age_key(row: dict[str, Any]) -> AgeKey:
    return str(row["secret_name"]), str(row["account"]), str(row["region"])


def row_age_s(row: dict[str, Any]) -> float | None:
    """A scan row's age in seconds, from the `age_days` it stores (rounded to 0.01 day); None without one."""
    return float(row["age_days"]) * 86400 if row.get("age_days") is not None else None


async def run_ages(aws: AwsCaller, table: str, run_id: str) -> dict[AgeKey, float]:
    """Every secret's age in one run, read back from its rows: how a replica that skipped the run shows its ages."""
    ages: dict[AgeKey, float] = {}
    async for row in run_rows(aws, table, run_id):
        if (age_s := row_age_s(row)) is not None:
            ages[age_key(row)] = age_s
    return ages
