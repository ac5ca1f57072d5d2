"""Processor verdicts when AWS fails: transient errors leave messages for redelivery, bad input is rejected."""

from __future__ import annotations

import json

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.emit import build_event
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
