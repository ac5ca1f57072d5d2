"""The DLQ monitor: depth and oldest-message age as gauges, for the daemon's job and its alerts.

Depth from one GetQueueAttributes per poll. SQS has the oldest message's age only as the CloudWatch
metric ApproximateAgeOfOldestMessage, so while the DLQ has visible messages the monitor peeks: one ReceiveMessage
of up to 10 with VisibilityTimeout 0 (nothing is hidden: operators and replays are not disturbed), reading
SentTimestamp. Trade-offs: a peek bumps the receive count of what it sees (so there is no peek when the DLQ has a
redrive policy of its own, where that would move messages on: the age is NaN), and it sees a sample, so on a DLQ
of more than 10 messages the gauge is a lower bound. For a message SQS moved after maxReceiveCount, SentTimestamp
is its first enqueue in the source queue, which is also where its retention counts from.
"""

from __future__ import annotations

import asyncio

from daemon.aws import Aws
from daemon.dlq.metrics import DlqMetrics
from daemon.errors import AwsError
from daemon.logs import get_logger
from daemon.queues import RECEIVE_MAX, queue_depth
from daemon.timer import Clock, every, utc_now


class DlqMonitor:
    """A daemon job: DLQ depth and oldest-message age as gauges, polled every `poll_s` (see the module doc)."""

    def __init__(
        self,
        aws: Aws,
        dlq_url: str,
        metrics: DlqMetrics,
        *,
        poll_s: float = 60,
        now: Clock = utc_now,
    ) -> None:
        self.aws, self.dlq_url, self.poll_s, self._now = aws, dlq_url, poll_s, now
        self.metrics = metrics
        self.log = get_logger("dlq")

    async def poll_once(self) -> None:
        depth = await queue_depth(self.aws, self.dlq_url)
        self.metrics.messages.set(depth.total)
        if depth.total == 0:
            self.metrics.oldest_age.set(0)
        elif depth.has_redrive_policy:
            self.metrics.oldest_age.set(float("nan"))  # a peek would count towards moving the messages on
        elif depth.visible:
            peek = await self.aws.call(
                "sqs",
                "receive_message",
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=RECEIVE_MAX,
                VisibilityTimeout=0,
                WaitTimeSeconds=1,  # a long poll asks every SQS server, and returns at once when there are messages
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            sent_ms = [int(m["Attributes"]["SentTimestamp"]) for m in peek.get("Messages", [])]
            if sent_ms:  # none: all went in flight meanwhile; keep the last known age
                self.metrics.oldest_age.set(max(0.0, self._now().timestamp() - min(sent_ms) / 1000))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `poll_s` until `stop`; a failed poll keeps the last values and is logged."""
        await every(self.poll_s, stop, self.poll_once, on_error=self._poll_failed)

    def _poll_failed(self, exc: AwsError) -> None:
        self.log.warning("dlq.poll_failed", error=str(exc))
