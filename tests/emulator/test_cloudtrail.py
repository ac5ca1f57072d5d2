"""The CloudTrail prerequisite: a start-up check that says so when no trail logs, without refusing to start."""

from __future__ import annotations

import uuid

from structlog.testing import capture_logs

from daemon.aws import Aws
from daemon.metrics import Metrics
from daemon.trail import check_cloudtrail
from tests.support import boto
from tests.support.daemon_thread import DaemonThread
from tests.support.dlq import daemon_config
from tests.support.scan import client, isolated_region


def _trail(endpoint: str, region: str, *, multi_region: bool = False, logging: bool = True) -> str:
    """A trail homed in `region`, writing to a bucket of its own; started when `logging`."""
    bucket = f"trail-{uuid.uuid4().hex[:12]}"
    s3 = client("s3", endpoint, region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    trails = client("cloudtrail", endpoint, region)
    name = f"trail-{uuid.uuid4().hex[:8]}"
    arn = str(trails.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi_region)["TrailARN"])
    if logging:
        trails.start_logging(Name=arn)
    return arn


def _gauge(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("rotaudit_cloudtrail_logging")


async def test_no_trail_is_a_warning_and_a_zero_gauge(endpoint: str) -> None:
    """Without a trail in the region, the check warns and the gauge reads 0."""
    metrics = Metrics()
    async with Aws(isolated_region(), endpoint_url=endpoint, metrics=metrics) as aws:
        with capture_logs() as logs:
            assert await check_cloudtrail(aws, metrics) is False
    assert _gauge(metrics) == 0
    assert [entry["event"] for entry in logs] == ["daemon.cloudtrail_not_logging"]
    assert logs[0]["log_level"] == "warning"


async def test_a_stopped_trail_does_not_count(endpoint: str) -> None:
    """A trail that exists but does not log delivers no event: still 0."""
    region, metrics = isolated_region(), Metrics()
    _trail(endpoint, region, logging=False)
    async with Aws(region, endpoint_url=endpoint, metrics=metrics) as aws:
        assert await check_cloudtrail(aws, metrics) is False
    assert _gauge(metrics) == 0


async def test_a_logging_trail_sets_the_gauge(endpoint: str) -> None:
    """A logging trail homed in the region: the gauge reads 1 and nothing is logged as a warning."""
    region, metrics = isolated_region(), Metrics()
    _trail(endpoint, region)
    async with Aws(region, endpoint_url=endpoint, metrics=metrics) as aws:
        with capture_logs() as logs:
            assert await check_cloudtrail(aws, metrics) is True
    assert _gauge(metrics) == 1
    assert [entry["event"] for entry in logs] == ["daemon.cloudtrail_logging"]


async def test_a_multi_region_trail_from_another_region_counts(endpoint: str) -> None:
    """A multi-region trail homed elsewhere logs this region too (it shows here as a shadow trail)."""
    home, here, metrics = isolated_region(), isolated_region(), Metrics()
    arn = _trail(endpoint, home, multi_region=True)
    try:
        async with Aws(here, endpoint_url=endpoint, metrics=metrics) as aws:
            assert await check_cloudtrail(aws, metrics) is True
    finally:  # it shows in every region of the shared emulator: leave none behind
        client("cloudtrail", endpoint, home).delete_trail(Name=arn.rsplit("/", 1)[1])  # moto: by name only
    assert _gauge(metrics) == 1


def test_the_daemon_starts_without_a_trail(endpoint: str, queue_and_table: dict[str, str]) -> None:
    """No trail is not a reason to refuse to start: the daemon runs, and its gauge says 0."""
    assert boto("cloudtrail", endpoint).describe_trails(includeShadowTrails=True)["trailList"] == []
    with DaemonThread(daemon_config(endpoint, queue_and_table)) as running:
        assert running.daemon is not None
        assert running.daemon.started
        assert running.metrics.registry.get_sample_value("rotaudit_cloudtrail_logging") == 0
