"""Queue lookups shared by the consumer, the DLQ tools and the daemon's start-up: the DLQ a queue redrives to, depth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daemon.aws import Aws, explain
from daemon.errors import AwsError, StartupError

RECEIVE_MAX = 10  # SQS's largest MaxNumberOfMessages


async def _sqs(aws: Aws, operation: str, what: str, fix: str, **params: Any) -> dict[str, Any]:
    try:
        return await aws.call("sqs", operation, **params)
    except AwsError as exc:
        raise StartupError(explain(exc, what, fix)) from None


async def resolve_dlq_url(aws: Aws, queue_url: str, dlq_url: str = "") -> str:
    """The DLQ: `dlq_url` when set, else the one the source queue's redrive policy names; both checked to answer."""
    policy = None
    if queue_url:
        fix = "check ROTAUDIT_QUEUE_URL and AWS_REGION"
        attrs = await _sqs(
            aws,
            "get_queue_attributes",
            f"source queue {queue_url}",
            fix,
            QueueUrl=queue_url,
            AttributeNames=["RedrivePolicy"],
        )
        policy = attrs.get("Attributes", {}).get("RedrivePolicy")
    if not dlq_url:
        if not policy:
            raise StartupError(
                "no DLQ configured: set ROTAUDIT_DLQ_URL, or give the queue in ROTAUDIT_QUEUE_URL "
                f"({queue_url or 'not set'}) a redrive policy (rotaudit provision does)"
            )
        target_arn = str(json.loads(policy)["deadLetterTargetArn"])
        _, _, _, _, account, name = target_arn.split(":", 5)
        found = await _sqs(
            aws,
            "get_queue_url",
            f"DLQ {target_arn} (named by the redrive policy of {queue_url})",
            "fix the redrive policy or set ROTAUDIT_DLQ_URL",
            QueueName=name,
            QueueOwnerAWSAccountId=account,
        )
        dlq_url = str(found["QueueUrl"])
    fix = "check ROTAUDIT_DLQ_URL and AWS_REGION"
    await _sqs(aws, "get_queue_attributes", f"DLQ {dlq_url}", fix, QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    return dlq_url


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """SQS's approximate counts for a queue, and whether it has a redrive policy of its own."""

    visible: int
    in_flight: int
    delayed: int
    has_redrive_policy: bool

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


async def queue_depth(aws: Aws, url: str) -> QueueDepth:
    """One GetQueueAttributes."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    names += ["ApproximateNumberOfMessagesDelayed", "RedrivePolicy"]
    found = (await aws.call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=names))["Attributes"]
    visible, in_flight, delayed = (int(found.get(name, 0)) for name in names[:3])
    return QueueDepth(visible, in_flight, delayed, has_redrive_policy=bool(found.get("RedrivePolicy")))
