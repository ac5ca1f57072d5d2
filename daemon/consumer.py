"""SQS mechanics only: long-poll, bounded in-flight batches, visibility upkeep, DLQ hand-off, deletes, drain.

Each poller receives up to 10 messages per long poll and hands the batch to the processor in its own task,
so receiving overlaps writing and deleting. At most `max_in_flight` messages are held at once: a poller
waits for room before it asks SQS for more (backpressure). A message is deleted only after its verdict says
its effects are durable; a rejected message is copied to the DLQ first, then deleted. The DLQ's URL comes
resolved (`daemon.queues.resolve_dlq_url`, at start-up): the consumer looks nothing up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from daemon.aws import Aws
from daemon.errors import AwsError, PermanentAwsError, TransientAwsError
from daemon.logs import get_logger
from daemon.metrics import Metrics
from daemon.processor import Disposition, Message, Processor, Verdict
from daemon.table import utc_iso
from daemon.timer import nap, utc_now

BATCH = 10
# SendMessageBatch allows 1 MiB in all; stay under the older 256 KiB so either limit is safe.
_DLQ_BATCH_BYTES = 250_000
REJECT_ATTRIBUTES = ("rotaudit.reject_reason", "rotaudit.reject_detail")


class Consumer:
    """Runs the pollers until `stop` is set, then drains."""

    def __init__(
        self,
        aws: Aws,
        processor: Processor,
        metrics: Metrics,
        *,
        queue_url: str,
        dlq_url: str,
        pollers: int = 4,
        max_in_flight: int = 100,
        visibility_timeout_s: int = 60,
        wait_time_s: int = 20,
    ) -> None:
        self.aws = aws
        self.processor = processor
        self.metrics = metrics
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.pollers = pollers
        self.visibility_timeout_s = visibility_timeout_s
        self.wait_time_s = wait_time_s
        self._room = asyncio.Semaphore(max(1, max_in_flight // BATCH))
        self._batches: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.heartbeats: dict[int, float] = {}
        self.log = get_logger("consumer")

    # -- run and drain --------------------------------------------------------------------------------

    @property
    def in_flight_batches(self) -> int:
        return len(self._batches)

    async def run(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Poll until `stop`; then stop receiving and let in-flight batches finish within the budget."""
        async with asyncio.TaskGroup() as group:
            for number in range(self.pollers):
                group.create_task(self._poll(number, stop), name=f"poller-{number}")
        self._stopping.set()
        if self._batches:
            self.log.info("consumer.draining", batches=len(self._batches))
            _, pending = await asyncio.wait(self._batches, timeout=drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                self.log.warning("consumer.drain_timed_out", batches=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        self.log.info("consumer.drained")

    async def _poll(self, number: int, stop: asyncio.Event) -> None:
        failures = 0
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self.heartbeats[number] = time.monotonic()
                await self._acquire_room(stop_wait)
                if stop.is_set():
                    break
                receive = asyncio.ensure_future(self._receive())
                done, _ = await asyncio.wait({receive, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    # Stopping mid-poll: whatever SQS hands this request comes back after its visibility timeout.
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, AwsError):
                        await receive
                    self._room.release()
                    break
                try:
                    messages = receive.result()
                except TransientAwsError as exc:
                    self._room.release()
                    failures += 1
                    self.log.warning("consumer.receive_failed", error=str(exc), failures=failures)
                    await nap(asyncio.sleep, min(20.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0), stop)
                    continue
                except PermanentAwsError:
                    self._room.release()
                    raise
                failures = 0
                if not messages:
                    self._room.release()
                    continue
                task = asyncio.create_task(self._settle(messages))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
        finally:
            stop_wait.cancel()
            self.heartbeats.pop(number, None)

    async def _acquire_room(self, stop_wait: asyncio.Future[Any]) -> None:
        acquire = asyncio.ensure_future(self._room.acquire())
        done, _ = await asyncio.wait({acquire, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if acquire not in done:
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                if await acquire:  # acquired just as we cancelled
                    self._room.release()

    async def _receive(self) -> list[Message]:
        response = await self.aws.call(
            "sqs",
            "receive_message",
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=self.wait_time_s,
            VisibilityTimeout=self.visibility_timeout_s,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        raw = response.get("Messages", [])
        self.metrics.messages_received.inc(len(raw))
        return [_message(item) for item in raw]

    # -- one batch ------------------------------------------------------------------------------------

    async def _settle(self, messages: list[Message]) -> None:
        self.metrics.events_in_flight.inc(len(messages))
        keeper = asyncio.create_task(self._keep_invisible(messages))
        try:
            if self._stopping.is_set():
                await self._hand_back(messages)
                return
            dispositions = await self.processor.process(messages)
            done: list[Message] = []
            rejected: list[tuple[Message, Disposition]] = []
            for message, disposition in zip(messages, dispositions, strict=True):
                if disposition.verdict is Verdict.DONE:
                    done.append(message)
                elif disposition.verdict is Verdict.REJECT:
                    rejected.append((message, disposition))
                else:
                    self.metrics.messages_released.labels("retry").inc()
            if rejected:
                done.extend(await self._dead_letter(rejected))
            await self._delete(done)
            finished = time.monotonic()
            for message in done:
                self.metrics.event_processing_seconds.observe(finished - message.received_at_s)
            for message, disposition in zip(messages, dispositions, strict=True):
                self._log_outcome(message, disposition)
        except asyncio.CancelledError:
            self.metrics.messages_released.labels("drain_timeout").inc(len(messages))
            raise
        except AwsError as exc:
            # Left for redelivery; the audit table's idempotency absorbs the repeat.
            self.log.warning("consumer.batch_failed", error=str(exc), messages=len(messages))
            self.metrics.messages_released.labels("aws_error").inc(len(messages))
        finally:
            keeper.cancel()
            self.metrics.events_in_flight.dec(len(messages))
            self._room.release()

    def _log_outcome(self, message: Message, disposition: Disposition) -> None:
        if disposition.event is not None:
            event = disposition.event
            self.log.info(
                "event.processed",
                message_id=message.message_id,
                event_name=event.event_name,
                secret_name=event.secret_name,
                rotation_id=event.rotation_id,
                event_id=event.event_id,
                outcome=disposition.outcome,
                verdict=disposition.verdict.value,
                receive_count=message.receive_count,
            )
        elif disposition.rejection is not None:
            self.log.warning(
                "message.rejected",
                message_id=message.message_id,
                reason=disposition.rejection.reason.value,
                detail=disposition.rejection.detail,
                receive_count=message.receive_count,
            )

    async def _keep_invisible(self, messages: Sequence[Message]) -> None:
        """Extend visibility while the batch's work runs long, so no other consumer receives it meanwhile."""
        while True:
            await asyncio.sleep(self.visibility_timeout_s / 2)
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m.receipt_handle,
                    "VisibilityTimeout": self.visibility_timeout_s,
                }
                for i, m in enumerate(messages)
            ]
            with contextlib.suppress(AwsError):
                await self.aws.call("sqs", "change_message_visibility_batch", QueueUrl=self.queue_url, Entries=entries)
                self.metrics.visibility_extensions.inc(len(entries))

    async def _hand_back(self, messages: Sequence[Message]) -> None:
        """Unstarted work at shutdown: visible again at once for another consumer."""
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for i, m in enumerate(messages)
        ]
        with contextlib.suppress(AwsError):
            await self.aws.call("sqs", "change_message_visibility_batch", QueueUrl=self.queue_url, Entries=entries)
        self.metrics.messages_released.labels("shutdown").inc(len(messages))

    async def _dead_letter(self, rejected: Sequence[tuple[Message, Disposition]]) -> list[Message]:
        """Copy rejected messages to the DLQ with why; return those now safe to delete."""
        sent: list[Message] = []
        for group in _by_size(rejected):
            entries = [_dlq_entry(str(i), message, disposition) for i, (message, disposition) in enumerate(group)]
            response = await self.aws.call("sqs", "send_message_batch", QueueUrl=self.dlq_url, Entries=entries)
            failed = {entry["Id"] for entry in response.get("Failed", [])}
            for i, (message, disposition) in enumerate(group):
                if str(i) in failed:
                    self.metrics.messages_released.labels("dlq_send_failed").inc()
                    continue
                assert disposition.rejection is not None
                self.metrics.messages_rejected.labels(disposition.rejection.reason.value).inc()
                sent.append(message)
        return sent

    async def _delete(self, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
            response = await self.aws.call("sqs", "delete_message_batch", QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed", [])
            if failed:
                # The message comes back after its visibility timeout and is recorded as a duplicate.
                self.metrics.delete_failures.inc(len(failed))
                self.log.warning(
                    "consumer.delete_failed",
                    codes=sorted({str(f.get("Code")) for f in failed}),
                    count=len(failed),
                )
            self.metrics.messages_deleted.inc(len(entries) - len(failed))


def _message(raw: dict[str, Any]) -> Message:
    attributes = raw.get("Attributes", {})
    sent_ms = attributes.get("SentTimestamp")
    return Message(
        message_id=raw["MessageId"],
        body=raw.get("Body", ""),
        receipt_handle=raw["ReceiptHandle"],
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        sent_at=datetime.fromtimestamp(int(sent_ms) / 1000, UTC) if sent_ms else None,
        attributes=raw.get("MessageAttributes", {}),
    )


def _dlq_entry(entry_id: str, message: Message, disposition: Disposition) -> dict[str, Any]:
    assert disposition.rejection is not None
    attributes = {k: v for k, v in message.attributes.items() if not k.startswith("rotaudit.")}
    ours = {
        "rotaudit.reject_reason": disposition.rejection.reason.value,
        "rotaudit.reject_detail": disposition.rejection.detail[:250] or "-",
        "rotaudit.source_message_id": message.message_id,
        "rotaudit.rejected_at": utc_iso(utc_now()),
    }
    replay_id = message.attributes.get("rotaudit.replay_id", {}).get("StringValue")
    if replay_id:  # a replayed message rejected again: `dlq replay` must know it sent this one already
        ours["rotaudit.replay_id"] = replay_id
    for key, value in ours.items():
        attributes[key] = {"DataType": "String", "StringValue": value}
    attributes["rotaudit.receive_count"] = {"DataType": "Number", "StringValue": str(message.receive_count)}
    # SQS allows 10 attributes: ours win over the original's.
    kept = dict(list(attributes.items())[-10:]) if len(attributes) > 10 else attributes
    return {"Id": entry_id, "MessageBody": message.body, "MessageAttributes": kept}


def _by_size(
    items: Sequence[tuple[Message, Disposition]],
) -> list[list[tuple[Message, Disposition]]]:
    groups: list[list[tuple[Message, Disposition]]] = []
    size = 0
    for item in items:
        body_size = len(item[0].body.encode("utf-8", "surrogatepass")) + 1024
        if not groups or len(groups[-1]) == BATCH or size + body_size > _DLQ_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += body_size
    return groups
