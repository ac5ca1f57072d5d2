"""Key-condition reads of a period: the `by_period` index, shard by shard and week by week, merged by secret.

Per shard, two streams per week the period touches: the scan rollups (`begins_with(pk, "rollup#")`) and the event
and remediation items (`begins_with(pk, "secret#")`). Each comes sorted by pk, so merging them hands over one
secret's items at a time. Memory holds one page per stream and one secret's items, whatever the number of secrets.
Items read per secret are its rollups and events in those weeks (a quarter: at most 98 rollups), never its hourly
scan rows, and never anything outside the period's weeks: the cost grows with the period, not with the table.
Items are then cut to the period exactly: events by `event_time`, rollups to the runs that started in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from daemon.aws import query_pages
from daemon.table import (
    BY_NAME_INDEX,
    BY_PERIOD_INDEX,
    EVIDENCE_SHARDS,
    PERIOD_ATTRIBUTE,
    ROLLUP_PREFIX,
    RUN_ATTRIBUTE_PREFIX,
    from_dynamo,
    run_time_iso,
    secret_pk,
    secret_shard,
    to_dynamo,
    utc_iso,
    week_start,
)

EVENT_PREFIX = "secret#"
PAGE_SIZE = 100


class AwsCaller(Protocol):
    """What the reader needs of `daemon.aws.Aws`."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]: ...


@dataclass(slots=True)
class ReadStats:
    """What the reads cost: queries made and items DynamoDB returned (before cutting to the period)."""

    queries: int = 0
    items: int = 0
    secrets: int = 0


@dataclass(slots=True)
class SecretItems:
    """One secret's items in the period: event and remediation items, and its rollups cut to the period's runs."""

    secret_arn: str
    events: list[dict[str, Any]] = field(default_factory=list)
    rollups: list[dict[str, Any]] = field(default_factory=list)  # {"pk", "sk", "secret_name", "runs": {id: entry}}

    @property
    def secret_name(self) -> str:
        for item in (*self.events, *self.rollups):
            if item.get("secret_name"):
                return str(item["secret_name"])
        return self.secret_arn.rsplit(":", 1)[-1]


def period_weeks(since: datetime, until: datetime) -> list[str]:
    """The Mondays (ISO dates) of every week [since, until) touches."""
    first, last = week_start(since.date()), week_start((until - timedelta(microseconds=1)).date())
    weeks = []
    while first <= last:
        weeks.append(first.isoformat())
        first += timedelta(days=7)
    return weeks


class PeriodReader:
    """Reads [since, until) for every secret (`secrets()`), or for the given ARNs only."""

    def __init__(
        self, aws: AwsCaller, table: str, since: datetime, until: datetime, *, page_size: int = PAGE_SIZE
    ) -> None:
        self.aws = aws
        self.table = table
        self.since_iso, self.until_iso = utc_iso(since), utc_iso(until)
        self.weeks = period_weeks(since, until)
        self.page_size = page_size
        self.stats = ReadStats()

    async def secrets(self, arns: Sequence[str] = ()) -> AsyncIterator[SecretItems]:
        """Each secret with items in the period, one at a time: by shard, then by ARN."""
        if arns:
            for arn in sorted(set(arns)):
                async for found in self._merged(secret_shard(arn), arn):
                    yield found
            return
        for shard in range(EVIDENCE_SHARDS):
            async for found in self._merged(shard, None):
                yield found

    async def _merged(self, shard: int, arn: str | None) -> AsyncIterator[SecretItems]:
        streams = [
            self._stream(f"{week}#{shard}", prefix, arn)
            for week in self.weeks
            for prefix in (ROLLUP_PREFIX, EVENT_PREFIX)
        ]
        heads: list[tuple[str, dict[str, Any]] | None] = [await anext(s, None) for s in streams]
        while any(heads):
            current = min(head[0] for head in heads if head)
            group = SecretItems(current)
            for i, stream in enumerate(streams):
                while (head := heads[i]) is not None and head[0] == current:
                    self._keep(group, head[1])
                    heads[i] = await anext(stream, None)
            if group.events or group.rollups:
                self.stats.secrets += 1
                yield group

    async def _stream(self, bucket: str, prefix: str, arn: str | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        if arn is None:
            condition, key = "#b = :b AND begins_with(pk, :p)", prefix
        else:
            condition, key = (
                "#b = :b AND pk = :p",
                (f"{ROLLUP_PREFIX}{arn}" if prefix == ROLLUP_PREFIX else secret_pk(arn)),
            )
        async for page in query_pages(
            self.aws,
            TableName=self.table,
            IndexName=BY_PERIOD_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#b": PERIOD_ATTRIBUTE},
            ExpressionAttributeValues=to_dynamo({":b": bucket, ":p": key}),
            Limit=self.page_size,
        ):
            self.stats.queries += 1
            for raw in page.get("Items", []):
                self.stats.items += 1
                item = from_dynamo(raw)
                yield str(item["pk"]).split("#", 1)[1], item

    def _keep(self, group: SecretItems, item: dict[str, Any]) -> None:
        """Add the item to its secret's group if it falls in the period (a rollup: the runs that do)."""
        if str(item["pk"]).startswith(ROLLUP_PREFIX):
            runs = {
                name[len(RUN_ATTRIBUTE_PREFIX) :]: value
                for name, value in item.items()
                if name.startswith(RUN_ATTRIBUTE_PREFIX)
                and self.since_iso <= run_time_iso(name[len(RUN_ATTRIBUTE_PREFIX) :]) < self.until_iso
            }
            if runs:
                group.rollups.append(
                    {"pk": item["pk"], "sk": item["sk"], "secret_name": item.get("secret_name"), "runs": runs}
                )
        elif item.get("kind") in ("event", "remediation") and (
            self.since_iso <= str(item.get("event_time", "")) < self.until_iso
        ):
            group.events.append(item)


async def resolve_secret(aws: AwsCaller, table: str, name_or_arn: str) -> str | None:
    """A secret's ARN: the argument when it is one, else from the `by_name` index (None when the table has no item)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    page = await aws.call(
        "dynamodb",
        "query",
        TableName=table,
        IndexName=BY_NAME_INDEX,
        KeyConditionExpression="secret_name = :n",
        ExpressionAttributeValues=to_dynamo({":n": name_or_arn}),
        Limit=1,
    )
    items = page.get("Items", [])
    return str(from_dynamo(items[0])["secret_arn"]) if items else None
