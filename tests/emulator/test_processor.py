"""Processor verdicts when AWS fails: transient errors leave messages for redelivery, bad input is rejected."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from daemon.audit import AuditStore, Outcome, PendingWrite
from daemon.aws import Aws
from daemon.emit import build_event
from daemon.errors import PermanentAwsError
from daemon.metrics import Metrics
from daemon.processor import Message, Processor, Verdict
from tests.support import REGION, free_port

ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:proc/db-a1b2c3"


def _message(body: str) -> Message:
    return Message(message_id="m-1", body=body, receipt_handle="r-1")


async def test_unreachable_dynamodb_leaves_valid_messages_for_redelivery() -> None:
    """With DynamoDB unreachable, retries are bounded and the message's verdict is RETRY, not DONE or REJECT."""
    metrics = Metrics()
    dead_endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    async with Aws(REGION, endpoint_url=dead_endpoint, metrics=metrics, max_attempts=3, max_retry_s=5) as aws:
        processor = Processor(AuditStore(aws, "audit"), metrics)
        good = json.dumps(build_event("RotationFailed", ARN))
        verdicts = await processor.process([_message(good), _message("not json")])
    assert [d.verdict for d in verdicts] == [Verdict.RETRY, Verdict.REJECT]
    # One valid event is written with a conditional PutItem; three attempts, then it gives up.
    put_labels = {"service": "dynamodb", "operation": "put_item", "kind": "transient"}
    assert metrics.registry.get_sample_value("rotaudit_aws_errors_total", put_labels) == 3
    failed = {"event_name": "RotationFailed", "outcome": "failed"}
    assert metrics.registry.get_sample_value("rotaudit_events_processed_total", failed) == 1


class _RefusingStore(AuditStore):
    """A store that refuses RotationFailed items the way DynamoDB refuses an item: a permanent error that fails
    the whole transaction. Every field AWS could refuse is already refused by the parser, and the emulator does
    not check index key types, so this stand-in is the only way to reach the refusal."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    async def record_many(self, writes: Sequence[PendingWrite]) -> list[Outcome]:
        if any(write.event.event_name == "RotationFailed" for write in writes):
            raise PermanentAwsError("dynamodb", "transact_write_items", "ValidationException", "item refused")
        self.recorded += [write.event.event_name for write in writes]
        return [Outcome.RECORDED] * len(writes)


async def test_an_item_aws_refuses_does_not_hold_back_its_batch() -> None:
    """An item DynamoDB refuses fails alone (retried, then dead-lettered by SQS); the rest of its batch is recorded."""
    store = _RefusingStore()
    processor = Processor(store, Metrics())
    names = ["RotationStarted", "RotationFailed", "RotationSucceeded"]
    verdicts = await processor.process([_message(json.dumps(build_event(name, ARN))) for name in names])
    assert [d.verdict for d in verdicts] == [Verdict.DONE, Verdict.RETRY, Verdict.DONE]
    assert [d.outcome for d in verdicts] == ["recorded", "write_failed", "recorded"]
    assert store.recorded == ["RotationStarted", "RotationSucceeded"]


REFUSED = "proc/refused"  # the secret whose items the stand-in below makes DynamoDB refuse


class _ValidatingAws(Aws):
    """The emulator, except that DynamoDB refuses items of the REFUSED secret as AWS refuses an invalid item: in a
    transaction, a `TransactionCanceledException` whose reason for that item is `ValidationError` (the others
    `None`); alone, a `ValidationException`. moto only ever gives `ConditionalCheckFailed` (AWS-FACTS §5)."""

    transactions = 0

    async def call_once(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        if operation == "transact_write_items":
            self.transactions += 1
            items = [action["Put"]["Item"] for action in params["TransactItems"]]
            if any(item.get("secret_name", {}).get("S") == REFUSED for item in items):
                codes = ["ValidationError" if i.get("secret_name", {}).get("S") == REFUSED else "None" for i in items]
                error = PermanentAwsError(service, operation, "TransactionCanceledException", "cancelled")
                error.details = {"CancellationReasons": [{"Code": code} for code in codes]}
                raise error
        if operation == "put_item" and params["Item"].get("secret_name", {}).get("S") == REFUSED:
            raise PermanentAwsError(service, operation, "ValidationException", "item refused")
        return await super().call_once(service, operation, **params)


async def test_a_validation_error_in_a_transaction_fails_only_its_item(
    endpoint: str, queue_and_table: dict[str, str]
) -> None:
    """A ValidationError cancellation reason is permanent for its item: the rest of the batch is recorded at once."""
    refused = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{REFUSED}-a1b2c3"
    bodies = [build_event("RotationStarted", ARN), build_event("RotationFailed", refused)]
    bodies.append(build_event("RotationSucceeded", ARN))
    async with _ValidatingAws(REGION, endpoint_url=endpoint) as aws:
        processor = Processor(AuditStore(aws, queue_and_table["table_name"]), Metrics())
        verdicts = await processor.process([_message(json.dumps(body)) for body in bodies])
    assert [d.verdict for d in verdicts] == [Verdict.DONE, Verdict.RETRY, Verdict.DONE]
    assert [d.outcome for d in verdicts] == ["recorded", "write_failed", "recorded"]
    assert aws.transactions == 1  # not retried as if it were a conflict


async def test_an_archive_replay_of_a_label_event_is_a_duplicate(
    endpoint: str, queue_and_table: dict[str, str]
) -> None:
    """A Secret Label Updated event replayed from an archive (new envelope id, replay-name) writes no second item."""
    original = build_event("SecretLabelUpdated", ARN)
    replayed = {**original, "id": str(uuid.uuid4()), "replay-name": "rotaudit-archive-replay"}
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        processor = Processor(AuditStore(aws, queue_and_table["table_name"]), Metrics())
        first = await processor.process([_message(json.dumps(original))])
        processor = Processor(AuditStore(aws, queue_and_table["table_name"]), Metrics())  # no in-memory shortcut
        second = await processor.process([_message(json.dumps(replayed))])
    assert [d.outcome for d in first + second] == ["recorded", "duplicate"]
