"""The audit store: insert-if-absent event items, and a secret's history by key condition only.

The table's schema (keys, indexes, codec) is `daemon.table`'s.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from daemon.aws import Aws
from daemon.errors import PermanentAwsError, StartupError, TransientAwsError
from daemon.events import RotationEvent
from daemon.table import (
    BY_NAME_INDEX,
    PERIOD_ATTRIBUTE,
    event_key,
    from_dynamo,
    period_bucket,
    secret_pk,
    to_dynamo,
    utc_iso,
)
from daemon.timer import utc_now

TRANSACTION_MAX_ITEMS = 100
_CONFLICT_ATTEMPTS = 5
KNOWN_KEYS_MAX = 20_000  # ≈ 4 MB of recently confirmed keys
KNOWN_KEYS_TTL_S = 3600.0  # well inside any retention: an item confirmed this recently is still in the table


class Outcome(StrEnum):
    """What happened to one event's write."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"


def event_item(event: RotationEvent, recorded_at: datetime, message_id: str = "") -> dict[str, Any]:
    """The audit item for an event: ids, names, times and AWS's error text; never a payload."""
    item: dict[str, Any] = {
        **event_key(event),
        "kind": "event",
        "secret_arn": event.secret_arn,
        "secret_name": event.secret_name,
        "event_name": event.event_name,
        "event_kind": event.kind,
        "event_id": event.event_id,
        "rotation_id": event.rotation_id,
        "event_time": utc_iso(event.event_time),
        "recorded_at": utc_iso(recorded_at),
        PERIOD_ATTRIBUTE: period_bucket(event.secret_arn, utc_iso(event.event_time)),  # `rotaudit evidence`
    }
    optional = {
        "account": event.account,
        "region": event.region,
        "envelope_id": event.envelope_id,
        "error_message": event.error_message,
        "failed_step": event.failed_step,
        "version_id": event.version_id,
        "label": event.label,
        "first_message_id": message_id or None,
    }
    item.update({key: value for key, value in optional.items() if value})
    return item


async def put_if_absent(
    aws: Aws,
    table: str,
    item: dict[str, Any],
    *,
    condition: str = "attribute_not_exists(pk)",
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """A conditional PutItem: True if written, False if the condition failed (an expected outcome, not an error)."""
    extra: dict[str, Any] = {}
    if names:
        extra["ExpressionAttributeNames"] = names
    if values:
        extra["ExpressionAttributeValues"] = to_dynamo(values)
    try:
        await aws.call(
            "dynamodb", "put_item", TableName=table, Item=to_dynamo(item), ConditionExpression=condition, **extra
        )
    except PermanentAwsError as exc:
        if exc.code == "ConditionalCheckFailedException":
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class PendingWrite:
    event: RotationEvent
    message_id: str = ""


class KnownKeys:
    """A bounded, expiring memory of item keys this process saw confirmed in the table (written or found there).

    A duplicate delivery of a key held here needs no write: the item is known to exist. Only an optimisation —
    a key that is forgotten, or was written by another replica, goes to DynamoDB's conditional write as before.
    """

    def __init__(
        self, limit: int = KNOWN_KEYS_MAX, ttl_s: float = KNOWN_KEYS_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._ttl_s = ttl_s
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        seen_at = self._seen.get(key)
        if seen_at is None:
            return False
        if self._clock() - seen_at > self._ttl_s:
            del self._seen[key]
            return False
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: tuple[str, str]) -> None:
        self._seen[key] = self._clock()
        self._seen.move_to_end(key)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)


class AuditStore:
    """Reads and writes the audit table."""

    def __init__(self, aws: Aws, table: str, known: KnownKeys | None = None) -> None:
        self.aws = aws
        self.table = table
        self.known = known if known is not None else KnownKeys()

    async def check_ready(self) -> None:
        """Start-up check: the table exists and is ACTIVE."""
        try:
            described = await self.aws.call("dynamodb", "describe_table", TableName=self.table)
        except (PermanentAwsError, TransientAwsError) as exc:
            raise StartupError(f"audit table {self.table!r} is not usable: {exc}") from None
        status = described["Table"]["TableStatus"]
        if status != "ACTIVE":
            raise StartupError(f"audit table {self.table!r} is {status}, not ACTIVE")

    async def record_many(self, writes: Sequence[PendingWrite]) -> list[Outcome]:
        """Insert each event's item unless it exists; return one outcome per write, in order.

        Duplicates within `writes` share one item, and a key this process recently saw confirmed is a duplicate
        without a write. Raises TransientAwsError when AWS stays unavailable (the caller leaves the messages for
        redelivery) and PermanentAwsError on anything else.
        """
        now = utc_now()
        first_index: dict[tuple[str, str], int] = {}
        keys: list[tuple[str, str]] = []
        alias: list[int] = []
        for index, write in enumerate(writes):
            key = event_key(write.event)
            keys.append((key["pk"], key["sk"]))
            alias.append(first_index.setdefault(keys[-1], index))
        outcomes: dict[int, Outcome] = {}
        unique = []
        for i in sorted(set(alias)):
            if keys[i] in self.known:
                outcomes[i] = Outcome.DUPLICATE
            else:
                unique.append(i)
        for start in range(0, len(unique), TRANSACTION_MAX_ITEMS):
            chunk = unique[start : start + TRANSACTION_MAX_ITEMS]
            items = [event_item(writes[i].event, now, writes[i].message_id) for i in chunk]
            for i, outcome in zip(chunk, await self._insert(items), strict=True):
                outcomes[i] = outcome
                self.known.add(keys[i])
        return [outcomes[i] if i == index else Outcome.DUPLICATE for index, i in enumerate(alias)]

    async def _insert(self, items: list[dict[str, Any]]) -> list[Outcome]:
        if len(items) == 1:
            return [await self._put_one(items[0])]
        encoded = [to_dynamo(item) for item in items]  # once, not once per round
        result: dict[int, Outcome] = {}
        remaining = list(range(len(items)))
        conflicts = 0
        while remaining and conflicts < _CONFLICT_ATTEMPTS:
            try:
                await self.aws.call(
                    "dynamodb",
                    "transact_write_items",
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": encoded[i],
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        }
                        for i in remaining
                    ],
                )
            except PermanentAwsError as exc:
                if exc.code != "TransactionCanceledException":
                    raise
                reasons = exc.details.get("CancellationReasons")
                if not isinstance(reasons, list) or len(reasons) != len(remaining):
                    raise
                codes = [str(reason.get("Code", "None")) for reason in reasons]
                if "ValidationError" in codes:
                    # An item DynamoDB refuses (AWS-FACTS §5: a cancellation reason, like ConditionalCheckFailed,
                    # TransactionConflict and ThrottlingError) fails the same way however often it is sent: it is
                    # permanent, not a conflict to retry. The caller writes the batch item by item, so it fails alone.
                    raise
                duplicates = [i for i, code in zip(remaining, codes, strict=True) if code == "ConditionalCheckFailed"]
                for i in duplicates:
                    result[i] = Outcome.DUPLICATE
                remaining = [i for i in remaining if i not in result]
                if len(remaining) == 1:
                    result[remaining[0]] = await self._put_one(items[remaining[0]])
                    remaining = []
                if not duplicates:
                    # Only a round that found nothing new counts against the limit: duplicates always shrink
                    # the transaction, so they cannot loop.
                    conflicts += 1
                    await asyncio.sleep(random.uniform(0.02, 0.1) * conflicts)
                continue
            for i in remaining:
                result[i] = Outcome.RECORDED
            remaining = []
        if remaining:
            raise TransientAwsError(
                "dynamodb", "transact_write_items", "TransactionConflict", "conflicts did not clear"
            )
        return [result[i] for i in range(len(items))]

    async def _put_one(self, item: dict[str, Any]) -> Outcome:
        recorded = await put_if_absent(self.aws, self.table, item)
        return Outcome.RECORDED if recorded else Outcome.DUPLICATE

    async def history(self, secret: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """A secret's items, newest first: by ARN on the table, by name on the `by_name` index."""
        if secret.startswith("arn:"):
            params: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": secret_pk(secret)}},
            }
        else:
            params = {
                "IndexName": BY_NAME_INDEX,
                "KeyConditionExpression": "secret_name = :name",
                "ExpressionAttributeValues": {":name": {"S": secret}},
            }
        found: list[dict[str, Any]] = []
        start_key: dict[str, Any] | None = None
        while len(found) < limit:
            page = await self.aws.call(
                "dynamodb",
                "query",
                TableName=self.table,
                ScanIndexForward=False,
                Limit=min(100, limit - len(found)),
                **params,
                **({"ExclusiveStartKey": start_key} if start_key else {}),
            )
            found.extend(from_dynamo(item) for item in page.get("Items", []))
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                break
        return found
