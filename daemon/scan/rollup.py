"""The scan's daily rollup: one item per secret per UTC day holding each run's verdict, for `rotaudit evidence`.

Item: pk "rollup#<secret ARN>", sk "<YYYY-MM-DD>", kind "scan_rollup", secret_arn, secret_name, and
`period_bucket` (the `by_period` index, `daemon.table`); then one attribute per run, "run#<run id>", holding
"<status>|<age days>|<the limit the run judged by>" (`daemon.table.run_entry`; the run id starts with its time).

Each run sets only its own attribute (an Update), so the write is idempotent (a replica that takes a window over
rewrites the same run with the same value) and replicas never race. Counters (`ADD runs :one`) would count a
rewritten run twice. An hourly schedule puts 24 short strings in a day's item (about 1 KB). A quarter's report reads
~90 of these per secret instead of ~2,160 scan rows.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from daemon.errors import PermanentAwsError
from daemon.scan.report import AwsCaller
from daemon.table import PERIOD_ATTRIBUTE, ROLLUP_PREFIX, RUN_ATTRIBUTE_PREFIX, period_bucket, run_entry, to_dynamo

TRANSACTION_MAX_ITEMS = 100  # TransactWriteItems' limit (DynamoDB API reference)
CONFLICT_ATTEMPTS = 5


def rollup_key(secret_arn: str, day: str) -> dict[str, str]:
    return {"pk": f"{ROLLUP_PREFIX}{secret_arn}", "sk": day}


def rollup_update(table: str, row: dict[str, Any], *, run_at_iso: str, max_age_days: int) -> dict[str, Any]:
    """The Update (alone or in a transaction) recording one scan row (`daemon.scan.report.scan_row`) in its day."""
    entry = run_entry(row["status"], row.get("age_days"), max_age_days)
    fields = {
        "kind": "scan_rollup",
        "secret_arn": row["secret_arn"],
        "secret_name": row["secret_name"],
        PERIOD_ATTRIBUTE: period_bucket(row["secret_arn"], run_at_iso),
        f"{RUN_ATTRIBUTE_PREFIX}{row['run_id']}": entry,
    }
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    return {
        "TableName": table,
        "Key": to_dynamo(rollup_key(row["secret_arn"], run_at_iso[:10])),
        "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_dynamo({f":f{i}": value for i, value in enumerate(fields.values())}),
    }


class RollupWriter:
    """Records rows in their rollups, 100 updates per `TransactWriteItems`, a few calls in flight.

    A transaction of single-attribute updates costs one call per 100 secrets instead of one per secret (the scan's
    calls per secret stay near 0.1): each update is still its own idempotent SET. Transactional writes cost two write
    units per item (DynamoDB pricing), the price of that. A transaction cancelled by a conflicting write (another run
    of the same secret at the same moment) is retried. Use as `async with`: leaving it sends the rest and waits.
    """

    def __init__(
        self,
        aws: AwsCaller,
        table: str,
        *,
        max_age_days: int,
        concurrency: int = 8,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.aws = aws
        self.table = table
        self.max_age_days = max_age_days
        self.sleep = sleep
        self.written = 0
        self._buffer: dict[str, dict[str, Any]] = {}  # by secret: a transaction may not touch one item twice
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    async def __aenter__(self) -> RollupWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: TracebackType | None
    ) -> None:
        if exc_type is None and self._buffer and self._error is None:
            await self._send_buffer()
        if exc_type is not None:
            for task in self._tasks:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if exc_type is None and self._error is not None:
            raise self._error

    async def add(self, row: dict[str, Any], run_at_iso: str) -> None:
        """Record `row` (a scan row of the run that started at `run_at_iso`); raises an earlier call's failure."""
        if self._error is not None:
            raise self._error
        params = rollup_update(self.table, row, run_at_iso=run_at_iso, max_age_days=self.max_age_days)
        self._buffer[row["secret_arn"]] = params
        if len(self._buffer) >= TRANSACTION_MAX_ITEMS:
            await self._send_buffer()

    async def _send_buffer(self) -> None:
        batch, self._buffer = [{"Update": params} for params in self._buffer.values()], {}
        await self._slots.acquire()
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                await self.aws.call("dynamodb", "transact_write_items", TransactItems=batch)
            except PermanentAwsError as exc:
                if exc.code != "TransactionCanceledException" or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                await self.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
                continue
            self.written += len(batch)
            return

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()
