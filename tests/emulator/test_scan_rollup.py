"""The scanner's daily rollups: each run's verdict lands in the secret's day item, once however often it is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry

from daemon.aws import Aws
from daemon.config_values import ScanTarget
from daemon.scan.metrics import ScanMetrics
from daemon.scan.rollup import RollupWriter
from daemon.scan.scanner import Scanner
from daemon.table import PERIOD_ATTRIBUTE, period_bucket, utc_iso
from tests.support import REGION
from tests.support.scan import backdate, client, create_scan_table, create_secret, isolated_region, table_items


async def test_a_run_records_each_secret_in_its_day_rollup(endpoint: str) -> None:
    """After a run, each managed secret's rollup for the day holds the run's status, on the evidence index."""
    table, region, uid = create_scan_table(endpoint), isolated_region(), uuid.uuid4().hex[:6]
    sm = client("secretsmanager", endpoint, region)
    fresh = create_secret(sm, f"r{uid}-fresh", {"Managed": "true"})
    stale = create_secret(sm, f"r{uid}-stale", {"Managed": "true"})
    backdate(f"r{uid}-stale", 40, region)
    now = datetime.now(UTC)
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        scanner = Scanner(
            aws, table, ScanMetrics(CollectorRegistry()), targets=(ScanTarget(regions=(region,)),), now=lambda: now
        )
        result = await scanner.run_once()
    rollups = {item["secret_arn"]: item for item in table_items(endpoint, table, "scan_rollup")}
    assert set(rollups) == {fresh, stale}
    for arn, status in ((fresh, "ok"), (stale, "needs_rotation")):
        item = rollups[arn]
        assert item["sk"] == now.date().isoformat()
        assert item[PERIOD_ATTRIBUTE] == period_bucket(arn, utc_iso(now))
        assert item[f"run#{result.run_id}"].startswith(f"{status}|")
        assert item[f"run#{result.run_id}"].endswith("|30")


async def test_rewriting_a_run_leaves_one_entry(endpoint: str) -> None:
    """A run written twice (a replica taking its window over) is one entry; another run of the day is a second."""
    table = create_scan_table(endpoint)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:twice-AbCdEf"
    row = {"secret_arn": arn, "secret_name": "twice", "run_id": "20260701T100000Z", "status": "ok"}
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        for run_id, age in (("20260701T100000Z", "3.5"), ("20260701T100000Z", "3.5"), ("20260701T110000Z", "3.54")):
            async with RollupWriter(aws, table, max_age_days=30) as writer:
                await writer.add(
                    row | {"run_id": run_id, "age_days": Decimal(age)}, f"2026-07-01T{run_id[9:11]}:00:00.000Z"
                )
    (item,) = table_items(endpoint, table, "scan_rollup")
    assert sorted(k for k in item if k.startswith("run#")) == ["run#20260701T100000Z", "run#20260701T110000Z"]
    assert item["run#20260701T110000Z"] == "ok|3.54|30"
