"""SNS notifications of rotation outcomes: one message per (secret, rotation, kind), however often it is asked for.

Each message carries the MessageAttributes `severity`, `event` (the kind) and `secret` (the secret's name), so
subscriptions can filter (`{"severity": ["critical"]}`). Bodies hold names, ids, version ids, step names and
action results: never a secret value (rotaudit never reads one).

Deduplication is a conditional write before publishing: marker pk "notify#<secret ARN>", sk "<kind>#<rotation id>",
state `sending` then `sent`. A marker left `sending` by a replica that died between the two writes is taken again
once it is older than `stale_after_s`, so a crash can at worst repeat a message, never lose one. A caller that
holds the rotation's remediation claim (`claimed=True`) takes a `sending` marker over at once: the claim's fence
says no other live replica is sending it, and the marker may be its own write whose response was lost.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from daemon.audit import put_if_absent
from daemon.aws import Aws
from daemon.errors import PermanentAwsError, TransientAwsError
from daemon.logs import get_logger
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.outcome import Kind
from daemon.remediation.state import Failure, SecretState
from daemon.table import TTL_ATTRIBUTE, to_dynamo, utc_iso
from daemon.timer import Clock

MARKER_RETENTION = timedelta(days=30)


class Delivery(StrEnum):
    """What one `send` found and did."""

    SENT = "sent"  # this call published it
    ALREADY_SENT = "already_sent"  # a marker says `sent`
    IN_FLIGHT = "in_flight"  # another live replica is sending it now (a fresh `sending` marker): ask again later
    NO_TOPIC = "no_topic"


_SUBJECT_MAX = 100


SEVERITY = {
    Kind.NEEDS_HUMAN: "critical",
    Kind.REMEDIATED: "warning",
    Kind.PLANNED: "warning",
    Kind.RECOVERED: "info",
}


@dataclass(frozen=True, slots=True)
class Notification:
    """One outcome of one rotation. `details` holds ids, names, reasons and results only."""

    kind: Kind
    secret_arn: str
    secret_name: str
    rotation_id: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def subject(self) -> str:
        text = f"rotaudit {self.kind.value}: {self.secret_name}"
        printable = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
        return printable[:_SUBJECT_MAX]

    def body(self, at: datetime) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "severity": self.severity,
                "secret_arn": self.secret_arn,
                "secret_name": self.secret_name,
                "rotation_id": self.rotation_id,
                "at": utc_iso(at),
                **self.details,
            },
            sort_keys=True,
            default=str,
        )

    def attributes(self) -> dict[str, dict[str, str]]:
        return {
            "severity": {"DataType": "String", "StringValue": self.severity},
            "event": {"DataType": "String", "StringValue": self.kind.value},
            "secret": {"DataType": "String", "StringValue": self.secret_name},
        }


# Told of every notification `send` is asked for, before SNS and whether or not a topic is set (Security Hub
# findings, wired in `daemon.features`). Idempotent, and never raising: a listener's trouble is its own.
NoticeListener = Callable[[Notification], Awaitable[None]]


class Notifier:
    """Publishes notifications to one topic, each at most once (barring a crash mid-send)."""

    def __init__(
        self,
        aws: Aws,
        table: str,
        topic_arn: str,
        metrics: RemediationMetrics,
        *,
        clock: Clock,
        stale_after_s: float,
        listeners: Sequence[NoticeListener] = (),
    ) -> None:
        self.listeners = tuple(listeners)
        self.aws = aws
        self.table = table
        self.topic_arn = topic_arn
        self.metrics = metrics
        self.clock = clock
        self.stale_after = timedelta(seconds=stale_after_s)
        self.log = get_logger("notify")

    async def send(self, notification: Notification, *, claimed: bool = False) -> Delivery:
        """Publish unless already sent (or being sent by a live replica); what this call found and did.

        `claimed`: the caller holds the rotation's claim, so only a `sent` marker means "already done".
        """
        ids = {
            "kind": notification.kind.value,
            "secret_name": notification.secret_name,
            "rotation_id": notification.rotation_id,
        }
        for listener in self.listeners:
            await listener(notification)
        if not self.topic_arn:
            self.log.warning("notify.skipped", reason="no_topic", **ids)
            return Delivery.NO_TOPIC
        now = self.clock()
        key = {"pk": f"notify#{notification.secret_arn}", "sk": f"{notification.kind.value}#{notification.rotation_id}"}
        if not await self._mark_sending(key, now, claimed=claimed):
            found = await self.aws.call(
                "dynamodb", "get_item", TableName=self.table, Key=to_dynamo(key), ConsistentRead=True
            )
            state = found.get("Item", {}).get("state", {}).get("S")
            self.log.info("notify.duplicate", state=state, **ids)
            return Delivery.ALREADY_SENT if state == "sent" else Delivery.IN_FLIGHT
        try:
            published = await self.aws.call(
                "sns",
                "publish",
                TopicArn=self.topic_arn,
                Subject=notification.subject(),
                Message=notification.body(now),
                MessageAttributes=notification.attributes(),
            )
        except (TransientAwsError, PermanentAwsError):
            await self._unmark(key)
            raise
        await self.aws.call(
            "dynamodb",
            "update_item",
            TableName=self.table,
            Key=to_dynamo(key),
            UpdateExpression="SET #state = :sent, message_id = :id, sent_at = :at",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_dynamo(
                {":sent": "sent", ":id": str(published.get("MessageId", "")), ":at": utc_iso(now)}
            ),
        )
        self.metrics.notifications.labels(notification.kind.value).inc()
        self.log.info("notify.sent", severity=notification.severity, **ids)
        return Delivery.SENT

    async def _mark_sending(self, key: dict[str, str], now: datetime, *, claimed: bool) -> bool:
        item = {
            **key,
            "state": "sending",
            "claimed_at_ms": int(now.timestamp() * 1000),
            TTL_ATTRIBUTE: int((now + MARKER_RETENTION).timestamp()),
        }
        if claimed:  # the claim's holder: any `sending` marker is a dead holder's, or its own lost write
            return await put_if_absent(
                self.aws,
                self.table,
                item,
                condition="attribute_not_exists(pk) OR #state = :sending",
                names={"#state": "state"},
                values={":sending": "sending"},
            )
        return await put_if_absent(
            self.aws,
            self.table,
            item,
            condition="attribute_not_exists(pk) OR (#state = :sending AND claimed_at_ms < :stale)",
            names={"#state": "state"},
            values={":sending": "sending", ":stale": int((now - self.stale_after).timestamp() * 1000)},
        )

    async def _unmark(self, key: dict[str, str]) -> None:
        """After a failed publish: let the next attempt send at once (only while still `sending`)."""
        try:
            await self.aws.call(
                "dynamodb",
                "delete_item",
                TableName=self.table,
                Key=to_dynamo(key),
                ConditionExpression="#state = :sending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_dynamo({":sending": "sending"}),
            )
        except (TransientAwsError, PermanentAwsError) as exc:
            self.log.warning("notify.unmark_failed", error=str(exc))


def outbox_for(kind: Kind, failure: Failure, details: dict[str, Any], state: SecretState | None) -> dict[str, Any]:
    """A notification as a claim stores it until it is sent."""
    return {"kind": kind.value, "details": dict(notification_for(kind, failure, details, state).details)}


def notification_for(kind: Kind, failure: Failure, details: dict[str, Any], state: SecretState | None) -> Notification:
    """The notification of `kind` about `failure`: ids, step, details and the secret's labels; empty fields dropped."""
    shown = {"failed_step": failure.failed_step, "account": failure.account, "region": failure.region, **details}
    if state is not None:
        shown["secret_state"] = state.diagnosis()
    clean = {key: value for key, value in shown.items() if value not in (None, "", [], {})}
    return Notification(kind, failure.secret_arn, failure.secret_name, failure.rotation_id, clean)
