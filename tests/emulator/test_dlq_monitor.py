"""The DLQ gauges: depth and oldest-message age from the emulator, without hiding or moving anything."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from daemon.aws import Aws
from daemon.dlq.monitor import DlqMonitor
from tests.support import REGION, boto
from tests.support.dlq import event_body, queue_depth, seed


async def test_monitor_reports_depth_and_oldest_age_without_hiding_anything(
    endpoint: str, queue_and_table: dict[str, str]
) -> None:
    """Depth counts every message; the age comes from a peek that leaves all messages visible; empty means 0."""
    seed(endpoint, queue_and_table["dlq_url"], [(event_body("RotationFailed", f"mon/{i}"), {}) for i in range(3)])
    registry = CollectorRegistry()
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        later = datetime.now(UTC) + timedelta(hours=1)
        monitor = DlqMonitor(aws, queue_and_table["dlq_url"], registry, now=lambda: later)
        await monitor.poll_once()
        assert registry.get_sample_value("rotaudit_dlq_messages") == 3
        age = registry.get_sample_value("rotaudit_dlq_oldest_message_age_seconds")
        assert age is not None
        assert 3600 <= age < 3700
        assert await asyncio.to_thread(queue_depth, endpoint, queue_and_table["dlq_url"]) == (3, 0)

        await asyncio.to_thread(boto("sqs", endpoint).purge_queue, QueueUrl=queue_and_table["dlq_url"])
        await monitor.poll_once()
        assert registry.get_sample_value("rotaudit_dlq_messages") == 0
        assert registry.get_sample_value("rotaudit_dlq_oldest_message_age_seconds") == 0


async def test_monitor_never_peeks_a_queue_with_its_own_redrive_policy(
    endpoint: str, queue_and_table: dict[str, str]
) -> None:
    """Where a peek would count towards moving messages on, the age is NaN and receive counts stay as they were."""
    seed(endpoint, queue_and_table["queue_url"], [(event_body("RotationFailed"), {})])
    registry = CollectorRegistry()
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        await DlqMonitor(aws, queue_and_table["queue_url"], registry).poll_once()
    age = registry.get_sample_value("rotaudit_dlq_oldest_message_age_seconds")
    assert age is not None
    assert math.isnan(age)
    got = boto("sqs", endpoint).receive_message(
        QueueUrl=queue_and_table["queue_url"],
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
        WaitTimeSeconds=1,
    )
    assert got["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "1"


async def test_monitor_job_stops_when_asked(endpoint: str, queue_and_table: dict[str, str]) -> None:
    """The job polls at once, then waits on the stop event rather than its hour-long interval."""
    registry = CollectorRegistry()
    stop = asyncio.Event()
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        job = asyncio.create_task(DlqMonitor(aws, queue_and_table["dlq_url"], registry, poll_s=3600).run(stop))
        while registry.get_sample_value("rotaudit_dlq_messages") is None:  # noqa: ASYNC110 - a gauge has no event
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(job, timeout=5)
