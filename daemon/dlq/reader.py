"""The dead-letter queue: read it without consuming it: walks that hold each message once and hand back the rest.

A walk (inspect, export, replay) receives each message once and holds it invisible for `hold_s`; when it ends,
every message it did not delete is visible again at once (ChangeMessageVisibility 0), or `hold_s` after a crash.
Each receive bumps SQS's ApproximateReceiveCount: harmless in a DLQ without a redrive policy of its own, and the
count shown is the source queue's (stored by the consumer) wherever there is one.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.aws import Aws
from daemon.errors import AwsError
from daemon.events import RotationEvent, parse_message, parse_secret_arn
from daemon.logs import get_logger
from daemon.queues import RECEIVE_MAX
from daemon.table import utc_iso

BATCH = RECEIVE_MAX
DEFAULT_HOLD_S = 120
REASON_MAX_RECEIVES = "max_receives"  # moved by SQS after maxReceiveCount: no attributes of ours
REASON_EVENTBRIDGE = "eventbridge_undelivered"  # an EventBridge target DLQ message (ERROR_CODE attribute)
_EVENT_NAME = re.compile(r"[A-Za-z0-9]{1,64}")


# -- one DLQ message ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DlqMessage:
    """A received DLQ message and what can be said about it without trusting its body."""

    message_id: str
    receipt_handle: str = field(repr=False)
    body: str = field(repr=False)
    message_attributes: dict[str, Any] = field(repr=False)
    sent_at: datetime | None
    dlq_receive_count: int
    reason: str
    detail: str
    source_receive_count: int | None
    rejected_at: str | None
    replay_id: str | None
    event_name: str | None
    secret_arn: str | None
    secret_name: str | None
    rotation_id: str | None

    @property
    def receive_count(self) -> int:
        """Receives in the source queue when the consumer recorded them, else SQS's count (inspections add to it)."""
        return self.source_receive_count if self.source_receive_count is not None else self.dlq_receive_count

    def age_s(self, now: datetime) -> float | None:
        return max(0.0, (now - self.sent_at).total_seconds()) if self.sent_at else None

    def summary(self, now: datetime) -> dict[str, Any]:
        """Names, ids, reason and counts: what inspect shows. Never the body."""
        return {
            "message_id": self.message_id,
            "event_name": self.event_name,
            "secret_name": self.secret_name,
            "secret_arn": self.secret_arn,
            "rotation_id": self.rotation_id,
            "reason": self.reason,
            "detail": self.detail,
            "receive_count": self.receive_count,
            "dlq_receive_count": self.dlq_receive_count,
            "sent_at": utc_iso(self.sent_at) if self.sent_at else None,
            "rejected_at": self.rejected_at,
            "age_s": self.age_s(now),
            "replay_id": self.replay_id,
        }


def _attribute(attributes: dict[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    text = value.get("StringValue") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


def read_message(raw: dict[str, Any]) -> DlqMessage:
    """A DlqMessage from a ReceiveMessage entry."""
    attributes: dict[str, Any] = raw.get("MessageAttributes", {})
    system = raw.get("Attributes", {})
    sent_ms = system.get("SentTimestamp")
    reason = _attribute(attributes, "rotaudit.reject_reason")
    detail = _attribute(attributes, "rotaudit.reject_detail") or ""
    if reason is None:
        error_code = _attribute(attributes, "ERROR_CODE")
        reason = REASON_EVENTBRIDGE if error_code is not None else REASON_MAX_RECEIVES
        detail = error_code or ""
    source_count = _attribute(attributes, "rotaudit.receive_count")
    body = str(raw.get("Body", ""))
    event_name, secret_arn, secret_name, rotation_id = identify(body)
    return DlqMessage(
        message_id=str(raw["MessageId"]),
        receipt_handle=str(raw["ReceiptHandle"]),
        body=body,
        message_attributes=attributes,
        sent_at=datetime.fromtimestamp(int(sent_ms) / 1000, UTC) if sent_ms else None,
        dlq_receive_count=int(system.get("ApproximateReceiveCount", 1)),
        reason=reason,
        detail=detail,
        source_receive_count=int(source_count) if source_count and source_count.isdigit() else None,
        rejected_at=_attribute(attributes, "rotaudit.rejected_at"),
        replay_id=_attribute(attributes, "rotaudit.replay_id"),
        event_name=event_name,
        secret_arn=secret_arn,
        secret_name=secret_name,
        rotation_id=rotation_id,
    )


def identify(body: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(event name, secret ARN, secret name, rotation id) of a body, as far as it can be told; None where not."""
    parsed = parse_message(body)
    if isinstance(parsed, RotationEvent):
        return parsed.event_name, parsed.secret_arn, parsed.secret_name, parsed.rotation_id
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return None, None, None, None
    detail = envelope.get("detail") if isinstance(envelope, dict) else None
    if not isinstance(detail, dict):
        return None, None, None, None
    name = detail.get("eventName")
    event_name = name if isinstance(name, str) and _EVENT_NAME.fullmatch(name) else None
    resources = envelope.get("resources")
    places: list[object] = [
        _dig(detail, "additionalEventData", "SecretId"),
        _dig(detail, "responseElements", "arn"),
        _dig(detail, "requestParameters", "secretId"),
        *(resources if isinstance(resources, list) else []),
    ]
    for candidate in places:
        if isinstance(candidate, str) and (found := parse_secret_arn(candidate)):
            return event_name, candidate, found[2], None
    return event_name, None, None, None


def _dig(value: object, *path: str) -> object:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# -- walking a queue ----------------------------------------------------------------------------------------


class DlqReader:
    """Receives each message of a queue once, holding it invisible; `release_rest` shows the undeleted again."""

    def __init__(self, aws: Aws, url: str, *, hold_s: int = DEFAULT_HOLD_S, wait_s: int = 1) -> None:
        self.aws = aws
        self.url = url
        self.hold_s = hold_s
        self.wait_s = wait_s
        self.seen: dict[str, DlqMessage] = {}  # message id -> its latest receipt
        self.deleted: set[str] = set()
        self.log = get_logger("dlq")

    async def receive(self, count: int = BATCH) -> tuple[list[DlqMessage], list[DlqMessage]]:
        """(messages new to this walk, messages seen before whose hold ran out)."""
        response = await self.aws.call(
            "sqs",
            "receive_message",
            QueueUrl=self.url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.wait_s,
            VisibilityTimeout=self.hold_s,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        new: list[DlqMessage] = []
        again: list[DlqMessage] = []
        for raw in response.get("Messages", []):
            message = read_message(raw)
            (again if message.message_id in self.seen else new).append(message)
            self.seen[message.message_id] = message
        return new, again

    async def batches(self, limit: int | None = None) -> AsyncIterator[list[DlqMessage]]:
        """New messages, a batch at a time, until the queue has none left that this walk has not seen."""
        taken = 0
        while limit is None or taken < limit:
            new, _ = await self.receive()
            if not new:
                return
            batch = new if limit is None else new[: limit - taken]
            taken += len(batch)
            yield batch

    async def delete(self, messages: Sequence[DlqMessage]) -> set[str]:
        """Delete by latest receipt; the ids that are gone."""
        gone: set[str] = set()
        for start in range(0, len(messages), BATCH):
            chunk = [self.seen[m.message_id] for m in messages[start : start + BATCH]]
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
            response = await self.aws.call("sqs", "delete_message_batch", QueueUrl=self.url, Entries=entries)
            failed = {str(entry["Id"]) for entry in response.get("Failed", [])}
            gone.update(m.message_id for i, m in enumerate(chunk) if str(i) not in failed)
        self.deleted.update(gone)
        return gone

    async def release_rest(self) -> None:
        """Make every message this walk holds and did not delete visible again at once."""
        rest = [m for key, m in self.seen.items() if key not in self.deleted]
        failed = 0
        for start in range(0, len(rest), BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(rest[start : start + BATCH])
            ]
            try:
                response = await self.aws.call(
                    "sqs", "change_message_visibility_batch", QueueUrl=self.url, Entries=entries
                )
                failed += len(response.get("Failed", []))
            except AwsError:
                failed += len(entries)
        if failed:
            self.log.warning("dlq.release_failed", messages=failed, visible_again_within_s=self.hold_s)


@contextlib.asynccontextmanager
async def walk(aws: Aws, url: str, *, hold_s: int = DEFAULT_HOLD_S, wait_s: int = 1) -> AsyncIterator[DlqReader]:
    """A reader whose undeleted messages are visible again when the block ends, however it ends."""
    reader = DlqReader(aws, url, hold_s=hold_s, wait_s=wait_s)
    try:
        yield reader
    finally:
        await reader.release_rest()


async def read_all(aws: Aws, url: str, *, limit: int | None = None, hold_s: int = DEFAULT_HOLD_S) -> list[DlqMessage]:
    """Up to `limit` messages, oldest first, every one left in place and visible again."""
    found: list[DlqMessage] = []
    async with walk(aws, url, hold_s=hold_s) as reader:
        async for batch in reader.batches(limit):
            found.extend(batch)
    epoch = datetime.fromtimestamp(0, UTC)
    return sorted(found, key=lambda m: (m.sent_at or epoch, m.message_id))
