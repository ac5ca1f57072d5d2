"""Start-up check of the CloudTrail prerequisite: is a trail logging this region, without which no event arrives?

Rotation outcomes reach EventBridge as CloudTrail events ("AWS Service Event via CloudTrail", "AWS API Call via
CloudTrail"), and the EventBridge user guide ties those detail-types to CloudTrail logging in the account and region
(AWS-FACTS §1). So at start-up the daemon looks for a logging trail (`DescribeTrails` with shadow trails, so a
multi-region or organization trail homed elsewhere counts; `GetTrailStatus` for each) and says what it found: a log
line and the gauge `rotaudit_cloudtrail_logging` (1, 0, or NaN when it could not tell). It never refuses to start:
the periodic scan still works, and the trail may be on its way.
"""

from __future__ import annotations

import math

from daemon.aws import Aws
from daemon.errors import AwsError
from daemon.logs import get_logger
from daemon.metrics import Metrics


async def check_cloudtrail(aws: Aws, metrics: Metrics) -> bool | None:
    """True when a trail logs this region, False when none does, None when the calls failed (all logged)."""
    log = get_logger("daemon")
    try:
        trails = (await aws.call("cloudtrail", "describe_trails", includeShadowTrails=True)).get("trailList", [])
    except AwsError as exc:
        metrics.cloudtrail_logging.set(math.nan)
        log.warning("daemon.cloudtrail_check_failed", region=aws.region, error=str(exc))
        return None
    unknown: list[str] = []
    for trail in trails:
        arn = str(trail.get("TrailARN") or trail.get("Name"))
        try:
            status = await aws.call("cloudtrail", "get_trail_status", Name=arn)
        except AwsError as exc:  # e.g. an organization trail whose status this account may not read
            unknown.append(arn)
            log.info("daemon.cloudtrail_status_unknown", trail=arn, error=exc.code)
            continue
        if status.get("IsLogging"):
            metrics.cloudtrail_logging.set(1)
            log.info("daemon.cloudtrail_logging", region=aws.region, trail=arn)
            return True
    if unknown:
        metrics.cloudtrail_logging.set(math.nan)
        log.warning("daemon.cloudtrail_check_failed", region=aws.region, trails_unknown=unknown)
        return None
    metrics.cloudtrail_logging.set(0)
    log.warning(
        "daemon.cloudtrail_not_logging",
        region=aws.region,
        trails=len(trails),
        hint="no trail logs this region: CloudTrail-delivered rotation events will not arrive; the scan still runs",
    )
    return False
