"""The evidence benchmark: a quarter's `rotaudit evidence` over N secrets with M days of hourly scans, at two sizes.

The history is written straight into a fresh table on the emulator (`BatchWriteItem`, no scanner run): per secret
and day one rollup item holding 24 hourly runs (what the scanner writes), a rotation every 30 days (started and
succeeded), a failure with its remediation for every fifth secret, and, for the first secrets, the hourly scan
rows themselves (which the report must not read). Then the report for the last 90 days runs in its own process
(`python -m bench.evidence --report`: the CLI's own reader, aggregation and streamed CSV, to /dev/null), which
prints the items and queries it read and its peak RSS. Two fleet sizes show what grows with the fleet and what
does not; the README extrapolates to 10,000 secrets and a year.

    .venv/bin/python -m bench.evidence [--secrets 50,200] [--days 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from bench.contenders import ROOT, clean_env
from bench.harness import BenchError, EmulatorProcess
from daemon.table import (
    PERIOD_ATTRIBUTE,
    ROLLUP_PREFIX,
    RUN_ATTRIBUTE_PREFIX,
    period_bucket,
    run_entry,
    secret_pk,
    table_definition,
    to_dynamo,
    utc_iso,
)

OUT_DIR = Path(__file__).resolve().parent / "out"
REPORT_DAYS = 90
SCAN_ROW_SECRETS = 2  # secrets whose hourly scan rows are written too (they sit in the table, unread)
END = datetime(2026, 10, 1, tzinfo=UTC)


def _arn(n: int) -> str:
    return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/app{n:05d}-AbCdEf"


def history_items(n: int, days: int) -> list[dict[str, Any]]:
    """Secret n's rollups, events and (for the first few) hourly scan rows over the `days` before END."""
    arn, name = _arn(n), f"bench/app{n:05d}"
    start = END - timedelta(days=days)
    rotated = start - timedelta(days=n % 30)
    items: list[dict[str, Any]] = []
    for day in range(days):
        day_at = start + timedelta(days=day)
        rollup: dict[str, Any] = {
            "pk": f"{ROLLUP_PREFIX}{arn}",
            "sk": day_at.date().isoformat(),
            "kind": "scan_rollup",
            "secret_arn": arn,
            "secret_name": name,
            PERIOD_ATTRIBUTE: period_bucket(arn, utc_iso(day_at)),
        }
        for hour in range(24):
            run_at = day_at + timedelta(hours=hour)
            if run_at - rotated >= timedelta(days=30):
                rotated = run_at
                items += _rotation(arn, name, run_at, failed=n % 5 == 0 and day % 30 == 7)
            age = (run_at - rotated).total_seconds() / 86400
            status = "ok" if age <= 30 else "needs_rotation"
            rollup[f"{RUN_ATTRIBUTE_PREFIX}{run_at:%Y%m%dT%H%M%SZ}"] = run_entry(status, Decimal(f"{age:.2f}"), 30)
            if n < SCAN_ROW_SECRETS:
                row_sk = f"{utc_iso(run_at)}#scan#{run_at:%Y%m%dT%H%M%SZ}"
                items.append({"pk": secret_pk(arn), "sk": row_sk, "kind": "scan", "secret_name": name})
        items.append(rollup)
    return items


def _rotation(arn: str, name: str, at: datetime, *, failed: bool) -> list[dict[str, Any]]:
    rotation = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}{at}"))
    outcome = "RotationFailed" if failed else "RotationSucceeded"
    items = []
    for offset, event in ((0, "RotationStarted"), (60, outcome)):
        when = utc_iso(at + timedelta(seconds=offset))
        items.append(
            {
                "pk": secret_pk(arn),
                "sk": f"{when}#event#{rotation}#{event}",
                "kind": "event",
                "secret_arn": arn,
                "secret_name": name,
                "event_name": event,
                "rotation_id": rotation,
                "event_time": when,
                PERIOD_ATTRIBUTE: period_bucket(arn, when),
            }
        )
    return items


def seed(endpoint: str, table: str, secrets: int, days: int) -> int:
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    ddb.create_table(**table_definition(table))
    written = 0
    for n in range(secrets):
        items = history_items(n, days)
        for i in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": to_dynamo(item)}} for item in items[i : i + 25]]
            while requests:
                left = ddb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
                requests = left.get(table, [])
        written += len(items)
    return written


async def _report(table: str) -> dict[str, Any]:
    """The CLI's CSV path over the last REPORT_DAYS days, to /dev/null; what it read and its peak memory."""
    from daemon.aws import Aws
    from daemon.evidence.reader import PeriodReader
    from daemon.evidence.render_csv import CsvReport
    from daemon.evidence.report import build

    started = time.monotonic()
    async with Aws("us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"], services=("dynamodb",)) as aws:
        reader = PeriodReader(aws, table, END - timedelta(days=REPORT_DAYS), END)
        csv_report = CsvReport()
        built = await build(reader, csv_report.add)
    with Path(os.devnull).open("w") as sink:  # noqa: ASYNC230 - /dev/null does not block
        csv_report.finish(sink, built)
    stats = built.stats
    return {
        "seconds": round(time.monotonic() - started, 2),
        "secrets_reported": stats.secrets,
        "items_read": stats.items,
        "queries": stats.queries,
        "items_per_secret": round(stats.items / max(stats.secrets, 1), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "manifest_items": built.manifest["items"],
    }


def run(*, secrets: list[int], days: int = 120, timeout_s: float = 900.0, out_dir: Path = OUT_DIR) -> dict[str, Any]:
    """Seed and report at each fleet size; returns the `evidence` section of bench/results.json."""
    emulator = EmulatorProcess(0.0, out_dir, name="evidence-emulator")
    sizes = []
    try:
        for count in secrets:
            table = f"evidence{uuid.uuid4().hex[:8]}-audit"
            began = time.monotonic()
            written = seed(emulator.endpoint_url, table, count, days)
            seeded_s = time.monotonic() - began
            env = clean_env(AWS_ENDPOINT_URL=emulator.endpoint_url)
            argv = [sys.executable, "-m", "bench.evidence", "--report", table]
            done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
            if done.returncode != 0:
                raise BenchError(f"the evidence report failed: {done.stderr[-2000:]}")
            figures = json.loads(done.stdout) | {"secrets": count, "days": days, "items_in_table": written}
            figures["scan_runs_represented"] = count * days * 24
            sizes.append(figures)
            print(
                f"bench evidence: {count} secrets x {days} days ({written:,} items, seeded in {seeded_s:.0f} s): "
                f"{figures['items_per_secret']} items/secret, {figures['queries']} queries, "
                f"peak {figures['peak_rss_mb']:.0f} MB, {figures['seconds']:.1f} s",
                flush=True,
            )
    finally:
        emulator.stop()
    return {"parameters": {"secrets": secrets, "days": days, "report_days": REPORT_DAYS}, "sizes": sizes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence", description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", default="50,200", help="fleet sizes, comma-separated")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--report", metavar="TABLE", help=argparse.SUPPRESS)  # the report process
    args = parser.parse_args(argv)
    if args.report:
        print(json.dumps(asyncio.run(_report(args.report))))
        return 0
    os.environ.clear()
    os.environ.update(clean_env())
    section = run(secrets=[int(s) for s in args.secrets.split(",")], days=args.days)
    from bench import results

    print(results.update({"evidence": section}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
