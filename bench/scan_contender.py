"""One age-scan contender in a process of its own: run one scan, write its time, CPU and memory as JSON.

`rotaudit` is `daemon.scan.scanner.scan_secrets` (the scanner's real code path: list, classify, batch-write the rows and
the run item) with the daemon's defaults; `baseline` is the seed tutorial's Lambda handler (`bench.seed_scan`).
The clock and the CPU count run around the scan only: clients exist before it starts, as a warm Lambda's do.
Peak memory is the process's high-water RSS (VmHWM: start-up and imports included; the process does nothing else), and
`rss_before_mb` is its resident size just before the scan, so the difference is what the scan itself held.

    python -m bench.scan_contender rotaudit|baseline --endpoint-url URL --table NAME --out FILE [--max-age-days 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REGION = "us-east-1"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    """This process's resident set size now (MiB)."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The process's peak resident set size (MiB): the kernel's high-water mark for this program's memory.

    Not `ru_maxrss`: Linux carries the forking parent's peak over `exec` into the child's `ru_maxrss`, so a child
    of the (larger) harness would report the harness's size.
    """
    return _status_mb("VmHWM")


def _timed(result: dict[str, Any], started: tuple[float, float, float]) -> dict[str, Any]:
    wall, cpu, rss_before = started
    return {
        "seconds": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "checked": int(result["checked"]),
        "flagged": int(result["flagged"]),
        "run_id": str(result["run_id"]),
    }


def run_rotaudit(endpoint_url: str, table: str, max_age_days: int) -> dict[str, Any]:
    from daemon.aws import Aws
    from daemon.scan.scanner import scan_secrets

    async def go() -> dict[str, Any]:
        async with Aws(REGION, endpoint_url=endpoint_url, services=("dynamodb", "secretsmanager", "sts")) as aws:
            started = (time.perf_counter(), time.process_time(), rss_mb())
            result = await scan_secrets(aws, table, max_age_days=max_age_days)
            return _timed(result.summary(), started)

    return asyncio.run(go())


def run_baseline(endpoint_url: str, table: str, max_age_days: int) -> dict[str, Any]:
    # The Lambda's environment: the tutorial's variables, and the region and endpoint Lambda and the emulator set.
    os.environ.update(
        {
            "TABLE_NAME": table,
            "MAX_AGE_DAYS": str(max_age_days),
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
    )
    from bench import seed_scan

    started = (time.perf_counter(), time.process_time(), rss_mb())
    return _timed(seed_scan.handle({"source": "eventbridge-scheduler"}, None), started)


CONTENDERS = {"rotaudit": run_rotaudit, "baseline": run_baseline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan_contender", description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--out", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--max-age-days", type=int, default=30)
    args = parser.parse_args(argv)
    figures = CONTENDERS[args.contender](args.endpoint_url, args.table, args.max_age_days)
    args.out.write_text(json.dumps({"contender": args.contender, **figures}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
