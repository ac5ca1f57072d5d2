"""DLQ replay: send selected dead-lettered messages back to the source queue, paced, audited, never lost.

Each message is sent to the source queue first and deleted from the DLQ only after the send succeeded: a crash
mid-replay can duplicate a message (the audit table's idempotency absorbs it), never lose one. Messages not
moved (not selected, beyond `--max`, failed) are visible in the DLQ again at the end of the walk, or `hold_s`
after a crash. Each replay (not a dry run) is an audit item, kind `dlq_replay`, in its own partition
`replay#<UTC date>`: who ran it, when, the filters, the counts, and how it ended (`running` means it was killed).
"""

from __future__ import annotations

import asyncio
import fnmatch
import getpass
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from daemon.aws import Aws, explain
from daemon.dlq.reader import BATCH, DEFAULT_HOLD_S, DlqMessage, DlqReader, walk
from daemon.errors import AwsError, StartupError
from daemon.logs import get_logger
from daemon.table import to_dynamo, utc_iso
from daemon.timer import Clock, utc_now

REPLAY_KIND = "dlq_replay"
_SEND_BATCH_BYTES = 250_000  # under the older 256 KiB SendMessageBatch limit, so either limit is safe
# Attributes EventBridge puts on what it dead-letters: they describe the DLQ, not the event.
_EVENTBRIDGE_ATTRIBUTES = frozenset(
    {"ERROR_CODE", "ERROR_MESSAGE", "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS", "RULE_ARN", "TARGET_ARN"}
)


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which messages a replay selects; every given criterion must hold, any value of a repeated one."""

    secrets: tuple[str, ...] = ()  # secret names or ARNs; shell-style wildcards allowed
    events: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    since: datetime | None = None  # SQS SentTimestamp at or after

    @property
    def empty(self) -> bool:
        return not (self.secrets or self.events or self.reasons or self.since)

    def matches(self, message: DlqMessage) -> bool:
        if self.secrets:
            names = [n for n in (message.secret_name, message.secret_arn) if n]
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in self.secrets):
                return False
        if self.events and message.event_name not in self.events:
            return False
        if self.reasons and message.reason not in self.reasons:
            return False
        return self.since is None or (message.sent_at is not None and message.sent_at >= self.since)

    def describe(self) -> dict[str, Any]:
        """The filters as given, for the audit item."""
        given: dict[str, Any] = {"secret": list(self.secrets), "event": list(self.events), "reason": list(self.reasons)}
        given["since"] = utc_iso(self.since) if self.since else None
        return {key: value for key, value in given.items() if value}


@dataclass
class ReplayCounts:
    matched: int = 0  # selected by the filters (up to --max)
    replayed: int = 0  # sent to the source queue
    skipped: int = 0  # not selected; left in the DLQ
    failed: int = 0  # selected, but the send failed; left in the DLQ
    undeleted: int = 0  # sent, but still in the DLQ too: a later replay duplicates it (harmless)


@dataclass
class ReplayReport:
    replay_id: str
    dry_run: bool
    status: str
    counts: ReplayCounts
    selected: list[DlqMessage]


def replay_key(started_at: datetime, replay_id: str) -> dict[str, str]:
    """A replay's audit item key: one partition per UTC day, apart from the secrets' partitions."""
    return {"pk": f"replay#{started_at.date().isoformat()}", "sk": f"{utc_iso(started_at)}#{REPLAY_KIND}#{replay_id}"}


async def identify_operator(aws: Aws) -> tuple[str, str]:
    """(OS user, STS caller ARN) of whoever runs this; "unknown" where it cannot be told."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        user = f"uid:{os.getuid()}"
    try:
        caller = str((await aws.call("sts", "get_caller_identity"))["Arn"])
    except AwsError:
        caller = "unknown"
    return user, caller


class Replayer:
    """Sends selected DLQ messages back to the source queue: send, then delete; paced; audited."""

    def __init__(
        self,
        aws: Aws,
        *,
        dlq_url: str,
        queue_url: str,
        table: str = "",
        filters: ReplayFilter | None = None,
        max_messages: int | None = None,
        rate: float | None = None,
        dry_run: bool = False,
        hold_s: int = DEFAULT_HOLD_S,
        who: tuple[str, str] = ("unknown", "unknown"),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
        now: Clock = utc_now,
        on_progress: Callable[[ReplayCounts], None] | None = None,
    ) -> None:
        if not dry_run and not table:
            raise ValueError("a replay needs the audit table (ROTAUDIT_AUDIT_TABLE)")
        self.aws, self.dlq_url, self.queue_url, self.table = aws, dlq_url, queue_url, table
        self.filters = filters or ReplayFilter()
        self.max_messages, self.rate, self.dry_run, self.hold_s = max_messages, rate, dry_run, hold_s
        self.who = who
        self._clock, self._sleep, self._now, self._on_progress = clock, sleep, now, on_progress
        self.replay_id = str(uuid.uuid4())
        self.counts = ReplayCounts()
        self.selected: list[DlqMessage] = []
        self._first_send_s: float | None = None
        self._paced = 0
        self._chunk = min(BATCH, max(1, int(rate))) if rate else BATCH
        self.log = get_logger("dlq")

    async def run(self) -> ReplayReport:
        """Walk the DLQ once; everything not moved is visible again at the end, however the walk ends."""
        started_at = self._now()
        key = replay_key(started_at, self.replay_id)
        if not self.dry_run:
            await self._audit_start(key, started_at)
        filters = self.filters.describe()
        self.log.info("dlq.replay_started", replay_id=self.replay_id, dry_run=self.dry_run, filters=filters)
        status = "interrupted"
        try:
            async with walk(self.aws, self.dlq_url, hold_s=self.hold_s) as reader:
                await self._walk(reader)
            status = "finished"
        except AwsError:
            status = "failed"
            raise
        finally:
            if not self.dry_run:
                await self._audit_finish(key, status)
            self.log.info("dlq.replay_finished", replay_id=self.replay_id, status=status, **vars(self.counts))
        return ReplayReport(self.replay_id, self.dry_run, status, self.counts, self.selected)

    def _full(self) -> bool:
        return self.max_messages is not None and self.counts.matched >= self.max_messages

    async def _walk(self, reader: DlqReader) -> None:
        sent_not_deleted: set[str] = set()
        while not self._full():
            wanted = self._chunk if self.max_messages is None else self.max_messages - self.counts.matched
            new, again = await reader.receive(min(self._chunk, wanted))
            retry_delete = [m for m in again if m.message_id in sent_not_deleted]
            if retry_delete:  # sent earlier in this walk: finish the move, never send twice
                gone = await reader.delete(retry_delete)
                sent_not_deleted -= gone
                self.counts.undeleted -= len(gone)
            if not new:
                return
            chosen = []
            for message in new:
                if self._full():
                    break  # beyond --max: left as it was
                if message.replay_id == self.replay_id:
                    # This walk sent it back and it was dead-lettered again: sending it once more would never end.
                    self.counts.skipped += 1
                elif self.filters.matches(message):
                    self.counts.matched += 1
                    chosen.append(message)
                else:
                    self.counts.skipped += 1
            self.selected.extend(chosen)
            if not self.dry_run:
                for group in _groups(chosen, self._chunk):
                    sent_not_deleted |= await self._move(reader, group)
            self._progress()

    async def _move(self, reader: DlqReader, group: list[DlqMessage]) -> set[str]:
        """Send, then delete what was sent; the ids sent but not deleted."""
        await self._pace(len(group))
        entries = [
            {"Id": str(i), "MessageBody": m.body, "MessageAttributes": forwarded_attributes(m, self.replay_id)}
            for i, m in enumerate(group)
        ]
        response = await self.aws.call("sqs", "send_message_batch", QueueUrl=self.queue_url, Entries=entries)
        failures = {str(entry["Id"]): str(entry.get("Code")) for entry in response.get("Failed", [])}
        if failures:
            self.log.warning("dlq.send_failed", replay_id=self.replay_id, codes=sorted(set(failures.values())))
        sent = [m for i, m in enumerate(group) if str(i) not in failures]
        gone = await reader.delete(sent) if sent else set()
        self.counts.replayed += len(sent)
        self.counts.failed += len(failures)
        self.counts.undeleted += len(sent) - len(gone)
        self._progress()
        return {m.message_id for m in sent} - gone

    async def _pace(self, count: int) -> None:
        """At most `rate` messages a second on average, in bursts of at most max(1, rate)."""
        if not self.rate:
            return
        if self._first_send_s is None:
            self._first_send_s = self._clock()
        wait_s = self._first_send_s + self._paced / self.rate - self._clock()
        if wait_s > 0:
            await self._sleep(wait_s)
        self._paced += count

    def _progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.counts)

    async def _audit_start(self, key: dict[str, str], started_at: datetime) -> None:
        user, caller = self.who
        item: dict[str, Any] = {
            **key,
            "kind": REPLAY_KIND,
            "replay_id": self.replay_id,
            "method": "receive_send_delete",
            "status": "running",
            "started_at": utc_iso(started_at),
            "who": user,
            "caller_arn": caller,
            "dlq_url": self.dlq_url,
            "queue_url": self.queue_url,
            "filters": self.filters.describe(),
            "hold_s": self.hold_s,
        }
        if self.max_messages is not None:
            item["max_messages"] = self.max_messages
        if self.rate:
            item["rate"] = Decimal(str(self.rate))
        try:
            await self.aws.call(
                "dynamodb",
                "put_item",
                TableName=self.table,
                Item=to_dynamo(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except AwsError as exc:  # nothing has moved yet: stop here
            what = f"audit table {self.table}"
            raise StartupError(explain(exc, what, "check ROTAUDIT_AUDIT_TABLE and AWS_REGION")) from None

    async def _audit_finish(self, key: dict[str, str], status: str) -> None:
        values = {"status": status, "finished_at": utc_iso(self._now()), **vars(self.counts)}
        try:
            await self.aws.call(
                "dynamodb",
                "update_item",
                TableName=self.table,
                Key=to_dynamo(key),
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
                ExpressionAttributeNames={f"#{name}": name for name in values},
                ExpressionAttributeValues=to_dynamo({f":{name}": value for name, value in values.items()}),
            )
        except AwsError as exc:  # the moves are done and safe; only their record is incomplete
            self.log.warning("dlq.replay_audit_failed", replay_id=self.replay_id, error=str(exc))


def forwarded_attributes(message: DlqMessage, replay_id: str) -> dict[str, Any]:
    """The original's own attributes (not ours, not EventBridge's DLQ ones) plus the replay id."""
    kept: dict[str, Any] = {}
    for name, value in message.message_attributes.items():
        if name.startswith("rotaudit.") or name in _EVENTBRIDGE_ATTRIBUTES or not isinstance(value, dict):
            continue
        payload = {k: value[k] for k in ("StringValue", "BinaryValue") if k in value}
        if payload and "DataType" in value:
            kept[name] = {"DataType": value["DataType"], **payload}
    kept = dict(list(kept.items())[:9])  # SQS allows 10
    kept["rotaudit.replay_id"] = {"DataType": "String", "StringValue": replay_id}
    return kept


def _groups(messages: Iterable[DlqMessage], size: int) -> list[list[DlqMessage]]:
    groups: list[list[DlqMessage]] = []
    total = 0
    for message in messages:
        length = len(message.body.encode("utf-8", "surrogatepass")) + 1024
        if not groups or len(groups[-1]) == size or total + length > _SEND_BATCH_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(message)
        total += length
    return groups


async def start_move_task(aws: Aws, *, dlq_url: str, queue_url: str, rate: float | None = None) -> str:
    """Hand the whole DLQ to SQS's StartMessageMoveTask; its task handle.

    Fast on AWS, but no filters, no preview, at most 500 messages/s and one task per queue (AWS-FACTS §4). One
    attempt, no retries: where it is missing (the emulator answers 500) or not allowed, it raises `AwsError` and
    the caller replays message by message instead.
    """
    arns = []
    for url in (dlq_url, queue_url):
        attrs = await aws.call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"])
        arns.append(str(attrs["Attributes"]["QueueArn"]))
    params: dict[str, Any] = {"SourceArn": arns[0], "DestinationArn": arns[1]}
    if rate:
        params["MaxNumberOfMessagesPerSecond"] = max(1, min(500, int(rate)))
    return str((await aws.call_once("sqs", "start_message_move_task", **params))["TaskHandle"])


async def record_move_task(
    aws: Aws,
    table: str,
    *,
    dlq_url: str,
    queue_url: str,
    task_handle: str,
    messages: int,
    who: tuple[str, str],
    now: Clock = utc_now,
) -> str:
    """The audit item of a replay handed to SQS (its counts are SQS's to report); the replay id."""
    started_at, replay_id = now(), str(uuid.uuid4())
    item = {
        **replay_key(started_at, replay_id),
        "kind": REPLAY_KIND,
        "replay_id": replay_id,
        "method": "move_task",
        "task_handle": task_handle,
        "status": "handed_to_sqs",
        "started_at": utc_iso(started_at),
        "who": who[0],
        "caller_arn": who[1],
        "dlq_url": dlq_url,
        "queue_url": queue_url,
        "matched": messages,
    }
    await aws.call("dynamodb", "put_item", TableName=table, Item=to_dynamo(item))
    return replay_id
