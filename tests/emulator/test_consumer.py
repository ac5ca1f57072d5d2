"""Consumer mechanics against the emulator, with a stand-in processor passed through the constructor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from daemon.aws import Aws
from daemon.consumer import Consumer
from daemon.metrics import Metrics
from daemon.processor import Disposition, Message, Verdict
from tests.support import REGION, boto


class SlowProcessor:
    """Takes `delay_s` per batch, then says DONE for every message."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.started = asyncio.Event()
        self.finished = 0

    async def process(self, messages: Sequence[Message]) -> list[Disposition]:
        self.started.set()
        await asyncio.sleep(self.delay_s)
        self.finished += len(messages)
        return [Disposition(Verdict.DONE) for _ in messages]


def _depth(endpoint: str, url: str) -> int:
    attrs = boto("sqs", endpoint).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def _consumer(
    aws: Aws, queue_and_table: dict[str, str], processor: SlowProcessor, metrics: Metrics, vt: int
) -> Consumer:
    consumer = Consumer(
        aws,
        processor,  # type: ignore[arg-type]
        metrics,
        queue_url=queue_and_table["queue_url"],
        dlq_url=queue_and_table["dlq_url"],
        pollers=1,
        visibility_timeout_s=vt,
        wait_time_s=1,
    )
    await consumer.check_ready()
    return consumer


async def test_visibility_is_extended_while_work_runs_long(endpoint: str, queue_and_table: dict[str, str]) -> None:
    """A batch that outlives its visibility timeout stays invisible to other consumers, then is deleted."""
    boto("sqs", endpoint).send_message(QueueUrl=queue_and_table["queue_url"], MessageBody="{}")
    metrics, processor, stop = Metrics(), SlowProcessor(delay_s=4.0), asyncio.Event()
    async with Aws(REGION, endpoint_url=endpoint, metrics=metrics) as aws:
        consumer = await _consumer(aws, queue_and_table, processor, metrics, vt=2)
        running = asyncio.create_task(consumer.run(stop, drain_timeout_s=10))
        await asyncio.wait_for(processor.started.wait(), 10)
        await asyncio.sleep(3.0)  # past the 2 s visibility timeout the message was received with
        other = await asyncio.to_thread(
            boto("sqs", endpoint).receive_message, QueueUrl=queue_and_table["queue_url"], WaitTimeSeconds=0
        )
        assert other.get("Messages", []) == []
        stop.set()
        await asyncio.wait_for(running, 15)
    assert processor.finished == 1
    assert metrics.registry.get_sample_value("rotaudit_visibility_extensions_total") >= 1
    assert _depth(endpoint, queue_and_table["queue_url"]) == 0


async def test_stop_lets_in_flight_work_finish(endpoint: str, queue_and_table: dict[str, str]) -> None:
    """Stopping mid-batch waits for the batch, deletes its messages, and returns."""
    boto("sqs", endpoint).send_message(QueueUrl=queue_and_table["queue_url"], MessageBody="{}")
    metrics, processor, stop = Metrics(), SlowProcessor(delay_s=1.0), asyncio.Event()
    async with Aws(REGION, endpoint_url=endpoint, metrics=metrics) as aws:
        consumer = await _consumer(aws, queue_and_table, processor, metrics, vt=30)
        running = asyncio.create_task(consumer.run(stop, drain_timeout_s=10))
        await asyncio.wait_for(processor.started.wait(), 10)
        stop.set()
        await asyncio.wait_for(running, 15)
    assert processor.finished == 1
    assert _depth(endpoint, queue_and_table["queue_url"]) == 0


async def test_drain_timeout_cancels_and_leaves_messages_for_redelivery(
    endpoint: str, queue_and_table: dict[str, str]
) -> None:
    """Work that outlasts the drain budget is cancelled; its message stays on the queue, not lost."""
    boto("sqs", endpoint).send_message(QueueUrl=queue_and_table["queue_url"], MessageBody="{}")
    metrics, processor, stop = Metrics(), SlowProcessor(delay_s=60.0), asyncio.Event()
    async with Aws(REGION, endpoint_url=endpoint, metrics=metrics) as aws:
        consumer = await _consumer(aws, queue_and_table, processor, metrics, vt=30)
        running = asyncio.create_task(consumer.run(stop, drain_timeout_s=0.5))
        await asyncio.wait_for(processor.started.wait(), 10)
        began = time.monotonic()
        stop.set()
        await asyncio.wait_for(running, 15)
        assert time.monotonic() - began < 5
    assert processor.finished == 0
    assert metrics.registry.get_sample_value("rotaudit_messages_released_total", {"reason": "drain_timeout"}) == 1
    assert _depth(endpoint, queue_and_table["queue_url"]) == 1
